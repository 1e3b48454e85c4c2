"""Notifications: in-app messages for users, each also e-mailed once.

A notification is written in its recipient's language (their own locale, else the
tenant's), with amounts and dates formatted for their locale and their branch's time
zone. Each has an idempotency key, unique in the tenant, so a redelivered or replayed
message never notifies twice. Creating one records its e-mail in the outbox in the same
transaction; the worker that sends it reports back with `email_sent` or `email_failed`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    and_,
    any_,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import clock, outbox
from domain.advances.chain import placements
from domain.advances.models import Advance, ApprovalStep
from domain.errors import DomainError, NotFound
from domain.identity.actions import Viewer
from domain.identity.models import User
from domain.money import Money
from domain.organisation.models import Branch
from domain.people.models import Employee
from i18n import N_, formatting_locale, negotiate, translate
from tenants.binding import tenant_session
from tenants.context import current_tenant
from tenants.metadata import TenantBase

SEND_EMAIL = "notifications.send_email"
EMAIL_STATUSES = ("pending", "retrying", "sent", "failed", "skipped")
UNSENT_STATUSES = ("pending", "retrying")


class Notification(TenantBase):
    """A message for one user, shown in the app and e-mailed."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(35))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    email_status: Mapped[str] = mapped_column(String(12), default="pending")
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_last_error: Mapped[str | None] = mapped_column(Text)
    email_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Who sends the e-mail now holds it until then (see `claim_email`).
    email_claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When its next attempt was due: a retry's time; None for the first (due on creation).
    email_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)


@dataclasses.dataclass(frozen=True)
class Template:
    subject: str
    body: str


