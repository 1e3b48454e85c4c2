"""GraphQL for the viewer's notifications: a connection and marking them read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Annotated

import strawberry

from domain import notifications, reminders
from schema.common import attempt, decode_id, decode_optional
from schema.context import RequestContext
from schema.errors import UserError
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from tenants.binding import tenant_session


@strawberry.type(description="A message for the viewer, also sent by e-mail.")
class Notification(Node):
    kind: str = strawberry.field(description="What it is about, e.g. approval.requested.")
    subject: str = strawberry.field(description="One line, in the language of `locale`.")
    body: str = strawberry.field(description="The message, in the language of `locale`.")
    locale: str = strawberry.field(description="The language it was written in.")
    created_at: dt.datetime = strawberry.field(description="When it was written.")
    read_at: dt.datetime | None = strawberry.field(description="When the viewer read it.")
    email_status: str = strawberry.field(
        description="pending, retrying, sent, failed or skipped (no address)."
    )

    @classmethod
    def from_row(cls, row: notifications.Notification, context: RequestContext) -> Notification:
        return cls(
            id=to_global_id("Notification", context.require_tenant().id, row.id),
            kind=row.kind,
            subject=row.subject,
            body=row.body,
            locale=row.locale,
            created_at=row.created_at,
            read_at=row.read_at,
            email_status=row.email_status,
        )


async def _fetch(context: RequestContext, pk: uuid.UUID) -> Notification | None:
    """`node(id:)` for notifications: the viewer's own only."""
    if context.viewer is None:
        return None
    async with tenant_session() as session:
        row = await session.get(notifications.Notification, pk)
    if row is None or row.recipient_id != context.viewer.id:
        return None
    return Notification.from_row(row, context)


register_node("Notification", _fetch)


@strawberry.type(description="A page of the viewer's notifications, newest first.")
class NotificationConnection:
    nodes: list[Notification] = strawberry.field(description="This page.")
    has_next_page: bool = strawberry.field(description="Whether another page follows.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")
    unread_count: int = strawberry.field(description="The viewer's unread notifications, all.")


@strawberry.type(description="When reminders and escalations go out, at 09:00 branch-local time.")
class ReminderPolicy:
    due_soon_days: int = strawberry.field(
        description="Remind the employee this many days before the settlement date."
    )
    escalate_manager_days: int = strawberry.field(
        description="Tell the employee's manager when an advance is this many days overdue."
    )
    escalate_finance_days: int = strawberry.field(
        description="Tell finance when an advance is this many days overdue."
    )
    approval_wait_hours: int = strawberry.field(
        description="Remind an approver whose step has waited more working hours than this."
    )

    @classmethod
    def of(cls, policy: reminders.ReminderPolicy) -> ReminderPolicy:
        return cls(**dataclasses.asdict(policy))


@strawberry.input(description="A new reminder policy (admin).")
class ReminderPolicyInput:
    due_soon_days: int = strawberry.field(description="1 to 60.")
    escalate_manager_days: int = strawberry.field(description="2 to 365.")
    escalate_finance_days: int = strawberry.field(description="More than the manager's.")
    approval_wait_hours: int = strawberry.field(description="1 to 720.")


@strawberry.type(description="The policy now in force, or why nothing changed.")
class ReminderPolicyPayload:
    policy: ReminderPolicy | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class NotificationQueries:
    @strawberry.field(description="The tenant's reminder policy (admin).")
    async def reminder_policy(self, info: Ctx) -> ReminderPolicy:
        info.context.require_role("admin")
        async with tenant_session() as session:
            return ReminderPolicy.of(await reminders.reminder_policy(session))

    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the last page.")
        ] = None,
        unread: Annotated[
            bool, strawberry.argument(description="Only those not read yet.")
        ] = False,
    ) -> NotificationConnection:
        context = info.context
        viewer = context.require_viewer()
        anchor = decode_optional(after, "Notification", context, "after")  # type: ignore[arg-type]
        async with tenant_session() as session:
            rows, more = await notifications.list_for_viewer(
                session, viewer, first=first, after=anchor, unread_only=unread
            )
            count = await notifications.unread_count(session, viewer)
        nodes = [Notification.from_row(row, context) for row in rows]
        return NotificationConnection(
            nodes=nodes,
            has_next_page=more,
            end_cursor=nodes[-1].id if nodes else None,
            unread_count=count,
        )


@strawberry.input(description="Notifications to mark read.")
class MarkNotificationsReadInput:
    ids: list[strawberry.ID] = strawberry.field(description="The viewer's own, 1 to 100.")


@strawberry.type(description="The notifications now read, or why nothing changed.")
class MarkNotificationsReadPayload:
    notifications: list[Notification] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(description="Mark some of the viewer's notifications read.")
    async def mark_notifications_read(
        self, info: Ctx, input: MarkNotificationsReadInput
    ) -> MarkNotificationsReadPayload:
        context = info.context

        async def run() -> list[notifications.Notification]:
            ids: list[uuid.UUID] = [
                decode_id(given, "Notification", context, "ids") for given in input.ids
            ]
            return await notifications.mark_read(context.require_viewer(), ids)

        rows, errors = await attempt(context, run)
        return MarkNotificationsReadPayload(
            notifications=[Notification.from_row(row, context) for row in rows or []],
            user_errors=errors,
        )

    @strawberry.mutation(description="Change when reminders and escalations go out (admin).")
    async def set_reminder_policy(
        self, info: Ctx, input: ReminderPolicyInput
    ) -> ReminderPolicyPayload:
        context = info.context

        async def run() -> reminders.ReminderPolicy:
            return await reminders.set_reminder_policy(
                context.require_viewer(),
                reminders.ReminderPolicy(
                    due_soon_days=input.due_soon_days,
                    escalate_manager_days=input.escalate_manager_days,
                    escalate_finance_days=input.escalate_finance_days,
                    approval_wait_hours=input.approval_wait_hours,
                ),
            )

        policy, errors = await attempt(context, run)
        return ReminderPolicyPayload(
            policy=ReminderPolicy.of(policy) if policy else None, user_errors=errors
        )
