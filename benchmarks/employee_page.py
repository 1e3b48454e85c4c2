"""A page of 100 employees through POST /graphql against a bare route, same process.

The bare route is a Starlette endpoint running one hand-written asyncpg query that returns
the same JSON: branch, org unit, position, job level and manager of each employee. Both
are called in-process through httpx's ASGI transport, after a warm-up, `--runs` times.
Prints p50 and p95 of each and the ratio (target: GraphQL within 5x of the bare route),
the median CPU time of this process per request of each (what a quiet machine would take,
when the load average says the box was busy), the mean time the garbage collector ran per
request of each (part of that CPU time), and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import statistics
import time
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from benchmarks.support import bench_engine, machine, ms, percentile, throwaway_database
from domain.identity.actions import Viewer, create_user
from domain.organisation import actions as org
from domain.people import actions as people
from renshi.app import create_app
from tenants.context import Tenant, use_tenant
from tenants.provisioning import TenantSpec, create_tenant

PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway database's user
AS_OF = dt.date(2026, 6, 1)
QUERY = """{ employees(first: 100, asOf: "2026-06-01") { edges { node {
  id displayName branch { code } orgUnit { name } position { title } jobLevel { code }
  manager { displayName }
} } } }"""

BARE_SQL = """
SELECT e.id, coalesce(e.preferred_name, e.given_name) || ' ' || e.family_name AS name,
       b.code AS branch, v.name AS unit, p.title, j.code AS level, m.name AS manager
  FROM employees e
  LEFT JOIN employee_periods ep ON ep.employee_id = e.id
       AND ep.valid_from <= $1 AND (ep.valid_to IS NULL OR ep.valid_to > $1)
  LEFT JOIN branches b ON b.id = ep.branch_id
  LEFT JOIN org_unit_versions v ON v.org_unit_id = ep.org_unit_id
       AND v.valid_from <= $1 AND (v.valid_to IS NULL OR v.valid_to > $1)
  LEFT JOIN positions p ON p.id = ep.position_id
  LEFT JOIN job_levels j ON j.id = ep.job_level_id
  LEFT JOIN LATERAL (
       SELECT coalesce(me.preferred_name, me.given_name) || ' ' || me.family_name AS name
         FROM positions up
         JOIN employee_periods mp ON mp.position_id = up.id
              AND mp.valid_from <= $1 AND (mp.valid_to IS NULL OR mp.valid_to > $1)
              AND mp.status <> 'terminated'
         JOIN employees me ON me.id = mp.employee_id
        WHERE up.id = p.reports_to_id
        ORDER BY me.employee_number LIMIT 1
  ) m ON true
 ORDER BY e.family_name, e.given_name, e.id
 LIMIT 100
"""


async def build(tenant: Tenant, admin_id: Any, people_count: int) -> None:
    """A company of `people_count` in teams of 20 under leads under a CEO."""
    actor = Viewer(
        id=admin_id,
        email="admin@bench.test",
        display_name="Admin",
        roles=("admin",),
        locale=None,
        session_id=admin_id,
    )
    start = dt.date(2022, 1, 1)
    branch = await org.create_branch(
        actor,
        code="HQ",
        name="HQ",
        country="CN",
        currency="CNY",
        time_zone_name="Asia/Shanghai",
        locale="zh_CN",
    )
    level = await org.create_job_level(actor, code="L1", rank=1, title="Staff")
    root = await org.create_org_unit(
        actor, name="Company", kind="company", branch_id=branch.id, effective_date=start
    )
    ceo = await org.create_position(actor, title="CEO", org_unit_id=root.id, opened_on=start)
    await people.hire_employee(
        actor,
        people.HireInput(
            employee_number="C0",
            given_name="Chief",
            family_name="Boss",
            hire_date=start,
            branch_id=branch.id,
            position_id=ceo.id,
        ),
    )
    hired = 1
    team = 0
    while hired < people_count:
        unit = await org.create_org_unit(
            actor,
            name=f"Team {team}",
            kind="team",
            branch_id=branch.id,
            parent_id=root.id,
            effective_date=start,
        )
        lead = await org.create_position(
            actor,
            title="Lead",
            org_unit_id=unit.id,
            opened_on=start,
            reports_to_id=ceo.id,
            job_level_id=level.id,
        )
        seat = await org.create_position(
            actor,
            title="Member",
            org_unit_id=unit.id,
            opened_on=start,
            reports_to_id=lead.id,
            job_level_id=level.id,
            headcount=50,
        )
        await people.hire_employee(
            actor,
            people.HireInput(
                employee_number=f"L{team:03}",
                given_name="Lead",
                family_name=f"T{team:03}",
                hire_date=start,
                branch_id=branch.id,
                position_id=lead.id,
            ),
        )
        hired += 1
        for n in range(min(19, people_count - hired)):
            await people.hire_employee(
                actor,
                people.HireInput(
                    employee_number=f"M{team:03}-{n:02}",
                    given_name=f"Member{n:02}",
                    family_name=f"T{team:03}",
                    hire_date=start,
                    branch_id=branch.id,
                    position_id=seat.id,
                ),
            )
            hired += 1
        team += 1


def bare_app(pool: asyncpg.Pool, schema: str) -> Starlette:
    async def page(_: Request) -> Response:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{schema}", shared')
            rows = await conn.fetch(BARE_SQL, AS_OF)
        edges = [
            {
                "node": {
                    "id": str(r["id"]),
                    "displayName": r["name"],
                    "branch": {"code": r["branch"]},
                    "orgUnit": {"name": r["unit"]},
                    "position": {"title": r["title"]},
                    "jobLevel": {"code": r["level"]},
                    "manager": {"displayName": r["manager"]} if r["manager"] else None,
                }
            }
            for r in rows
        ]
        body = {"data": {"employees": {"edges": edges}}}
        return Response(json.dumps(body), media_type="application/json")

    return Starlette(routes=[Route("/page", page)])


class CollectorClock:
    """Seconds the cyclic garbage collector has run since `start`, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def start(self) -> None:
        gc.callbacks.append(self)

    def stop(self) -> None:
        gc.callbacks.remove(self)


