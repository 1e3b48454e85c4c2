"""Reminders and escalations about advances and approvals, at 09:00 in the reader's zone.

The scheduler asks every tenant to scan once an hour. A scan judges each recipient on the
calendar of their own branch (a user without one, on the tenant's): their run date is the
local date of the latest 09:00 there at or before the scan's instant. So a manager in
Berlin hears of a Shanghai employee's late advance at 09:00 in Berlin.

A reminder is due on one local day (three days before the settlement date, the day after
it...), and goes out at the first scan on or after that day's 09:00: a day no scan
reached (every worker down) is caught up by the next scan, up to `CATCH_UP_DAYS` late.
Each reminder's idempotency key names its kind, subject, the day it was due (not the day
it went out) and recipient, so it is sent once whatever the number of scans,
redeliveries or replays, and whatever the clocks did that day; a scan looks the keys up
before it builds anything. Whether an advance is overdue for analytics is judged on its
own branch's calendar, as everywhere else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, any_, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, outbox
from domain.advances.chain import placements
from domain.advances.models import OUTSTANDING_STATUSES, Advance, ApprovalStep, LedgerEntry
from domain.errors import DomainError, Refusals
from domain.identity.actions import Viewer
from domain.identity.models import User
from domain.notifications import (
    Draft,
    Notification,
    Reader,
    display_name,
    notify_many,
    readers_of,
)
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
        """This policy, or every reason it is refused, each naming its field."""
        refusals: list[DomainError] = []
        if not 1 <= self.due_soon_days <= 60:
            refusals.append(
                DomainError(N_("Choose 1 to {count} days."), field="dueSoonDays", count=60)
            )
        for field, value in (
            ("escalateManagerDays", self.escalate_manager_days),
            ("escalateFinanceDays", self.escalate_finance_days),
        ):
            if not 2 <= value <= 365:
                refusals.append(
                    DomainError(N_("Choose 2 to {count} days."), field=field, count=365)
                )
        in_range = not any(r.field.startswith("escalate") for r in refusals if r.field)
        if in_range and self.escalate_finance_days <= self.escalate_manager_days:
            refusals.append(
                DomainError(
                    N_("Finance hears of an overdue advance after the manager does."),
                    field="escalateFinanceDays",
                )
            )
        if not 1 <= self.approval_wait_hours <= 720:
            refusals.append(
                DomainError(
                    N_("Choose 1 to {count} working hours."),
                    field="approvalWaitHours",
                    count=720,
                )
            )
        Refusals.raise_any(refusals)
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


@dataclasses.dataclass(frozen=True)
class Stage:
    """One reminder about an advance: its kind, who hears it, and its day, `offset` days
    after the expected settlement date (before it, when negative).

    It goes out at the first scan on or after its day on the reader's calendar, or, when
    no scan ran that day, at the first one up to `CATCH_UP_DAYS` later (a due-soon
    reminder no later than the settlement date itself).
    """

    kind: str
    audience: str  # "employee", "manager" or "finance"
    offset: int
    until_due: bool = False

    def window(self, due: dt.date) -> tuple[dt.date, dt.date]:
        """The reminder's day for an advance due on `due`, and the last day it may go out."""
        day = due + dt.timedelta(days=self.offset)
        last = day + dt.timedelta(days=CATCH_UP_DAYS)
        return day, min(last, due) if self.until_due else last

    def due_dates(self, today: dt.date) -> list[dt.date]:
        """The settlement dates of the advances whose window holds `today`."""
        latest = today - dt.timedelta(days=self.offset)
        first = latest - dt.timedelta(days=CATCH_UP_DAYS)
        if self.until_due:
            first = max(first, today)
        return [first + dt.timedelta(days=n) for n in range((latest - first).days + 1)]


# A reminder whose day had no scan (every worker down for a day) still goes out this many
# days late; after that it is dropped, the next stage having taken over.
CATCH_UP_DAYS = 7
# A reader's calendar is at most two days from the branch's (UTC-12 to UTC+14).
ZONE_SPREAD = 2
# Analytics re-scores an advance on its first overdue day (caught up like a reminder).
OVERDUE_EVENT = Stage("advance.overdue", "analytics", 1)


def stages(policy: ReminderPolicy) -> list[Stage]:
    return [
        Stage("advance.due_soon", "employee", -policy.due_soon_days, until_due=True),
        Stage("advance.overdue", "employee", 1),
        Stage("advance.escalated", "manager", policy.escalate_manager_days),
        Stage("advance.escalated", "finance", policy.escalate_finance_days),
    ]


@dataclasses.dataclass
class ScanReport:
    sent: int = 0  # notifications written by this scan (not those of earlier scans)
    overdue_events: int = 0  # overdue events queued by this scan


