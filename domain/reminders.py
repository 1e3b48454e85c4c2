"""Reminders and escalations about advances and approvals, at 09:00 in the reader's zone.

The scheduler asks every tenant to scan once an hour. A scan judges each recipient on the
calendar of their own branch (a user without one, on the tenant's): their run date is the
local date of the latest 09:00 there at or before the scan's instant. So a manager in
Berlin hears of a Shanghai employee's late advance at 09:00 in Berlin. Each reminder's
idempotency key names its kind, subject, run date and recipient, so the scans of one local
day send each reminder once, whatever the number of scans, redeliveries or replays, and
whatever the clocks did that day. Whether an advance is overdue for analytics is judged
on its own branch's calendar, as everywhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import any_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, outbox
from domain.advances.chain import placements
from domain.advances.models import OUTSTANDING_STATUSES, Advance, ApprovalStep, LedgerEntry
from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.identity.models import User
from domain.notifications import Draft, Reader, display_name, notify_many, readers_of
from domain.organisation.models import Branch
from domain.organisation.queries import managers_of_positions
from domain.people.models import Employee
from domain.permissions import require_any_role
from domain.tenant_settings import get_setting, set_setting
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

SEND_AT = dt.time(9, 0)
WORKDAY = (dt.time(9, 0), dt.time(18, 0))  # Monday to Friday, branch-local
POLICY_KEY = "reminders.policy"


@dataclasses.dataclass(frozen=True)
class ReminderPolicy:
    """When reminders and escalations go out."""

    due_soon_days: int = 3  # days before the expected settlement date
    escalate_manager_days: int = 3  # days overdue
    escalate_finance_days: int = 7  # days overdue
    approval_wait_hours: int = 16  # working hours a step may wait

    def validated(self) -> ReminderPolicy:
        if not 1 <= self.due_soon_days <= 60:
            raise DomainError(N_("Choose 1 to {count} days."), field="dueSoonDays", count=60)
        for field, value in (
            ("escalateManagerDays", self.escalate_manager_days),
            ("escalateFinanceDays", self.escalate_finance_days),
        ):
            if not 2 <= value <= 365:
                raise DomainError(N_("Choose 2 to {count} days."), field=field, count=365)
        if self.escalate_finance_days <= self.escalate_manager_days:
            raise DomainError(
                N_("Finance hears of an overdue advance after the manager does."),
                field="escalateFinanceDays",
            )
        if not 1 <= self.approval_wait_hours <= 720:
            raise DomainError(
                N_("Choose 1 to {count} working hours."), field="approvalWaitHours", count=720
            )
        return self


async def reminder_policy(session: AsyncSession) -> ReminderPolicy:
    stored = await get_setting(session, POLICY_KEY)
    known = {f.name for f in dataclasses.fields(ReminderPolicy)}
    return ReminderPolicy(**{k: v for k, v in stored.items() if k in known})


async def set_reminder_policy(actor: Viewer, policy: ReminderPolicy) -> ReminderPolicy:
    """Replace the tenant's reminder policy (admin only)."""
    require_any_role(actor, "admin")
    policy.validated()
    async with tenant_session() as session:
        before = await reminder_policy(session)
        await set_setting(session, POLICY_KEY, dataclasses.asdict(policy))
        audit.record(
            session,
            actor_id=actor.id,
            action="reminders.policy",
            entity_type="tenant_setting",
            entity_id=POLICY_KEY,
            before=dataclasses.asdict(before),
            after=dataclasses.asdict(policy),
        )
    return policy


def run_date(time_zone: str, at: dt.datetime) -> dt.date:
    """The local date of the latest 09:00 in `time_zone` at or before the instant `at`.

    Wall-clock 09:00 exists exactly once every day in the zones Renshi serves (clocks
    change at night), so each local day has one run date, DST change days included.
    """
    local = at.astimezone(ZoneInfo(time_zone))
    return local.date() if local.time() >= SEND_AT else local.date() - dt.timedelta(days=1)


def working_hours(start: dt.datetime, end: dt.datetime, time_zone: str) -> float:
    """Hours between two instants that fall in the working day (Mon-Fri, 09:00-18:00 local)."""
    zone = ZoneInfo(time_zone)
    total = dt.timedelta()
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        if day.weekday() < 5:
            opens = dt.datetime.combine(day, WORKDAY[0], zone)
            closes = dt.datetime.combine(day, WORKDAY[1], zone)
            overlap = min(end, closes) - max(start, opens)
            total += max(overlap, dt.timedelta())
        day += dt.timedelta(days=1)
    return total.total_seconds() / 3600


