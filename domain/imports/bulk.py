"""Writing many employees at once: draft events, derived periods and batched inserts.

Importers do what the domain actions do for one employee (record events, rebuild the
periods with `replay`, write an audit entry in the same transaction), but for thousands of
employees per statement: rows are buffered and sent in batches with COPY.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import operator
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit
from domain.audit import AuditEntry
from domain.organisation.models import Branch, JobLevel, OrgUnit, OrgUnitVersion, Position
from domain.people.history import PositionFacts, State, period_values, replay
from domain.people.models import Employee, EmployeePeriod, EmploymentEvent, PerformanceReview
from tenants.context import current_tenant

BATCH = 1000
# Keys per look-up query. NOTE: with a thousand keys PostgreSQL prefers scanning a large
# table whole to a thousand index probes, and an import grows its tables as it goes; with a
# hundred it keeps using the index.
LOOKUP = 100
_ID_COUNTER = itertools.count(secrets.randbits(40))


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7 layout: milliseconds, then a counter).

    NOTE: imports write hundreds of thousands of rows at once; ids that grow with time land
    at the right edge of the primary-key and foreign-key indexes instead of all over them.
    """
    millis = time.time_ns() // 1_000_000
    count = next(_ID_COUNTER) & ((1 << 62) - 1)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | count)


# Draft events sort after every recorded event of the same day, as a new recording would.
_DRAFT_SEQ = 1 << 62


@dataclasses.dataclass(slots=True)
class DraftEvent:
    """An employment event not yet written; `replay` reads it like a stored one."""

    employee_id: uuid.UUID
    kind: str
    effective_date: dt.date
    branch_id: uuid.UUID | None = None
    position_id: uuid.UUID | None = None
    org_unit_id: uuid.UUID | None = None
    job_level_id: uuid.UUID | None = None
    status: str | None = None
    salary_amount: Decimal | None = None
    salary_currency: str | None = None
    salary_period: str | None = None
    reason: str | None = None
    seq: int | None = _DRAFT_SEQ
    id: uuid.UUID = dataclasses.field(default_factory=new_id)

    def values(self, recorded_by: uuid.UUID | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "employee_id": self.employee_id,
            "kind": self.kind,
            "effective_date": self.effective_date,
            "branch_id": self.branch_id,
            "position_id": self.position_id,
            "org_unit_id": self.org_unit_id,
            "job_level_id": self.job_level_id,
            "status": self.status,
            "salary_amount": self.salary_amount,
            "salary_currency": self.salary_currency,
            "salary_period": self.salary_period,
            "reason": self.reason,
            "recorded_by": recorded_by,
        }

    def audit_after(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "effective_date": self.effective_date,
            "branch_id": self.branch_id,
            "position_id": self.position_id,
            "org_unit_id": self.org_unit_id,
            "job_level_id": self.job_level_id,
            "status": self.status,
            "salary_amount": self.salary_amount,
            "salary_currency": self.salary_currency,
            "reason": self.reason,
        }


def termination(
    employee_id: uuid.UUID, effective_date: dt.date, *, reason: str | None = None
) -> DraftEvent:
    """The event of an employee's leaving, for imports of people who have already left.

    Only for someone the import creates (their whole history is loaded at once): current
    staff leave through offboarding. The loader refuses, per row, a source that says an
    existing employee left while `exit_gate` holds them, and the database's exit-gate
    triggers refuse a terminated period for anyone with an open advance or offboarding case.
    """
    return DraftEvent(
        employee_id=employee_id,
        kind="termination",
        effective_date=effective_date,
        status="terminated",
        reason=reason,
    )


def derive_periods(
    employee_id: uuid.UUID,
    events: Iterable[Any],
    positions: Mapping[uuid.UUID, PositionFacts],
) -> list[dict[str, Any]]:
    """The employee's period rows from their events (`DomainError` for a bad history)."""
    return period_values(employee_id, replay(events, positions))


def state_on(
    events: Iterable[Any], positions: Mapping[uuid.UUID, PositionFacts], day: dt.date
) -> State | None:
    """What the events add up to on `day`, or None before the hire."""
    found: State | None = None
    for start, _end, state in replay(events, positions):
        if start > day:
            break
        found = state
    return found


async def plan_for_growing_tables(session: AsyncSession) -> None:
    """Plan every statement of this import transaction for the tables as they are now.

    NOTE: asyncpg prepares each statement once per connection, and after five runs
    PostgreSQL may keep one generic plan for it, costed on the tables of that moment. An
    import fills a new tenant's tables while it looks rows up by key in them, so a generic
    plan made on an empty `employees` (a sequential scan) was kept for a table of 100,000
    rows: every batch scanned all rows copied before it, and the import grew
    quadratically (issue #3). Custom plans cost a fraction of a millisecond each and see
    the tables' current size, so the look-ups use their indexes whatever the size.
    """
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def load_position_facts(session: AsyncSession) -> dict[uuid.UUID, PositionFacts]:
    rows = await session.execute(select(Position.id, Position.org_unit_id, Position.job_level_id))
    return {pid: PositionFacts(unit, level) for pid, unit, level in rows}