async def send_reminders(at: dt.datetime) -> ScanReport:
    """Scan the current tenant at the instant `at` and notify whoever is due a reminder:
    today on their calendar, or on a day no scan reached (see `Stage`)."""
    report = ScanReport()
    async with tenant_session() as session:
        policy = await reminder_policy(session)
        plan = stages(policy)
        zones = {b.id: b.time_zone for b in await session.scalars(select(Branch))}
        days = {branch_id: run_date(zone, at) for branch_id, zone in zones.items()}
        # Readers live in some branch's zone or, without one, in the tenant's.
        reader_days = {*days.values(), run_date(current_tenant().time_zone, at)}
        # Only the settlement dates whose reminders some reader may get today are loaded
        # (the index on status and date serves it).
        dates = {
            due
            for today in reader_days
            for stage in [*plan, OVERDUE_EVENT]
            for due in stage.due_dates(today)
        }
        advances = list(
            await session.scalars(
                select(Advance).where(
                    Advance.status.in_(OUTSTANDING_STATUSES),
                    Advance.expected_settlement_date.in_(sorted(dates)),
                )
            )
        )
        scan = _Scan(session, report, at)
        await scan.load(advances)
        await scan.overdue_events(advances, days)
        for stage in plan:
            await scan.stage(stage, advances, days)
        await scan.approvals(policy)
        await scan.write()
    return report


@dataclasses.dataclass
class _Pending:
    """A reminder to write unless its key exists: the parameters are built only then."""

    reader: Reader
    kind: str
    key: str
    data: dict[str, Any]
    advance: Advance | None = None
    days_late: int | None = None  # an escalation's
    params: dict[str, str] | None = None  # given (approvals) or built from the advance