@dataclasses.dataclass
class ScanReport:
    sent: int = 0  # notifications written by this scan (not those of earlier scans)
    overdue_events: int = 0


async def send_reminders(at: dt.datetime) -> ScanReport:
    """Scan the current tenant at the instant `at` and notify whoever is due today."""
    report = ScanReport()
    async with tenant_session() as session:
        policy = await reminder_policy(session)
        zones = {b.id: b.time_zone for b in await session.scalars(select(Branch))}
        days = {branch_id: run_date(zone, at) for branch_id, zone in zones.items()}
        # Readers live in some branch's zone or, without one, in the tenant's.
        reader_days = {*days.values(), run_date(current_tenant().time_zone, at)}
        scan = _Scan(session, report, at)
        # Only the settlement dates some reader acts on today are loaded (the index on
        # status and date serves it); each reminder is then judged on its reader's day.
        offsets = {
            -policy.due_soon_days,
            1,
            policy.escalate_manager_days,
            policy.escalate_finance_days,
        }
        dates = {day - dt.timedelta(days=n) for day in reader_days for n in offsets}
        advances = list(
            await session.scalars(
                select(Advance).where(
                    Advance.status.in_(OUTSTANDING_STATUSES),
                    Advance.expected_settlement_date.in_(sorted(dates)),
                )
            )
        )
        await scan.load(advances)
        for advance in advances:
            await scan.advance(advance, days[advance.branch_id], policy)
        await scan.approvals(policy)
        await scan.write()
    return report


