"""`riskPatterns` over 100,000 employees and 100,000 advances: wall time.

A tenant in CNY with offices in Shanghai (CNY), Los Angeles (USD) and Tokyo (JPY), 20
departments each under one company unit; 100,000 employees hired in 2022 and 3,000 more
who left in the last twelve months. Each advance has three entries (disbursement,
expense settlement, return or payroll deduction) dated from 400 days ago to today; a
quarter are settled, one in fifty written off, the rest owe a tenth and are due from
200 days ago to 60 days ahead. Everything but the organisation is written with COPY, then
ANALYZE runs, as autovacuum would have by report time.

Times the GraphQL query (as an admin, through httpx's ASGI transport, default date: each
branch on its own today) and the domain query alone, after a warm-up, `--runs` times each.
`--explain` prints the plans of the slowest statements.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from benchmarks.advance_data import (
    ADVANCE_COLUMNS,
    ENTRY_COLUMNS,
    PASSWORD,
    START,
    Office,
    Seat,
    admin,
    analyze,
    connect,
    copy,
    explain,
    hire,
    organisation,
)
from benchmarks.support import asyncpg_dsn, bench_engine, machine, ms, throwaway_database
from domain import clock
from domain.advances import actions
from domain.analytics import patterns
from domain.identity.actions import Viewer
from domain.money import Money
from renshi.app import create_app
from tenants.binding import tenant_session
from tenants.context import Tenant, use_tenant
from tenants.provisioning import TenantSpec, create_tenant

OFFICES = [
    Office("SH", "CN", "CNY", "Asia/Shanghai", "zh_CN"),
    Office("LA", "US", "USD", "America/Los_Angeles", "en_US"),
    Office("TK", "JP", "JPY", "Asia/Tokyo", "ja_JP"),
]
QUERY = """{ riskPatterns {
  asOf tenant { headcount borrowers overdueRate leavers writeOffAmount { amount } }
  units { orgUnit { name } flaggedMetrics
    metrics { headcount overdueRate averageSettlementDays writeOffRate attritionRate }
    comparisons { metric ratio pValue adjustedPValue flagged } }
} }"""
TODAY = clock.local_today("Asia/Shanghai")  # the tenant's today, which the report uses


async def fill(
    conn: asyncpg.Connection, tenant: Tenant, employees: int, advances: int, seed: int
) -> Viewer:
    rng = random.Random(seed)
    with use_tenant(tenant):
        actor = await admin(tenant)
        seats, _ = await organisation(actor, OFFICES, units_per_office=20)
        for base, quote, rate in (("USD", "CNY", "7.1"), ("CNY", "JPY", "20.5")):
            await actions.set_exchange_rate(
                actor, base=base, quote=quote, rate=Decimal(rate), valid_from=dt.date(2020, 1, 1)
            )
    people = await hire(conn, tenant.schema, seats, employees, "E")
    await leavers(conn, tenant.schema, seats, 3000, rng)
    rows: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for n in range(advances):
        advance_id = uuid.uuid4()
        employee, seat = people[rng.randrange(len(people))]
        amount = Money.of(Decimal(rng.randrange(100_00, 50_000_00)) / 100, seat.currency).amount
        spent = Money.of(amount * Decimal(rng.randrange(10, 70)) / 100, seat.currency).amount
        fate = rng.random()
        paid = TODAY - dt.timedelta(days=rng.randrange(60, 400))
        closed = min(paid + dt.timedelta(days=rng.randrange(5, 90)), TODAY)
        at = created + dt.timedelta(seconds=n)
        if fate < 0.02:
            status, last_kind, last = "written_off", "write_off", amount - spent
            due = paid + dt.timedelta(days=30)
        elif fate < 0.27:
            status, last_kind, last = (
                "settled",
                rng.choice(("return", "payroll_deduction")),
                amount - spent,
            )
            due = paid + dt.timedelta(days=30)
        else:
            status, last_kind = "partially_settled", rng.choice(("return", "payroll_deduction"))
            last = amount - spent - Money.of(amount / 10, seat.currency).amount
            due = TODAY + dt.timedelta(days=rng.randrange(-200, 61))
        rows.append(
            (
                advance_id,
                employee,
                seat.branch_id,
                "business",
                amount,
                seat.currency,
                f"Advance {n}",
                due,
                status,
                at,
                at,
                at,
                at if status != "partially_settled" else None,
            )
        )
        entries += [
            (uuid.uuid4(), advance_id, "disbursement", amount, seat.currency, paid),
            (uuid.uuid4(), advance_id, "expense_settlement", -spent, seat.currency, paid),
            (uuid.uuid4(), advance_id, last_kind, -last, seat.currency, closed),
        ]
    await copy(conn, tenant.schema, "advances", ADVANCE_COLUMNS, rows)
    await copy(conn, tenant.schema, "ledger_entries", ENTRY_COLUMNS, entries)
    await analyze(conn)
    return actor


async def leavers(
    conn: asyncpg.Connection, schema: str, seats: list[Seat], count: int, rng: random.Random
) -> None:
    """`count` people hired in 2022 who left on a day of the last twelve months."""
    people = [(uuid.uuid4(), seats[n % len(seats)]) for n in range(count)]
    left = {eid: TODAY - dt.timedelta(days=rng.randrange(0, 365)) for eid, _ in people}
    await copy(
        conn,
        schema,
        "employees",
        ("id", "employee_number", "given_name", "family_name", "hire_date", "search_text"),
        [
            (eid, f"X{n:06}", "Gone", "Leaver", START, f"x{n:06}")
            for n, (eid, _) in enumerate(people)
        ],
    )
    columns = (
        "employee_id",
        "valid_from",
        "valid_to",
        "branch_id",
        "position_id",
        "org_unit_id",
        "job_level_id",
        "status",
    )
    periods = []
    for eid, seat in people:
        place = (seat.branch_id, seat.position_id, seat.unit_id, seat.level_id)
        periods.append((eid, START, left[eid], *place, "active"))
        periods.append((eid, left[eid], None, *place, "terminated"))
    await copy(conn, schema, "employee_periods", columns, periods)


async def main(runs: int, employees: int, advances: int, explain_plans: bool) -> None:
    print(f"machine: {machine()}")
    async with throwaway_database("patterns") as url, bench_engine(url) as engine:
        tenant = await create_tenant(
            engine,
            TenantSpec.parse(slug="bench", name="Bench", currency="CNY", time_zone="Asia/Shanghai"),
        )
        started = time.perf_counter()
        conn = await connect(asyncpg_dsn(url), tenant.schema)
        try:
            actor = await fill(conn, tenant, employees, advances, seed=11)
            entry_count = await conn.fetchval("SELECT count(*) FROM ledger_entries")
        finally:
            await conn.close()
        print(
            f"wrote {employees} employees, {advances} advances and {entry_count} ledger "
            f"entries in {time.perf_counter() - started:.1f} s"
        )

        app = create_app(keep_spares=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/graphql",
                headers={"X-Tenant": "bench"},
                json={
                    "query": 'mutation($p: String!) { login(email: "admin@bench.test", '
                    "password: $p) { accessToken } }",
                    "variables": {"p": PASSWORD},
                },
            )
            headers = {"Authorization": f"Bearer {login.json()['data']['login']['accessToken']}"}

            async def graphql() -> dict[str, Any]:
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                body = response.json()
                assert "errors" not in body, body
                found: dict[str, Any] = body["data"]["riskPatterns"]
                return found

            async def domain() -> None:
                with use_tenant(tenant):
                    async with tenant_session() as session:
                        await patterns.department_patterns(
                            session, actor, tenant_currency="CNY", time_zone="Asia/Shanghai"
                        )

            found = await graphql()
            assert found["tenant"]["headcount"] == employees, found["tenant"]
            assert found["tenant"]["leavers"] == 3000, found["tenant"]
            print(f"tenant: {found['tenant']}; units: {len(found['units'])}")
            if explain_plans:
                for plan in (await explain(engine, tenant, domain))[:3]:
                    print(plan, end="\n\n")
            await domain()  # warm-up
            timings: dict[str, list[float]] = {"POST /graphql riskPatterns": [], "domain alone": []}
            for _ in range(runs):
                for label, call in (
                    ("POST /graphql riskPatterns", graphql),
                    ("domain alone", domain),
                ):
                    at = time.perf_counter()
                    await call()
                    timings[label].append(time.perf_counter() - at)

    print(f"riskPatterns over {employees} employees and {advances} advances, {runs} runs each")
    for label, samples in timings.items():
        print(
            f"  {label:<28} p50 {ms(statistics.median(samples)):>10}  "
            f"min {ms(min(samples)):>10}  max {ms(max(samples)):>10}"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--advances", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.employees, args.advances, args.explain))
