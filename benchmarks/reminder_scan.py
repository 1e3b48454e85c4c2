"""The hourly reminder scan over many tenants, run by `renshi worker` processes.

Each of `--tenants` tenants (cloned at head) gets one branch in Asia/Shanghai, `--advances`
paid-out advances with an employee and a user each, and a tenth of them due for a
"settle soon" reminder on the run date. The scheduler's fan-out then sends one scan per
tenant, and `--processes` worker processes (8 threads each, no relay: the e-mail stays in
the outbox) write the reminders. Prints the wall time from the fan-out until every
reminder is recorded (target: under 60 s for 1,000 tenants x 100 advances on 2 processes),
scans per second and reminders per second. People and advances are written with plain
SQL, one statement per table and tenant.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from benchmarks.support import asyncpg_dsn, bench_engine, clone_tenants, machine, throwaway_database
from tenants.slugs import quote_ident, schema_for
from workers import broker as brokers
from workers.scheduler import fan_out_reminders

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2027, 5, 3, 10, tzinfo=SHANGHAI)  # 10:00 local: the run date is May 3
DUE_SOON = AT.date() + dt.timedelta(days=3)  # the policy's default: three days before

FILL = """
INSERT INTO {s}.branches (id, code, name, country, currency, time_zone, locale)
VALUES ('00000000-0000-0000-0000-000000000001', 'SH', 'Shanghai', 'CN', 'CNY',
        'Asia/Shanghai', 'zh_CN');
INSERT INTO {s}.employees (id, employee_number, given_name, family_name, hire_date)
SELECT md5('e' || n)::uuid, 'E' || n, 'Given' || n, 'Family', DATE '2020-01-01'
  FROM generate_series(1, {advances}) AS n;
INSERT INTO {s}.users (id, email, display_name, password_hash, roles, employee_id)
SELECT md5('u' || n)::uuid, 'e' || n || '@bench.test', 'E' || n, 'x', '{{employee}}',
       md5('e' || n)::uuid
  FROM generate_series(1, {advances}) AS n;
INSERT INTO {s}.advances (id, employee_id, branch_id, kind, amount, currency, purpose,
                          expected_settlement_date, status)
SELECT md5('a' || n)::uuid, md5('e' || n)::uuid, '00000000-0000-0000-0000-000000000001',
       'business', 1000 + n, 'CNY', 'Trip ' || n,
       CASE WHEN n % 10 = 0 THEN DATE '{due_soon}' ELSE DATE '{due_soon}' + 30 + n END,
       'disbursed'
  FROM generate_series(1, {advances}) AS n;
"""


async def fill(url: str, slugs: list[str], advances: int) -> None:
    queue = list(slugs)

    async def worker() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            while queue:
                slug = queue.pop()
                await conn.execute(
                    FILL.format(
                        s=quote_ident(schema_for(slug)),
                        advances=advances,
                        due_soon=DUE_SOON.isoformat(),
                    )
                )
                # Users without a placement read on the tenant's calendar: Shanghai's too.
                await conn.execute(
                    "UPDATE shared.tenants SET time_zone = 'Asia/Shanghai' WHERE slug = $1", slug
                )
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(2)))


async def recorded(url: str, slugs: list[str]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        total = 0
        for start in range(0, len(slugs), 200):
            union = " UNION ALL ".join(
                f"SELECT count(*) AS n FROM {quote_ident(schema_for(s))}.notifications"
                for s in slugs[start : start + 200]
            )
            total += int(await conn.fetchval(f"SELECT sum(n) FROM ({union}) c"))
        return total
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    print(machine())
    async with throwaway_database("reminders") as url, bench_engine(url) as engine:
        slugs = [f"rem_{n:04}" for n in range(args.tenants)]
        started = time.perf_counter()
        await clone_tenants(url, engine, slugs)
        await fill(url, slugs, args.advances)
        expected = args.tenants * (args.advances // 10)
        print(
            f"{args.tenants} tenants x {args.advances} advances ready in "
            f"{time.perf_counter() - started:.0f} s; {expected} reminders due"
        )

        broker = brokers.install(brokers.make_broker(url))
        env = os.environ | {
            "DATABASE_URL": url,
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "renshi-pycache"),
        }
        env.pop("BROKER_URL", None)
        command = [
            str(Path(sys.executable).with_name("renshi")),
            "worker",
            "--no-relay",
            "--no-scheduler",
            "-p",
            str(args.processes),
            "-t",
            "8",
            "--shutdown-timeout",
            "10",
        ]
        workers = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            await asyncio.sleep(args.boot)  # let the processes boot before the clock starts
            started = time.perf_counter()
            scans = await fan_out_reminders(AT)
            while (done := await recorded(url, slugs)) < expected:
                if time.perf_counter() - started > args.timeout:
                    break
                await asyncio.sleep(0.5)
            took = time.perf_counter() - started
        finally:
            workers.terminate()
            workers.wait(60)
            brokers.uninstall(broker)
        print(
            f"{done} of {expected} reminders recorded in {took:.1f} s with {args.processes} "
            f"worker processes: {scans / took:,.1f} scans/s, {done / took:,.0f} reminders/s"
        )
    print(machine())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--advances", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--boot", type=float, default=15.0, help="seconds given to boot")
    parser.add_argument("--timeout", type=float, default=600.0)
    asyncio.run(main(parser.parse_args()))