class _Scan:
    def __init__(self, session: AsyncSession, report: ScanReport, at: dt.datetime) -> None:
        self.session = session
        self.report = report
        self.at = at
        self.users: dict[uuid.UUID, list[User]] = {}  # by employee
        self.owed: dict[uuid.UUID, Decimal] = {}  # by advance
        self.readers: dict[uuid.UUID, Reader] = {}  # by user
        self.drafts: list[Draft] = []

    async def load(self, advances: list[Advance]) -> None:
        """What the advances' reminders need, a few queries for all of them."""
        if not advances:
            return
        employees = {a.employee_id for a in advances}
        users = list(
            await self.session.scalars(
                select(User).where(User.employee_id.in_(employees), User.is_active.is_(True))
            )
        )
        for user in users:
            self.users.setdefault(user.employee_id, []).append(user)  # type: ignore[arg-type]
        await self._read(users)
        owed = await self.session.execute(
            select(LedgerEntry.advance_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.advance_id.in_([a.id for a in advances]))
            .group_by(LedgerEntry.advance_id)
        )
        self.owed = {advance_id: Decimal(total) for advance_id, total in owed.all()}

    async def _read(self, users: list[User]) -> list[Reader]:
        missing = [u for u in users if u.id not in self.readers]
        if missing:
            self.readers |= await readers_of(self.session, missing)
        return [self.readers[u.id] for u in users]

    def _today(self, reader: Reader) -> dt.date:
        return run_date(reader.time_zone, self.at)

    async def advance(self, advance: Advance, branch_day: dt.date, policy: ReminderPolicy) -> None:
        due = advance.expected_settlement_date
        if (branch_day - due).days == 1:
            # Analytics re-scores on becoming overdue; the key makes it once per advance.
            await outbox.enqueue(
                self.session,
                "advance.changed",
                {
                    "advance_id": advance.id,
                    "employee_id": advance.employee_id,
                    "status": advance.status,
                    "change": "overdue",
                },
                f"advance.overdue:{advance.id}",
            )
            self.report.overdue_events += 1

        for reader in await self._read(self.users.get(advance.employee_id, [])):
            day = self._today(reader)
            if (due - day).days == policy.due_soon_days:
                await self._tell(reader, advance, "advance.due_soon", day)
            if (day - due).days == 1:
                await self._tell(reader, advance, "advance.overdue", day)

        # A reader's calendar is at most two days from the branch's (UTC-12 to UTC+14),
        # so managers and finance are looked up only for advances that near their day.
        late = (branch_day - due).days
        if abs(late - policy.escalate_manager_days) <= 2:
            users = await self._manager_users(advance, branch_day)
            await self._escalate(advance, policy.escalate_manager_days, users)
        if abs(late - policy.escalate_finance_days) <= 2:
            users = await self._role_users("finance")
            await self._escalate(advance, policy.escalate_finance_days, users)

    async def approvals(self, policy: ReminderPolicy) -> None:
        waiting = await self.session.execute(
            select(ApprovalStep, Advance)
            .join(Advance, Advance.id == ApprovalStep.advance_id)
            .where(Advance.status == "submitted", ApprovalStep.status == "pending")
            .order_by(ApprovalStep.advance_id, ApprovalStep.seq)
        )
        seen: set[uuid.UUID] = set()
        for step, advance in waiting:
            if advance.id in seen:
                continue  # only the first pending step is anyone's turn
            seen.add(advance.id)
            since = await self.session.scalar(
                select(func.max(ApprovalStep.decided_at)).where(
                    ApprovalStep.advance_id == advance.id, ApprovalStep.seq < step.seq
                )
            )
            started = since or advance.submitted_at or advance.created_at
            requester = None
            for reader in await self._read(await self._approvers(step)):
                # Counted up to the approver's 09:00 today, so the reminder of a day does
                # not depend on which hourly scan of that day sends it.
                day = self._today(reader)
                nine = dt.datetime.combine(day, SEND_AT, ZoneInfo(reader.time_zone))
                hours = working_hours(started, nine, reader.time_zone)
                if hours <= policy.approval_wait_hours:
                    continue
                requester = requester or await self.session.get(Employee, advance.employee_id)
                assert requester is not None
                await self._notify(
                    reader,
                    "approval.waiting",
                    step.id,
                    day,
                    {
                        "requester": display_name(requester, reader.locale),
                        "amount": reader.money(advance.amount, advance.currency),
                        "purpose": advance.purpose,
                        "hours": str(int(hours)),
                    },
                    {"step_id": step.id, "advance_id": advance.id},
                )

    async def _tell(self, reader: Reader, advance: Advance, kind: str, day: dt.date) -> None:
        params = self._advance_params(advance, reader)
        await self._notify(reader, kind, advance.id, day, params, {"advance_id": advance.id})

    async def _escalate(self, advance: Advance, after_days: int, users: list[User]) -> None:
        """Tell each of `users` whose today is `after_days` past the advance's due date."""
        due = advance.expected_settlement_date
        readers = [r for r in await self._read(users) if (self._today(r) - due).days == after_days]
        if not readers:
            return
        employee = await self.session.get(Employee, advance.employee_id)
        assert employee is not None
        for reader in readers:
            params = self._advance_params(advance, reader)
            params |= {"employee": display_name(employee, reader.locale), "days": str(after_days)}
            await self._notify(
                reader,
                "advance.escalated",
                advance.id,
                self._today(reader),
                params,
                {"advance_id": advance.id},
            )

    def _advance_params(self, advance: Advance, reader: Reader) -> dict[str, str]:
        owed = self.owed.get(advance.id, Decimal(0))
        return {
            "amount": reader.money(advance.amount, advance.currency),
            "outstanding": reader.money(owed, advance.currency),
            "purpose": advance.purpose,
            "due": reader.date(advance.expected_settlement_date),
        }

    async def _notify(
        self,
        reader: Any,
        kind: str,
        subject: uuid.UUID,
        day: dt.date,
        params: dict[str, str],
        data: dict[str, Any],
    ) -> None:
        # (tenant: the schema) subject, kind, local date, and the recipient.
        key = f"reminder:{kind}:{subject}:{day.isoformat()}:{reader.user.id}"
        self.drafts.append(Draft(reader, kind, key, params, data))

    async def write(self) -> None:
        """Write the scan's reminders at once; those of earlier scans stay as they are."""
        self.report.sent += len(await notify_many(self.session, self.drafts))
        self.drafts = []

    async def _manager_users(self, advance: Advance, day: dt.date) -> list[User]:
        place = (await placements(self.session, {advance.employee_id}, day)).get(
            advance.employee_id
        )
        if place is None or place.position_id is None:
            return []
        manager = (await managers_of_positions(self.session, [place.position_id], day)).get(
            place.position_id
        )
        if manager is None:
            return []
        return list(
            await self.session.scalars(
                select(User).where(User.employee_id == manager, User.is_active.is_(True))
            )
        )

    async def _role_users(self, role: str) -> list[User]:
        return list(
            await self.session.scalars(
                select(User)
                .where(literal(role) == any_(User.roles), User.is_active.is_(True))
                .order_by(User.email)
            )
        )

    async def _approvers(self, step: ApprovalStep) -> list[User]:
        if step.approver_role is not None:
            return await self._role_users(step.approver_role)
        return list(
            await self.session.scalars(
                select(User).where(User.employee_id == step.approver_id, User.is_active.is_(True))
            )
        )
