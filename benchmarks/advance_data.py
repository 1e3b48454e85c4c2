"""Bulk data for the advance benchmarks.

The organisation (branches, units, positions) is built with the domain actions, as an
admin would; employees, advances, approval steps and ledger entries, which would take
minutes one action at a time, are written with COPY in the shapes the actions write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import Viewer, create_user
from domain.organisation import actions as org
from tenants.context import Tenant

START = dt.date(2022, 1, 1)
PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway database's user


@dataclasses.dataclass(frozen=True)
class Seat:
    """Where employees are placed: a branch, a unit of it and a position in the unit."""

    branch_id: uuid.UUID
    currency: str
    unit_id: uuid.UUID
    position_id: uuid.UUID
    level_id: uuid.UUID


@dataclasses.dataclass(frozen=True)
class Office:
    code: str
    country: str
    currency: str
    time_zone: str
    locale: str


async def admin(tenant: Tenant) -> Viewer:
    """An admin user of `tenant` (the caller binds the tenant) and the viewer acting as it."""
    user = await create_user(
        tenant,
        email="admin@bench.test",
        display_name="Admin",
        password=PASSWORD,
        roles=["admin"],
    )
    return Viewer(
        id=user.id,
        email=user.email,
        display_name="Admin",
        roles=("admin",),
        locale=None,
        session_id=user.id,
    )


async def organisation(
    actor: Viewer, offices: Sequence[Office], units_per_office: int
) -> tuple[list[Seat], Seat]:
    """A company unit with a manager's seat, and `units_per_office` departments per office,
    each with one large staff position reporting to the manager. Returns the staff seats
    and the manager's seat."""
    level = await org.create_job_level(actor, code="L3", rank=3, title="Staff")
    lead = await org.create_job_level(actor, code="L5", rank=5, title="Manager")
    branches = [
        await org.create_branch(
            actor,
            code=office.code,
            name=office.code,
            country=office.country,
            currency=office.currency,
            time_zone_name=office.time_zone,
            locale=office.locale,
        )
        for office in offices
    ]
    root = await org.create_org_unit(
        actor, name="Company", kind="company", branch_id=branches[0].id, effective_date=START
    )
    manager = await org.create_position(
        actor,
        title="Manager",
        org_unit_id=root.id,
        opened_on=START,
        job_level_id=lead.id,
        headcount=1000,
    )
    seats = []
    for branch in branches:
        for n in range(units_per_office):
            unit = await org.create_org_unit(
                actor,
                name=f"{branch.code} department {n}",
                kind="department",
                branch_id=branch.id,
                parent_id=root.id,
                effective_date=START,
            )
            position = await org.create_position(
                actor,
                title="Staff",
                org_unit_id=unit.id,
                opened_on=START,
                job_level_id=level.id,
                reports_to_id=manager.id,
                headcount=100_000,
            )
            seats.append(Seat(branch.id, branch.currency, unit.id, position.id, level.id))
    head = Seat(branches[0].id, branches[0].currency, root.id, manager.id, lead.id)
    return seats, head


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    """A raw connection in the tenant's schema: its triggers name tables unqualified."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'SET search_path TO "{schema}", shared')
    return conn


async def copy(
    conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str], rows: list[Any]
) -> None:
    await conn.copy_records_to_table(table, schema_name=schema, columns=columns, records=rows)


async def hire(
    conn: asyncpg.Connection, schema: str, seats: Sequence[Seat], count: int, prefix: str
) -> list[tuple[uuid.UUID, Seat]]:
    """`count` employees spread over `seats`, each with a hire event and its period."""
    hired = [(uuid.uuid4(), seats[n % len(seats)]) for n in range(count)]
    await copy(
        conn,
        schema,
        "employees",
        ("id", "employee_number", "given_name", "family_name", "hire_date", "search_text"),
        [
            (eid, f"{prefix}{n:06}", f"Given{n}", f"Family{n % 97}", START, f"{prefix}{n:06}")
            for n, (eid, _) in enumerate(hired)
        ],
    )
    await copy(
        conn,
        schema,
        "employment_events",
        (
            "id",
            "employee_id",
            "kind",
            "effective_date",
            "branch_id",
            "position_id",
            "status",
        ),
        [
            (uuid.uuid4(), eid, "hire", START, seat.branch_id, seat.position_id, "active")
            for eid, seat in hired
        ],
    )
    await copy(
        conn,
        schema,
        "employee_periods",
        (
            "employee_id",
            "valid_from",
            "branch_id",
            "position_id",
            "org_unit_id",
            "job_level_id",
            "status",
        ),
        [
            (eid, START, seat.branch_id, seat.position_id, seat.unit_id, seat.level_id, "active")
            for eid, seat in hired
        ],
    )
    return hired


ADVANCE_COLUMNS = (
    "id",
    "employee_id",
    "branch_id",
    "kind",
    "amount",
    "currency",
    "purpose",
    "expected_settlement_date",
    "status",
    "created_at",
    "submitted_at",
    "disbursed_at",
    "closed_at",
)
STEP_COLUMNS = (
    "id",
    "advance_id",
    "seq",
    "role",
    "approver_id",
    "approver_role",
    "reason",
    "status",
    "decided_at",
    "created_at",
)
ENTRY_COLUMNS = ("id", "advance_id", "kind", "amount", "currency", "occurred_on")


async def analyze(conn: asyncpg.Connection) -> None:
    """Fresh planner statistics, as autovacuum would have gathered by the time of a report."""
    await conn.execute("ANALYZE")


async def explain(engine: AsyncEngine, tenant: Tenant, run: Any) -> list[str]:
    """EXPLAIN ANALYZE of every statement `run()` sends, slowest first, for reading plans."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.startswith(("SET ", "EXPLAIN")):
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f'SET search_path TO "{tenant.schema}", shared')
        for statement, parameters in sent:
            result = await conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
            )
            plans.append("\n".join(row[0] for row in result))
    return sorted(plans, key=_execution_ms, reverse=True)


def _execution_ms(plan: str) -> float:
    last = plan.strip().splitlines()[-1]  # "Execution Time: 12.345 ms"
    return float(last.split(":")[1].split()[0]) if "Execution Time" in last else 0.0
