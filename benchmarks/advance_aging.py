"""`advanceAging` over 100,000 advances with 300,000 ledger entries: wall time.

A tenant in CNY with offices in Shanghai (CNY), Los Angeles (USD) and Tokyo (JPY), four
departments each, 5,000 employees. Every advance has three entries: the disbursement, an
expense settlement and a return or payroll deduction; a quarter are settled, the rest are
partly settled and owe the remainder. Settlement dates spread from 200 days ago to 60 days
ahead, so about three in four open advances are overdue. Everything but the organisation
is written with COPY, then ANALYZE runs, as autovacuum would have by report time.

Times the GraphQL query (as an admin, through httpx's ASGI transport) and the domain query
alone, after a warm-up, `--runs` times each; target: under 2 s. Checks the per-branch totals
against a plain SQL sum first. `--explain` prints the plans of the slowest statements.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from benchmarks.advance_data import (
    ADVANCE_COLUMNS,
    ENTRY_COLUMNS,
    PASSWORD,
    Office,
    admin,
    analyze,
    connect,
    copy,
    explain,
    hire,
    organisation,
)
from benchmarks.support import asyncpg_dsn, bench_engine, machine, ms, throwaway_database
from domain.advances import actions, queries
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
QUERY = """{ advanceAging {
  group orgUnit { name } branch { code } bucket
  amount { amount currency } converted { amount currency } count
} }"""
TODAY = dt.datetime.now(dt.UTC).date()


async def fill(conn: asyncpg.Connection, tenant: Tenant, advances: int, seed: int) -> Viewer:
    rng = random.Random(seed)
    with use_tenant(tenant):
        actor = await admin(tenant)
        seats, _ = await organisation(actor, OFFICES, units_per_office=4)
        for base, quote, rate in (("USD", "CNY", "7.1"), ("CNY", "JPY", "20.5")):
            await actions.set_exchange_rate(
                actor, base=base, quote=quote, rate=Decimal(rate), valid_from=dt.date(2020, 1, 1)
            )
    people = await hire(conn, tenant.schema, seats, 5000, "E")
    rows: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(advances):
        advance_id = uuid.uuid4()
        employee, seat = people[rng.randrange(len(people))]
        amount = Money.of(Decimal(rng.randrange(100_00, 50_000_00)) / 100, seat.currency).amount
        spent = Money.of(amount * Decimal(rng.randrange(10, 70)) / 100, seat.currency).amount
        settled = rng.random() < 0.25
        back = amount - spent if settled else Money.of(amount / 10, seat.currency).amount
        due = TODAY + dt.timedelta(days=rng.randrange(-200, 61))
        at = created + dt.timedelta(seconds=n)
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
                "settled" if settled else "partially_settled",
                at,
                at,
                at,
                at if settled else None,
            )
        )
        back_kind = rng.choice(("return", "payroll_deduction"))
        entries += [
            (uuid.uuid4(), advance_id, "disbursement", amount, seat.currency, due),
            (uuid.uuid4(), advance_id, "expense_settlement", -spent, seat.currency, due),
            (uuid.uuid4(), advance_id, back_kind, -back, seat.currency, due),
        ]
    await copy(conn, tenant.schema, "advances", ADVANCE_COLUMNS, rows)
    await copy(conn, tenant.schema, "ledger_entries", ENTRY_COLUMNS, entries)
    await analyze(conn)
    return actor


# The same figure by another road: overdue outstanding per branch and currency.
CHECK_SQL = """
SELECT b.code, a.currency, sum(l.amount) AS owed, count(DISTINCT a.id) AS n
  FROM advances a
  JOIN branches b ON b.id = a.branch_id
  JOIN ledger_entries l ON l.advance_id = a.id
 WHERE a.status IN ('disbursed', 'partially_settled')
   AND a.expected_settlement_date < (now() AT TIME ZONE b.time_zone)::date
 GROUP BY b.code, a.currency
"""


async def main(runs: int, advances: int, explain_plans: bool) -> None:
    print(f"machine: {machine()}")
    async with throwaway_database("aging") as url, bench_engine(url) as engine:
        tenant = await create_tenant(
            engine,
            TenantSpec.parse(slug="bench", name="Bench", currency="CNY", time_zone="Asia/Shanghai"),
        )
        started = time.perf_counter()
        conn = await connect(asyncpg_dsn(url), tenant.schema)
        try:
            actor = await fill(conn, tenant, advances, seed=11)
            expected = {
                (r["code"], r["currency"]): (r["owed"], r["n"]) for r in await conn.fetch(CHECK_SQL)
            }
            entry_count = await conn.fetchval("SELECT count(*) FROM ledger_entries")
        finally:
            await conn.close()
        print(
            f"wrote {advances} advances and {entry_count} ledger entries "
            f"in {time.perf_counter() - started:.1f} s"
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

            async def graphql() -> list[dict[str, Any]]:
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                body = response.json()
                assert "errors" not in body, body
                rows: list[dict[str, Any]] = body["data"]["advanceAging"]
                return rows

            async def domain() -> None:
                with use_tenant(tenant):
                    async with tenant_session() as session:
                        await queries.aging(session, actor, tenant_currency="CNY")

            found: dict[tuple[str, str], list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0])
            for row in await graphql():
                if row["group"] == "branch":
                    key = (row["branch"]["code"], row["amount"]["currency"])
                    found[key][0] += Decimal(row["amount"]["amount"])
                    found[key][1] += row["count"]
            assert {k: tuple(v) for k, v in found.items()} == expected, (found, expected)

            if explain_plans:
                for plan in (await explain(engine, tenant, domain))[:2]:
                    print(plan, end="\n\n")
            await graphql()  # warm-up
            await domain()
            timings: dict[str, list[float]] = {
                "POST /graphql advanceAging": [],
                "domain query alone": [],
            }
            for _ in range(runs):
                for label, call in (
                    ("POST /graphql advanceAging", graphql),
                    ("domain query alone", domain),
                ):
                    at = time.perf_counter()
                    await call()
                    timings[label].append(time.perf_counter() - at)

    print(f"advanceAging over {advances} advances and {entry_count} entries, {runs} runs each")
    for label, samples in timings.items():
        print(
            f"  {label:<28} p50 {ms(statistics.median(samples)):>10}  "
            f"min {ms(min(samples)):>10}  max {ms(max(samples)):>10}"
        )
    p50 = statistics.median(timings["POST /graphql advanceAging"])
    print(f"  target under 2 s: {'met' if p50 < 2 else 'MISSED'} ({p50 / 2:.2f} of the budget)")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--advances", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.advances, args.explain))
