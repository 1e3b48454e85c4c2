"""Advance risk scoring: the nightly run over 100,000 employees, and one event's re-score.

A tenant in CNY with offices in Shanghai (CNY) and Los Angeles (USD), five departments
each, 100,000 employees on monthly salaries. Two performance reviews for every other
employee, 40,000 rewards and penalties, 120,000 advances with their ledger entries: about
half settled, a third still out (settlement dates from 120 days ago to 60 days ahead, so
most of those are overdue), one in twenty written off, one in ten rejected; some of the
Shanghai advances in USD. Everything but the organisation is written with COPY, then
ANALYZE runs, as autovacuum would have by the nightly run.

Nightly: `score_employees` for the whole tenant, in a process of its own so its peak
resident memory is the scoring's alone (target: under 10 s). The first run raises an
alert for everyone who enters the medium or high band (and notifies the admin of each);
the second is a steady night: the same scores, no new alert. Event: `rescore_employee`
for one employee with advances, `--events` times after a warm-up, p50 and p95 (target:
p50 under 50 ms).

`--trained` first trains and stores the tenant's advance-risk model
(`domain.analytics.advance_model`, timed), so that the nightly run and the events score
with it instead of the points model. The generated ledger is recorded on the day of the
run, so the past snapshots see advances but none of their money: the model is weak, and
the figures are about the cost of training and of scoring with a model, not its quality.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import random
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from benchmarks.advance_data import (
    ADVANCE_COLUMNS,
    Office,
    admin,
    analyze,
    connect,
    copy,
    hire,
    organisation,
)
from benchmarks.support import asyncpg_dsn, bench_engine, machine, ms, throwaway_database
from domain.advances import actions
from domain.money import Money
from tenants.context import Tenant, use_tenant
from tenants.provisioning import TenantSpec, create_tenant

OFFICES = [
    Office("SH", "CN", "CNY", "Asia/Shanghai", "zh_CN"),
    Office("LA", "US", "USD", "America/Los_Angeles", "en_US"),
]
SALARY = {"CNY": Decimal(20000), "USD": Decimal(6000)}
TODAY = dt.datetime.now(dt.UTC).date()
ENTRY_COLUMNS = ("id", "advance_id", "kind", "amount", "currency", "occurred_on")


async def fill(conn: asyncpg.Connection, tenant: Tenant, employees: int, seed: int) -> list[Any]:
    """The tenant's data; returns the ids of employees with at least one advance."""
    rng = random.Random(seed)
    with use_tenant(tenant):
        actor = await admin(tenant)
        seats, _ = await organisation(actor, OFFICES, units_per_office=5)
        await actions.set_exchange_rate(
            actor, base="USD", quote="CNY", rate=Decimal("7.1"), valid_from=dt.date(2020, 1, 1)
        )
    people = await hire(conn, tenant.schema, seats, employees, "E")
    await conn.execute(
        """UPDATE employee_periods p
              SET salary_amount = CASE b.currency WHEN 'USD' THEN 6000 ELSE 20000 END,
                  salary_currency = b.currency, salary_period = 'month'
             FROM branches b WHERE b.id = p.branch_id"""
    )
    reviews = []
    for n, (employee, _) in enumerate(people):
        if n % 2 == 0:
            for period, days in (("2025", 300), ("2026H1", 30)):
                reviews.append(
                    (
                        uuid.uuid4(),
                        employee,
                        period,
                        Decimal(rng.randint(1, 5)),
                        TODAY - dt.timedelta(days=days),
                    )
                )
    await copy(
        conn,
        tenant.schema,
        "performance_reviews",
        ("id", "employee_id", "period", "rating", "reviewed_on"),
        reviews,
    )
    sanctions = [
        (
            uuid.uuid4(),
            people[rng.randrange(len(people))][0],
            TODAY - dt.timedelta(days=rng.randrange(0, 500)),
            rng.choice(("reward", "penalty")),
            "conduct",
        )
        for _ in range(40_000)
    ]
    await copy(
        conn,
        tenant.schema,
        "rewards_penalties",
        ("id", "employee_id", "occurred_on", "kind", "category"),
        sanctions,
    )
    borrowers = await _advances(conn, tenant, people, employees * 6 // 5, rng)
    await analyze(conn)
    return borrowers


async def _advances(
    conn: asyncpg.Connection, tenant: Tenant, people: list[Any], count: int, rng: random.Random
) -> list[Any]:
    rows: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    borrowers = set()
    created = dt.datetime.combine(TODAY - dt.timedelta(days=200), dt.time(), tzinfo=dt.UTC)
    for n in range(count):
        advance_id = uuid.uuid4()
        employee, seat = people[rng.randrange(len(people))]
        borrowers.add(employee)
        currency = "USD" if seat.currency == "CNY" and rng.random() < 0.05 else seat.currency
        amount = Money.of(Decimal(rng.randrange(500, 40_000)), currency).amount
        at = created + dt.timedelta(seconds=n)
        paid_on = at.date()
        fate = rng.random()
        due = TODAY + dt.timedelta(days=rng.randrange(-120, 61))
        if fate < 0.10:
            status, closed = "rejected", None
        elif fate < 0.15:
            status, closed = "written_off", at
            entries += [
                (uuid.uuid4(), advance_id, "disbursement", amount, currency, paid_on),
                (uuid.uuid4(), advance_id, "write_off", -amount, currency, due),
            ]
        elif fate < 0.65:
            status, closed = "settled", at
            spent = Money.of(amount * Decimal(rng.randrange(40, 100)) / 100, currency).amount
            settled_on = paid_on + dt.timedelta(days=rng.randrange(5, 90))
            entries += [
                (uuid.uuid4(), advance_id, "disbursement", amount, currency, paid_on),
                (uuid.uuid4(), advance_id, "expense_settlement", -spent, currency, settled_on),
                (uuid.uuid4(), advance_id, "return", spent - amount, currency, settled_on),
            ]
        else:
            status, closed = "disbursed", None
            entries.append((uuid.uuid4(), advance_id, "disbursement", amount, currency, paid_on))
        rows.append(
            (
                advance_id,
                employee,
                seat.branch_id,
                "business",
                amount,
                currency,
                f"Advance {n}",
                due,
                status,
                at,
                at,
                None if status == "rejected" else at,
                closed,
            )
        )
    await copy(conn, tenant.schema, "advances", ADVANCE_COLUMNS, rows)
    await conn.execute(
        "UPDATE advances SET decided_at = submitted_at WHERE status IN ('rejected', 'written_off',"
        " 'settled', 'disbursed')"
    )
    await copy(conn, tenant.schema, "ledger_entries", ENTRY_COLUMNS, entries)
    return sorted(borrowers)


def peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss, which a
    spawned child inherits from the parent it was forked from."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_of(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of local processes (gone ones are left out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


async def backend_pids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


def nightly_in_child(url: str, slug: str, runs: int, results: Any) -> None:
    """Score the whole tenant `runs` times in this (fresh) process; report times and RSS."""
    from renshi.cli import load_models

    load_models()
    before = peak_rss_kb()

    async def main() -> list[tuple[float, int, int, float, float, str]]:
        from domain.analytics.scoring import score_employees
        from tenants.registry import find_tenant

        async with bench_engine(url):
            tenant = await find_tenant(slug)
            assert tenant is not None
            reports = []
            for _ in range(runs):
                # The database's CPU: its backends on this database (a local server only).
                database_before = cpu_of(await backend_pids(asyncpg_dsn(url)))
                with use_tenant(tenant):
                    started, cpu = time.perf_counter(), time.process_time()
                    report = await score_employees(TODAY)
                    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                database_after = cpu_of(await backend_pids(asyncpg_dsn(url)))
                database = sum(
                    used - database_before.get(pid, 0.0) for pid, used in database_after.items()
                )
                reports.append(
                    (
                        seconds,
                        report.scored,
                        report.alerts_raised,
                        cpu,
                        database,
                        report.model_version,
                    )
                )
            return reports

    reports = asyncio.run(main())
    peak = peak_rss_kb()
    results.put((reports, before, peak))


async def event_rescores(tenant: Tenant, borrowers: list[Any], events: int) -> list[float]:
    from domain.analytics.scoring import rescore_employee

    rng = random.Random(5)
    samples = []
    with use_tenant(tenant):
        for n in range(events + 20):
            employee = borrowers[rng.randrange(len(borrowers))]
            started = time.perf_counter()
            await rescore_employee(employee, TODAY)
            if n >= 20:  # warm-up: the first calls prepare statements and fill caches
                samples.append(time.perf_counter() - started)
    return samples


async def train_model(tenant: Tenant) -> None:
    """Train and store the tenant's advance-risk model; print what it cost and measured."""
    from domain.analytics.advance_model import retrain_advance_model

    with use_tenant(tenant):
        started, cpu = time.perf_counter(), time.process_time()
        model = await retrain_advance_model(None, as_of=TODAY)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    metrics = model.metrics
    print(
        f"trained advance-risk model v{model.version} in {seconds:.1f} s (Python CPU "
        f"{cpu:.1f} s): {metrics['rows']} rows ({metrics['sampled_share']:.0%} of the "
        f"people), {metrics['positives']} people with a bad advance, ROC AUC "
        f"{metrics['roc_auc']['mean']:.3f}, peak RSS so far {peak_rss_kb() / 1024:.0f} MB"
    )


async def main(employees: int, events: int, trained: bool) -> None:
    from renshi.cli import load_models

    load_models()
    print(f"machine: {machine()}")
    async with throwaway_database("risk") as url:
        async with bench_engine(url) as engine:
            tenant = await create_tenant(
                engine,
                TenantSpec.parse(
                    slug="bench", name="Bench", currency="CNY", time_zone="Asia/Shanghai"
                ),
            )
            started = time.perf_counter()
            conn = await connect(asyncpg_dsn(url), tenant.schema)
            try:
                borrowers = await fill(conn, tenant, employees, seed=17)
                counts = {
                    table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                    for table in ("employees", "advances", "ledger_entries", "performance_reviews")
                }
            finally:
                await conn.close()
            print(f"wrote {counts} in {time.perf_counter() - started:.1f} s")
            if trained:
                await train_model(tenant)

        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=nightly_in_child, args=(url, "bench", 2, results))
        child.start()
        reports, rss_before, rss_peak = results.get()
        child.join()

        async with bench_engine(url):
            from tenants.registry import find_tenant

            found = await find_tenant("bench")
            assert found is not None
            samples = await event_rescores(found, borrowers, events)

    print(f"nightly scoring of {employees} employees (a process of its own):")
    for label, (seconds, scored, raised, cpu, database, version) in zip(
        ("first night", "steady night"), reports, strict=True
    ):
        verdict = "met" if seconds < 10 else "MISSED"
        print(
            f"  {label:<13} {seconds:6.2f} s  scored {scored} ({version})  alerts raised "
            f"{raised}  target under 10 s: {verdict}"
        )
        print(
            f"  {'':<13} CPU: Python {cpu:.2f} s, database {database:.2f} s "
            f"(together {cpu + database:.2f} s: about the wall time on an idle machine)"
        )
    print(
        f"  peak RSS {rss_peak / 1024:.0f} MB (the process held {rss_before / 1024:.0f} MB "
        "after importing the code, before scoring)"
    )
    p50 = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
    print(
        f"event-driven re-score of one employee, {len(samples)} runs: p50 {ms(p50)}  "
        f"p95 {ms(p95)}  max {ms(max(samples))}  "
        f"target p50 under 50 ms: {'met' if p50 < 0.05 else 'MISSED'}"
    )
    print(f"machine: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--trained", action="store_true", help="score with a trained model, not the points"
    )
    args = parser.parse_args()
    asyncio.run(main(args.employees, args.events, args.trained))