# Whole sentences with named placeholders; `make messages` extracts them for translation.
TEMPLATES = {
    "approval.requested": Template(
        subject=N_("Approval needed: an advance of {amount} for {requester}"),
        body=N_(
            "{requester} asks for an advance of {amount} for “{purpose}”, to be settled "
            "by {due}. It was submitted on {submitted}. Open your approval inbox in "
            "Renshi to decide."
        ),
    ),
    "advance.due_soon": Template(
        subject=N_("Your advance for “{purpose}” is due on {due}"),
        body=N_(
            "Your advance of {amount} for “{purpose}” is to be settled by {due}. "
            "Submit your receipts or return what is left before then."
        ),
    ),
    "advance.overdue": Template(
        subject=N_("Your advance for “{purpose}” is overdue"),
        body=N_(
            "Your advance of {amount} for “{purpose}” was to be settled by {due}; "
            "{outstanding} is still outstanding. Please settle it as soon as you can."
        ),
    ),
    "advance.escalated": Template(
        subject=N_("{employee}'s advance is {days} days overdue"),
        body=N_(
            "{employee}'s advance of {amount} for “{purpose}” was to be settled by "
            "{due} and is {days} days overdue; {outstanding} is still outstanding."
        ),
    ),
    "risk.alert": Template(
        subject=N_("{employee}'s advance risk rose to {band} ({score})"),
        body=N_(
            "{employee}'s advance risk score is {score} of 100, at or above the {band} "
            "threshold of {threshold}. Main reasons: {reasons} Open the employee in "
            "Renshi to see the whole explanation and to acknowledge the alert."
        ),
    ),
    "approval.waiting": Template(
        subject=N_("Reminder: an advance of {amount} for {requester} awaits your approval"),
        body=N_(
            "{requester} asks for an advance of {amount} for “{purpose}”; it has waited "
            "{hours} working hours for your decision. Open your approval inbox in "
            "Renshi to decide."
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class Reader:
    """Who reads a notification, and how they read: language, formats, time zone."""

    user: User
    locale: str  # the messages' locale (a supported one)
    format_locale: str  # numbers and dates (the user's own, when Babel knows it)
    time_zone: str

    def money(self, amount: Any, currency: str) -> str:
        return Money.of(amount, currency).format(self.format_locale)

    def date(self, day: dt.date) -> str:
        return format_date(day, format="long", locale=self.format_locale)

    def instant(self, at: dt.datetime) -> str:
        return format_datetime(
            at, format="medium", tzinfo=ZoneInfo(self.time_zone), locale=self.format_locale
        )


async def reader_of(session: AsyncSession, user: User) -> Reader:
    return (await readers_of(session, [user]))[user.id]


async def readers_of(session: AsyncSession, users: list[User]) -> dict[uuid.UUID, Reader]:
    """How each user reads, in two queries whatever their number."""
    tenant = current_tenant()
    employees = {u.employee_id for u in users if u.employee_id is not None}
    places = await placements(session, employees, clock.local_today(tenant.time_zone))
    branch_ids = {p.branch_id for p in places.values() if p.branch_id is not None}
    zones = (
        dict(
            (
                await session.execute(
                    select(Branch.id, Branch.time_zone).where(Branch.id.in_(branch_ids))
                )
            ).all()
        )
        if branch_ids
        else {}
    )
    readers = {}
    for user in users:
        employee_id = user.employee_id
        place = places.get(employee_id) if employee_id is not None else None
        branch_id = place.branch_id if place else None
        zone = zones.get(branch_id, tenant.time_zone) if branch_id else tenant.time_zone
        locale = negotiate(user.locale, None, tenant.locale)
        readers[user.id] = Reader(user, locale, formatting_locale(user.locale, locale), zone)
    return readers


@dataclasses.dataclass(frozen=True)
class Draft:
    """A notification to write: for whom, what, and under which idempotency key."""

    reader: Reader
    kind: str
    key: str
    params: dict[str, str]
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        template = TEMPLATES[self.kind]
        locale = self.reader.locale
        return {
            "id": uuid.uuid4(),
            "recipient_id": self.reader.user.id,
            "kind": self.kind,
            "subject": translate(template.subject, locale, **self.params),
            "body": translate(template.body, locale, **self.params),
            "locale": locale,
            "data": outbox.jsonable(self.data),
            "email_status": "pending" if self.mailable else "skipped",
            "idempotency_key": self.key,
        }

    @property
    def mailable(self) -> bool:
        return bool(self.reader.user.email) and self.reader.user.is_active


async def notify(
    session: AsyncSession,
    reader: Reader,
    kind: str,
    key: str,
    params: dict[str, str],
    data: dict[str, Any] | None = None,
) -> Notification | None:
    """Write `kind` for the reader inside the caller's transaction, and queue its e-mail.

    Returns None when a notification with this key exists already (nothing is written).
    """
    created = await notify_many(session, [Draft(reader, kind, key, params, data or {})])
    return created[0] if created else None


async def notify_many(session: AsyncSession, drafts: list[Draft]) -> list[Notification]:
    """Write the drafts whose keys are new, and queue their e-mail: two statements in all.

    Returns the notifications written (those whose key existed are left as they were).
    """
    if not drafts:
        return []
    created = list(
        await session.scalars(
            insert(Notification)
            .values([draft.values() for draft in drafts])
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(Notification)
        )
    )
    await outbox.enqueue_many(
        session,
        [
            (SEND_EMAIL, {"notification_id": row.id}, f"email:{row.id}")
            for row in created
            if row.email_status == "pending"
        ],
    )
    return created


async def notify_approval_requested(step_id: uuid.UUID) -> list[Notification]:
    """Tell the approvers of a step that its turn has come (once per step and user)."""
    async with tenant_session() as session:
        step = await session.get(ApprovalStep, step_id)
        if step is None or step.status != "pending":
            return []  # decided, or cancelled, before the message ran
        advance = await session.get(Advance, step.advance_id)
        requester = await session.get(Employee, advance.employee_id) if advance else None
        assert advance is not None and requester is not None
        written = []
        for user in await _approvers(session, step):
            reader = await reader_of(session, user)
            params = {
                "requester": display_name(requester, reader.locale),
                "amount": reader.money(advance.amount, advance.currency),
                "purpose": advance.purpose,
                "due": reader.date(advance.expected_settlement_date),
                "submitted": reader.instant(advance.submitted_at or clock.now()),
            }
            created = await notify(
                session,
                reader,
                "approval.requested",
                f"approval.requested:{step.id}:{user.id}",
                params,
                {"step_id": step.id, "advance_id": advance.id},
            )
            if created is not None:
                written.append(created)
    return written


async def _approvers(session: AsyncSession, step: ApprovalStep) -> list[User]:
    active = select(User).where(User.is_active.is_(True)).order_by(User.email)
    if step.approver_role is not None:
        return list(
            await session.scalars(active.where(literal(step.approver_role) == any_(User.roles)))
        )
    if step.approver_id is None:
        return []
    return list(await session.scalars(active.where(User.employee_id == step.approver_id)))


def display_name(employee: Employee, locale: str) -> str:
    """The employee's name as a reader of `locale` expects it."""
    if locale.startswith("zh") and employee.local_name:
        return employee.local_name
    return f"{employee.preferred_name or employee.given_name} {employee.family_name}"


# --- the viewer's notifications ---------------------------------------------------------------


async def list_for_viewer(
    session: AsyncSession,
    viewer: Viewer,
    *,
    first: int,
    after: uuid.UUID | None,
    unread_only: bool,
) -> tuple[list[Notification], bool]:
    """A page of the viewer's notifications, newest first, keyset-paginated."""
    if not 1 <= first <= 100:
        raise DomainError(N_("Ask for 1 to {count} rows at a time."), field="first", count=100)
    query = select(Notification).where(Notification.recipient_id == viewer.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if after is not None:
        anchor = await session.get(Notification, after)
        if anchor is None or anchor.recipient_id != viewer.id:
            # Someone else's cursor reads as one that does not exist, as a garbled one does.
            raise NotFound(N_("Nothing with this ID exists."), field="after")
        query = query.where(
            or_(
                Notification.created_at < anchor.created_at,
                and_(
                    Notification.created_at == anchor.created_at,
                    Notification.id < anchor.id,
                ),
            )
        )
    rows = list(
        await session.scalars(
            query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(first + 1)
        )
    )
    return rows[:first], len(rows) > first


async def unread_count(session: AsyncSession, viewer: Viewer) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.recipient_id == viewer.id, Notification.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(viewer: Viewer, ids: list[uuid.UUID]) -> list[Notification]:
    """Mark the viewer's own notifications read; someone else's read as missing."""
    if not ids or len(ids) > 100:
        raise DomainError(N_("Mark 1 to {count} notifications at a time."), field="ids", count=100)
    async with tenant_session() as session:
        rows = list(
            await session.scalars(
                select(Notification)
                .where(Notification.id.in_(ids), Notification.recipient_id == viewer.id)
                .with_for_update()
            )
        )
        if len(rows) != len(set(ids)):
            raise NotFound(N_("The notification does not exist."), field="ids")
        at = clock.now()
        for row in rows:
            row.read_at = row.read_at or at
    return rows


# --- e-mail bookkeeping (the worker that sends reports here) ---------------------------------
#
# Sending an e-mail is claim, send, record. The claim is a lease on the row
# (`email_claimed_until`), committed before the SMTP conversation starts, so that two
# copies of one message running at once send one e-mail: the second finds the lease and
# waits for it to end (by then the e-mail is sent, and it sends nothing). A worker that dies
# holding a lease holds it only until it expires; then a redelivery claims the row again.


@dataclasses.dataclass(frozen=True)
class Email:
    notification_id: uuid.UUID
    to: str
    subject: str
    body: str
    attempts: int


@dataclasses.dataclass(frozen=True)
class Claimed:
    """Someone else holds the e-mail's lease, until `until`."""

    until: dt.datetime


async def claim_email(notification_id: uuid.UUID, lease: dt.timedelta) -> Email | Claimed | None:
    """Take the lease on a notification's e-mail for `lease` and return what to send.

    None when there is nothing to send: sent, given up, skipped, or nobody to send it to.
    `Claimed` when another worker holds an unexpired lease on it.
    """
    async with tenant_session() as session:
        row = await session.get(Notification, notification_id, with_for_update=True)
        if row is None or row.email_status not in UNSENT_STATUSES:
            return None
        now = clock.now()
        if row.email_claimed_until is not None and row.email_claimed_until > now:
            return Claimed(row.email_claimed_until)
        user = await session.get(User, row.recipient_id)
        if user is None or not user.is_active:
            row.email_status = "skipped"
            return None
        row.email_claimed_until = now + lease
        return Email(row.id, user.email, row.subject, row.body, row.email_attempts)


# An e-mail still unsent this long after it was due has lost its message: dropped while
# its tenant was suspended, given up by the broker, lost with a dead worker.
STALE_EMAIL = dt.timedelta(minutes=15)
REQUEUE_BATCH = 500


async def requeue_stale_emails(now: dt.datetime | None = None) -> int:
    """Queue again the current tenant's e-mails left unsent; returns how many.

    An e-mail is stale when it is pending or retrying `STALE_EMAIL` after it was due
    (created, or its retry's time) and nobody holds its lease. It gets a new message
    through the outbox, and its due time moves to now, so it waits another
    `STALE_EMAIL` before it is queued again. Should the old message still be around, the
    lease makes the two send one e-mail.
    """
    now = now or clock.now()
    async with tenant_session() as session:
        stale = (
            select(Notification.id)
            .where(
                Notification.email_status.in_(UNSENT_STATUSES),
                func.coalesce(Notification.email_due_at, Notification.created_at)
                < now - STALE_EMAIL,
                or_(
                    Notification.email_claimed_until.is_(None),
                    Notification.email_claimed_until < now,
                ),
            )
            .order_by(Notification.created_at)
            .limit(REQUEUE_BATCH)
            .with_for_update(skip_locked=True)
        )
        ids = list(
            await session.scalars(
                update(Notification)
                .where(Notification.id.in_(stale.scalar_subquery()))
                .values(email_due_at=now)
                .returning(Notification.id)
            )
        )
        await outbox.enqueue_many(
            session,
            [
                (SEND_EMAIL, {"notification_id": i}, f"email:{i}:again:{now.isoformat()}")
                for i in ids
            ],
        )
    return len(ids)


async def email_sent(notification_id: uuid.UUID) -> None:
    async with tenant_session() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(
                email_status="sent",
                email_attempts=Notification.email_attempts + 1,
                email_sent_at=clock.now(),
                email_last_error=None,
                email_claimed_until=None,
            )
        )


async def email_failed(
    notification_id: uuid.UUID,
    error: str,
    *,
    permanent: bool,
    max_attempts: int,
    retry_in: dt.timedelta,
) -> bool:
    """Record a failed attempt and give up the lease; True when another attempt should
    follow, `retry_in` from now."""
    async with tenant_session() as session:
        row = await session.get(Notification, notification_id, with_for_update=True)
        if row is None:
            return False
        row.email_attempts += 1
        row.email_last_error = error[:2000]
        row.email_claimed_until = None
        retry = not permanent and row.email_attempts < max_attempts
        row.email_status = "retrying" if retry else "failed"
        row.email_due_at = clock.now() + retry_in if retry else None
    return retry