async def timed(
    call: Any,
    runs: int,
    cpu: list[float] | None = None,
    collector: tuple[CollectorClock, list[float]] | None = None,
) -> list[float]:
    """Wall times of `runs` calls; their CPU times of this process go to `cpu`, and the
    collector's time during each to the list beside its clock."""
    samples = []
    for _ in range(runs):
        collected = collector[0].seconds if collector else 0.0
        started, started_cpu = time.perf_counter(), time.process_time()
        await call()
        samples.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
        if collector is not None:
            collector[1].append(collector[0].seconds - collected)
    return samples


async def main(runs: int, people_count: int) -> None:
    load_before = machine()
    async with throwaway_database("page") as url, bench_engine(url) as engine:
        tenant = await create_tenant(engine, TenantSpec.parse(slug="bench", name="Bench"))
        with use_tenant(tenant):
            admin = await create_user(
                tenant,
                email="admin@bench.test",
                display_name="Admin",
                password=PASSWORD,
                roles=["admin"],
            )
            started = time.perf_counter()
            await build(tenant, admin.id, people_count)
            print(f"built {people_count} employees in {time.perf_counter() - started:.1f} s")

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=5)
        api = create_app(keep_spares=False)
        app = Starlette(routes=[Mount("/bare", bare_app(pool, tenant.schema)), Mount("/", api)])
        transport = httpx.ASGITransport(app=app)
        async with (
            api.router.lifespan_context(api),  # as uvicorn starts it
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            login = await client.post(
                "/graphql",
                headers={"X-Tenant": "bench"},
                json={
                    "query": 'mutation($p: String!) { login(email: "admin@bench.test", '
                    "password: $p) { accessToken } }",
                    "variables": {"p": PASSWORD},
                },
            )
            token = login.json()["data"]["login"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}

            async def graphql() -> None:
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                assert len(response.json()["data"]["employees"]["edges"]) == 100

            async def bare() -> None:
                response = await client.get("/bare/page")
                assert len(response.json()["data"]["employees"]["edges"]) == 100

            same = await client.post("/graphql", json={"query": QUERY}, headers=headers)
            ours = [e["node"]["manager"] for e in same.json()["data"]["employees"]["edges"]]
            theirs = [
                e["node"]["manager"]
                for e in (await client.get("/bare/page")).json()["data"]["employees"]["edges"]
            ]
            assert ours == theirs, "the two routes disagree on managers"

            for call in (graphql, bare):
                await timed(call, 10)  # warm-up: caches, pool, JIT-free but still
            # Interleaved, so both routes see the same load on a shared machine.
            gql_samples, bare_samples = [], []
            gql_cpu: list[float] = []
            bare_cpu: list[float] = []
            clock = CollectorClock()
            gql_gc: list[float] = []
            bare_gc: list[float] = []
            clock.start()
            for _ in range(runs):
                gql_samples += await timed(graphql, 1, gql_cpu, (clock, gql_gc))
                bare_samples += await timed(bare, 1, bare_cpu, (clock, bare_gc))
            clock.stop()
        await pool.close()

    gql_p50, bare_p50 = statistics.median(gql_samples), statistics.median(bare_samples)
    print(f"page of 100 employees, {runs} runs each")
    print(f"  POST /graphql   p50 {ms(gql_p50)}  p95 {ms(percentile(gql_samples, 0.95))}")
    print(f"  bare route      p50 {ms(bare_p50)}  p95 {ms(percentile(bare_samples, 0.95))}")
    print(f"  ratio (p50)     {gql_p50 / bare_p50:.1f}x  (target: within 5x)")
    gql_cpu_p50, bare_cpu_p50 = statistics.median(gql_cpu), statistics.median(bare_cpu)
    print(f"  CPU per request p50: POST /graphql {ms(gql_cpu_p50)}, bare {ms(bare_cpu_p50)}")
    print(f"  CPU ratio       {gql_cpu_p50 / bare_cpu_p50:.1f}x")
    gql_gc_mean, bare_gc_mean = statistics.mean(gql_gc), statistics.mean(bare_gc)
    print(f"  GC per request (mean): POST /graphql {ms(gql_gc_mean)}, bare {ms(bare_gc_mean)}")
    print(f"Before: {load_before}")
    print(f"After:  {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--people", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.people))