async def load_events(
    session: AsyncSession, employee_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EmploymentEvent]]:
    """Recorded events of the employees, by employee, in replay order."""
    found: dict[uuid.UUID, list[EmploymentEvent]] = {e: [] for e in employee_ids}
    if not employee_ids:
        return found
    ids = list(employee_ids)
    for start in range(0, len(ids), LOOKUP):
        rows = await session.scalars(
            select(EmploymentEvent)
            .where(EmploymentEvent.employee_id.in_(ids[start : start + LOOKUP]))
            .order_by(EmploymentEvent.effective_date, EmploymentEvent.seq)
        )
        for event in rows:
            found[event.employee_id].append(event)
    return found


class BulkWriter:
    """Buffers rows per table and inserts them in batches, parents before children."""

    def __init__(self, session: AsyncSession, *, actor_id: uuid.UUID | None = None) -> None:
        self.session = session
        self.actor_id = actor_id
        self.schema = current_tenant().schema
        # Seconds spent copying, by table, and waiting for the batch in flight (for -v logs).
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._rows: dict[Any, list[dict[str, Any]]] = {model: [] for model in _ORDER}
        self._replaced: list[uuid.UUID] = []
        self._inflight: asyncio.Task[None] | None = None

    def add(self, model: Any, values: dict[str, Any]) -> None:
        """Buffer one row of `model` (one of the tables in `_ORDER`)."""
        self._rows[model].append(values)

    def position(self, values: dict[str, Any]) -> None:
        self.add(Position, values)
        self.audit(
            "position.create",
            "position",
            values["id"],
            after={
                "code": values["code"],
                "title": values["title"],
                "org_unit_id": values["org_unit_id"],
                "reports_to_id": values["reports_to_id"],
                "job_level_id": values["job_level_id"],
            },
        )

    def employee(self, values: dict[str, Any]) -> None:
        self.add(Employee, values)

    def event(self, draft: DraftEvent) -> None:
        self.add(EmploymentEvent, draft.values(self.actor_id))

    def periods(self, employee_id: uuid.UUID, rows: list[dict[str, Any]], *, replace: bool) -> None:
        if replace:
            self._replaced.append(employee_id)
        self._rows[EmployeePeriod].extend(rows)

    def audit(
        self,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID | str,
        *,
        after: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
    ) -> None:
        self.add(
            AuditEntry,
            audit.values(
                actor_id=self.actor_id,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                before=before,
                after=after,
            ),
        )

    @property
    def pending(self) -> int:
        return max(len(rows) for rows in self._rows.values())

    async def flush_if_full(self) -> None:
        """Start sending the buffered rows when a batch is full, without waiting for it.

        The database checks the batch while the importer prepares the next one; whoever
        uses the session for anything else first calls `wait()`.
        """
        if self.pending >= BATCH:
            await self.wait()
            self._inflight = asyncio.create_task(self._send(self._take()))

    async def flush(self) -> None:
        """Send every buffered row, in an order the foreign keys accept, and wait for it."""
        await self.wait()
        await self._send(self._take())

    async def wait(self) -> None:
        """Wait for the batch being sent, if any (and raise what it raised)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            started = time.perf_counter()
            await inflight
            self.seconds["waiting for the database"] += time.perf_counter() - started

    def _take(self) -> tuple[dict[Any, list[dict[str, Any]]], list[uuid.UUID]]:
        taken = (self._rows, self._replaced)
        self._rows = {model: [] for model in _ORDER}
        self._replaced = []
        return taken

    async def _send(self, taken: tuple[dict[Any, list[dict[str, Any]]], list[uuid.UUID]]) -> None:
        rows_by_model, replaced = taken
        for model in _ORDER:
            if model is EmployeePeriod and replaced:
                await self.session.execute(
                    delete(EmployeePeriod).where(EmployeePeriod.employee_id.in_(replaced))
                )
            rows = rows_by_model[model]
            if rows:
                started = time.perf_counter()
                await self._copy(model.__table__, rows)
                self.seconds[model.__tablename__] += time.perf_counter() - started

    async def _copy(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` with PostgreSQL's COPY, in the session's own transaction.

        NOTE: COPY is several times faster than executemany here (100,000 employees are
        about 600,000 rows with their events, periods, positions and audit entries), and it
        runs on the session's connection, so it commits or rolls back with everything else.
        """
        columns = list(rows[0])
        json_columns = [c for c in columns if isinstance(table.c[c].type, JSONB)]
        if json_columns:
            for row in rows:
                for column in json_columns:
                    if row[column] is not None:
                        row[column] = json.dumps(row[column], ensure_ascii=False)
        pick = operator.itemgetter(*columns)
        records = [pick(row) for row in rows] if len(columns) > 1 else [(pick(r),) for r in rows]
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=columns, schema_name=self.schema
        )


# Parents before children: units before the positions in them, positions before the unit
# versions that name them as head, employees before their events and periods.
_ORDER: tuple[Any, ...] = (
    Branch,
    JobLevel,
    OrgUnit,
    Position,
    OrgUnitVersion,
    Employee,
    EmploymentEvent,
    EmployeePeriod,
    PerformanceReview,
    AuditEntry,
)