class _Scan:
    def __init__(self, session: AsyncSession, report: ScanReport, at: dt.datetime) -> None:
        self.session = session
        self.report = report
        self.at = at
        self.users: dict[uuid.UUID, list[User]] = {}  # by employee
        self.owed: dict[uuid.UUID, Decimal] = {}  # by advance
        self.readers: dict[uuid.UUID, Reader] = {}  # by user
        self.pending: dict[str, _Pending] = {}  # by key

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

    async def overdue_events(self, advances: list[Advance], days: dict[uuid.UUID, dt.date]) -> None:
        """Tell analytics of each advance that became overdue on its branch's calendar,
        once per advance (by key; those queued before are looked up, not queued again)."""
        due: dict[str, Advance] = {}
        for advance in advances:
            first, last = OVERDUE_EVENT.window(advance.expected_settlement_date)
            if first <= days[advance.branch_id] <= last:
                due[f"advance.overdue:{advance.id}"] = advance
        queued = await _existing(self.session, outbox.OutboxMessage.idempotency_key, due)
        events = [
            (
                "advance.changed",
                {
                    "advance_id": advance.id,
                    "employee_id": advance.employee_id,
                    "status": advance.status,
                    "change": "overdue",
                },
                key,
            )
            for key, advance in due.items()
            if key not in queued
        ]
        await outbox.enqueue_many(self.session, events)
        self.report.overdue_events += len(events)

    async def stage(
        self, stage: Stage, advances: list[Advance], days: dict[uuid.UUID, dt.date]
    ) -> None:
        """Note the stage's reminder for each reader whose today is in its window."""
        # Only advances whose window is near on the branch's calendar: managers and
        # finance are looked up for those alone.
        near = []
        for advance in advances:
            first, last = stage.window(advance.expected_settlement_date)
            branch_day = days[advance.branch_id]
            if (first - branch_day).days <= ZONE_SPREAD and (branch_day - last).days <= ZONE_SPREAD:
                near.append(advance)
        if not near:
            return
        if stage.audience == "employee":
            audience = {a.id: self.users.get(a.employee_id, []) for a in near}
        elif stage.audience == "manager":
            audience = await self._manager_users(near, days)
        else:
            finance = await self._role_users("finance")
            audience = {a.id: finance for a in near}
        for advance in near:
            first, last = stage.window(advance.expected_settlement_date)
            for reader in await self._read(audience.get(advance.id, [])):
                if first <= self._today(reader) <= last:
                    self._note(
                        reader,
                        stage.kind,
                        advance.id,
                        first,
                        {"advance_id": advance.id},
                        advance=advance,
                        days_late=None if stage.audience == "employee" else stage.offset,
                    )

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
            requester: Employee | None = None
            for reader in await self._read(await self._approvers(step)):
                # Counted up to the approver's 09:00 today, so the reminder of a day does
                # not depend on which hourly scan of that day sends it. A day with no scan
                # is not caught up: the next day's reminder says the same, more urgently.
                day = self._today(reader)
                nine = dt.datetime.combine(day, SEND_AT, ZoneInfo(reader.time_zone))
                hours = working_hours(started, nine, reader.time_zone)
                if hours <= policy.approval_wait_hours:
                    continue
                requester = requester or await self.session.get(Employee, advance.employee_id)
                assert requester is not None
                self._note(
                    reader,
                    "approval.waiting",
                    step.id,
                    day,
                    {"step_id": step.id, "advance_id": advance.id},
                    params={
                        "requester": display_name(requester, reader.locale),
                        "amount": reader.money(advance.amount, advance.currency),
                        "purpose": advance.purpose,
                        "hours": str(int(hours)),
                    },
                )

    def _note(
        self,
        reader: Reader,
        kind: str,
        subject: uuid.UUID,
        day: dt.date,
        data: dict[str, Any],
        *,
        advance: Advance | None = None,
        days_late: int | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        """Note a reminder. Its key names (the tenant being the schema) its kind, subject,
        day and recipient; the day is the one it was due, also when it goes out later."""
        key = f"reminder:{kind}:{subject}:{day.isoformat()}:{reader.user.id}"
        self.pending[key] = _Pending(reader, kind, key, data, advance, days_late, params)

    async def write(self) -> None:
        """Write the reminders no earlier scan wrote, at once: their keys are looked up
        first (one query), so only new ones are built."""
        written = await _existing(self.session, Notification.idempotency_key, self.pending)
        new = [p for key, p in self.pending.items() if key not in written]
        escalated = {p.advance.employee_id for p in new if p.advance and p.days_late}
        employees = (
            {
                e.id: e
                for e in await self.session.scalars(
                    select(Employee).where(Employee.id.in_(escalated))
                )
            }
            if escalated
            else {}
        )
        drafts = []
        for pending in new:
            params = pending.params
            if params is None:
                assert pending.advance is not None
                params = self._advance_params(pending.advance, pending.reader)
                if pending.days_late is not None:
                    employee = employees[pending.advance.employee_id]
                    params |= {
                        "employee": display_name(employee, pending.reader.locale),
                        "days": str(pending.days_late),
                    }
            drafts.append(Draft(pending.reader, pending.kind, pending.key, params, pending.data))
        self.report.sent += len(await notify_many(self.session, drafts))
        self.pending = {}

    def _advance_params(self, advance: Advance, reader: Reader) -> dict[str, str]:
        owed = self.owed.get(advance.id, Decimal(0))
        return {
            "amount": reader.money(advance.amount, advance.currency),
            "outstanding": reader.money(owed, advance.currency),
            "purpose": advance.purpose,
            "due": reader.date(advance.expected_settlement_date),
        }

    async def _manager_users(
        self, advances: list[Advance], days: dict[uuid.UUID, dt.date]
    ) -> dict[uuid.UUID, list[User]]:
        """Each advance's employee's manager's users, on the branch's today: two queries
        per branch calendar day (few), and one for the users."""
        by_day: dict[dt.date, set[uuid.UUID]] = {}
        for advance in advances:
            by_day.setdefault(days[advance.branch_id], set()).add(advance.employee_id)
        manager_of: dict[tuple[uuid.UUID, dt.date], uuid.UUID] = {}
        for day, employees in by_day.items():
            places = await placements(self.session, employees, day)
            positions = {p.position_id for p in places.values() if p.position_id is not None}
            managers = await managers_of_positions(self.session, positions, day)
            for employee_id, place in places.items():
                manager = managers.get(place.position_id) if place.position_id else None
                if manager is not None:
                    manager_of[(employee_id, day)] = manager
        users: dict[uuid.UUID, list[User]] = {}
        if manager_of:
            for user in await self.session.scalars(
                select(User)
                .where(User.employee_id.in_(set(manager_of.values())), User.is_active.is_(True))
                .order_by(User.email)
            ):
                users.setdefault(user.employee_id, []).append(user)  # type: ignore[arg-type]
        found = {a.id: manager_of.get((a.employee_id, days[a.branch_id])) for a in advances}
        return {
            advance_id: users.get(manager, []) if manager is not None else []
            for advance_id, manager in found.items()
        }

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


async def _existing(session: AsyncSession, column: Any, keys: Iterable[str]) -> set[str]:
    """Those of `keys` found in the unique `column`: one query, the keys bound as one array."""
    wanted = list(keys)
    if not wanted:
        return set()
    found = await session.scalars(
        select(column).where(column == any_(bindparam("keys", wanted, type_=ARRAY(String))))
    )
    return set(found)
