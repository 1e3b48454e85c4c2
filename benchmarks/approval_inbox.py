"""The first page of `approvalInbox` for an approver with 1,000 pending steps.

A tenant of 521 people: the approver and 20 fellow managers, 500 staff. The approver has
`--pending` advances waiting at their step; around them, `--noise` other advances: half
waiting for other managers, a quarter already approved by this approver and waiting for
finance, a quarter approved and paid out. Steps and advances are written with COPY.

Measured in-process through httpx's ASGI transport, after a warm-up, `--runs` times each:
the first page of 20 (step, advance, requester), the same page with each requester's credit
profile, a page deep in the inbox (after the 980th step), and the domain query alone.
Prints p50 and p95 of each and the ratio of the GraphQL page to the domain query.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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
    STEP_COLUMNS,
    Office,
    admin,
    analyze,
    connect,
    copy,
    explain,
    hire,
    organisation,
)
from benchmarks.support import (
    asyncpg_dsn,
    bench_engine,
    machine,
    ms,
    percentile,
    throwaway_database,
)
from domain.advances import queries
from domain.identity.actions import Viewer, create_user, load_viewer
from domain.identity.tokens import verify_access_token
from renshi.app import create_app
from renshi.settings import get_settings
from tenants.binding import tenant_session
from tenants.context import Tenant, use_tenant
from tenants.provisioning import TenantSpec, create_tenant

PAGE = """query($after: String) { approvalInbox(first: 20, after: $after) {
  items { step { id seq role } advance {
    id purpose amount { amount formatted } expectedSettlementDate employee { displayName }
  } }
  hasNextPage endCursor
} }"""
WITH_PROFILE = """{ approvalInbox(first: 20) {
  items { step { id } advance { id amount { formatted } employee { displayName } }
    creditProfile { outstanding { amount } openAdvances overdueCount averageDaysToSettle } }
} }"""
SHANGHAI = Office("SH", "CN", "CNY", "Asia/Shanghai", "zh_CN")


async def fill(
    conn: asyncpg.Connection, tenant: Tenant, pending: int, noise: int, seed: int
) -> uuid.UUID:
    """Write the people, advances and steps; returns the approver's employee ID."""
    rng = random.Random(seed)
    schema = tenant.schema
    with use_tenant(tenant):
        actor = await admin(tenant)
        seats, head = await organisation(actor, [SHANGHAI], units_per_office=4)
    managers = [eid for eid, _ in await hire(conn, schema, [head], 21, "M")]
    staff = await hire(conn, schema, seats, 500, "E")
    approver, others = managers[0], managers[1:]
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)

    advances: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    for n in range(pending + noise):
        advance_id = uuid.uuid4()
        requester, seat = staff[rng.randrange(len(staff))]
        at = start + dt.timedelta(seconds=n * 7)
        amount = Decimal(rng.randrange(100_00, 5_000_00)) / 100
        due = dt.date(2027, 3, 1) + dt.timedelta(days=rng.randrange(120))
        if n < pending:  # the approver's turn
            shape, first, status = "pending", approver, "submitted"
        else:
            shape = rng.choice(("other", "other", "finance", "paid"))
            first = approver if shape in ("finance", "paid") else rng.choice(others)
            status = "disbursed" if shape == "paid" else "submitted"
        decided = at + dt.timedelta(hours=2)
        advances.append(
            (
                advance_id,
                requester,
                seat.branch_id,
                "business",
                amount,
                "CNY",
                f"Advance {n}",
                due,
                status,
                at,
                at,
                decided + dt.timedelta(hours=1) if shape == "paid" else None,
                None,
            )
        )
        first_done = shape in ("finance", "paid")
        steps.append(
            (
                uuid.uuid4(),
                advance_id,
                1,
                "manager",
                first,
                None,
                "reporting line",
                "approved" if first_done else "pending",
                decided if first_done else None,
                at,
            )
        )
        steps.append(
            (
                uuid.uuid4(),
                advance_id,
                2,
                "finance",
                None,
                "finance",
                "finance review",
                "approved" if shape == "paid" else "pending",
                decided if shape == "paid" else None,
                at,
            )
        )
        if shape == "paid":
            entries.append((uuid.uuid4(), advance_id, "disbursement", amount, "CNY", due))
    await copy(conn, schema, "advances", ADVANCE_COLUMNS, advances)
    await copy(conn, schema, "approval_steps", STEP_COLUMNS, steps)
    await copy(conn, schema, "ledger_entries", ENTRY_COLUMNS, entries)
    await analyze(conn)
    return approver


async def timed(call: Any, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def line(label: str, samples: list[float]) -> str:
    p50, p95 = statistics.median(samples), percentile(samples, 0.95)
    return f"  {label:<34} p50 {ms(p50):>9}  p95 {ms(p95):>9}"


async def main(runs: int, pending: int, noise: int, explain_plans: bool) -> None:
    print(f"machine: {machine()}")
    async with throwaway_database("inbox") as url, bench_engine(url) as engine:
        tenant = await create_tenant(
            engine,
            TenantSpec.parse(slug="bench", name="Bench", currency="CNY", time_zone="Asia/Shanghai"),
        )
        started = time.perf_counter()
        conn = await connect(asyncpg_dsn(url), tenant.schema)
        try:
            approver = await fill(conn, tenant, pending, noise, seed=4)
        finally:
            await conn.close()
        with use_tenant(tenant):
            await create_user(
                tenant,
                email="approver@bench.test",
                display_name="Approver",
                password=PASSWORD,
                roles=["manager"],
                employee_id=approver,
            )
        print(
            f"wrote {pending + noise} advances with {2 * (pending + noise)} steps "
            f"in {time.perf_counter() - started:.1f} s"
        )

        app = create_app(keep_spares=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/graphql",
                headers={"X-Tenant": "bench"},
                json={
                    "query": 'mutation($p: String!) { login(email: "approver@bench.test", '
                    "password: $p) { accessToken } }",
                    "variables": {"p": PASSWORD},
                },
            )
            token = login.json()["data"]["login"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}

            async def post(query: str, variables: dict[str, Any] | None = None) -> Any:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"]["approvalInbox"]

            # Walk the whole inbox once: every pending step is there, once, in order.
            seen, after = [], None
            while True:
                page = await post(PAGE, {"after": after})
                seen += [item["step"]["id"] for item in page["items"]]
                if not page["hasNextPage"]:
                    break
                after = page["endCursor"]
            assert len(seen) == len(set(seen)) == pending, len(seen)
            deep_cursor = seen[979]

            async def first_page() -> None:
                assert len((await post(PAGE))["items"]) == 20

            async def with_profiles() -> None:
                assert len((await post(WITH_PROFILE))["items"]) == 20

            async def deep_page() -> None:
                assert len((await post(PAGE, {"after": deep_cursor}))["items"]) == 20

            viewer = await _viewer(tenant, token)

            async def domain_query() -> None:
                with use_tenant(tenant):
                    async with tenant_session() as session:
                        rows, _ = await queries.inbox(session, viewer, first=20, after=None)
                assert len(rows) == 20

            calls = {
                "first page (20)": first_page,
                "first page with credit profiles": with_profiles,
                "page after the 980th step": deep_page,
                "domain query alone": domain_query,
            }
            if explain_plans:
                for plan in (await explain(engine, tenant, domain_query))[:2]:
                    print(plan, end="\n\n")
            for call in calls.values():
                await timed(call, 10)  # warm-up
            results = {label: await timed(call, runs) for label, call in calls.items()}

    print(f"approvalInbox, {pending} steps pending for the approver, {noise} others; {runs} runs")
    for label, samples in results.items():
        print(line(label, samples))
    page = statistics.median(results["first page (20)"])
    bare = statistics.median(results["domain query alone"])
    profiles = statistics.median(results["first page with credit profiles"])
    print(f"  first page / domain query (p50)   {page / bare:.1f}x")
    print(f"  with profiles / first page (p50)  {profiles / page:.1f}x")
    print(f"machine: {machine()}")


async def _viewer(tenant: Tenant, token: str) -> Viewer:
    """The approver as the API sees them, for calling the domain query directly."""
    claims = verify_access_token(get_settings().secret_key.get_secret_value(), token)
    with use_tenant(tenant):
        return await load_viewer(tenant, claims)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--noise", type=int, default=20_000)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.pending, args.noise, args.explain))
