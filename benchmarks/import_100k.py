"""`renshi import employees` on generated files of 20,000 and 100,000 rows.

For each size: a fresh tenant with two branches, nine units and four job levels; a CSV with
a manager tree (everyone reports to one of the first tenth of the file, mostly in that
lead's unit, with a title that follows the job level), names in two scripts, day-first
birth dates and salaries; then the import runs as its own process and we print its wall
time, its CPU time, the database's CPU time and its peak memory (see benchmarks/README.md).
The target is under 60 s for 100,000 rows, with memory flat in the row count.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m benchmarks.import_100k [ROWS ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from benchmarks.support import asyncpg_dsn, bench_engine, throwaway_database
from domain.identity.actions import Viewer
from domain.organisation import actions as org
from renshi.settings import PROJECT_ROOT
from tenants.context import use_tenant
from tenants.database import get_engine
from tenants.provisioning import TenantSpec, create_tenant

SIZES = (20_000, 100_000)
UNITS = ("Sales", "Engineering", "Finance", "Operations", "Support", "Legal", "HR", "IT", "R&D")
TITLES = ("Associate", "Specialist", "Senior Specialist", "Director")
GIVEN = ("Wei", "Fang", "Jun", "Li", "Ming", "Anna", "Paul", "Maria", "Ken", "Yuki")
FAMILY = ("Wang", "Li", "Zhang", "Liu", "Chen", "Smith", "Garcia", "Müller", "Sato", "Kim")
LOCAL = ("王伟", "李芳", "张军", "刘丽", "陈明")

MAPPING = """
[file]
date_order = "DMY"

[columns]
employee_number = "Employee No"
given_name = "Given name"
family_name = "Family name"
local_name = "Local name"
work_email = "Email"
birth_date = "Birth date"
hire_date = "Hire date"
branch = "Branch"
org_unit = "Unit"
job_title = "Title"
job_level = "Level"
manager = "Manager"
salary = "Monthly salary"

[defaults]
salary_period = "month"
"""


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "Employee No",
                "Given name",
                "Family name",
                "Local name",
                "Email",
                "Birth date",
                "Hire date",
                "Branch",
                "Unit",
                "Title",
                "Level",
                "Manager",
                "Monthly salary",
            ]
        )
        units: dict[int, str] = {}
        for i in range(1, rows + 1):
            # About one in ten leads a team; a team mostly sits in its lead's unit.
            boss = 0 if i == 1 else rng.randint(1, max(1, min(i - 1, rows // 10)))
            unit = rng.choice(UNITS) if boss == 0 or rng.random() < 0.1 else units[boss]
            units[i] = unit
            level = rng.choice(("L1", "L3", "L5", "L9"))
            birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 14000))
            hire = dt.date(2005, 1, 1) + dt.timedelta(days=rng.randint(0, 7000))
            out.writerow(
                [
                    f"E{i:06d}",
                    rng.choice(GIVEN),
                    rng.choice(FAMILY),
                    rng.choice(LOCAL),
                    f"e{i}@bench.test",
                    birth.strftime("%d/%m/%Y"),
                    hire.isoformat(),
                    rng.choice(("CN-SH", "US-SF")),
                    unit,
                    TITLES[("L1", "L3", "L5", "L9").index(level)],
                    level,
                    f"E{boss:06d}" if boss else "",
                    f"{rng.randint(3000, 90000)}.00",
                ]
            )


async def seed(slug: str) -> None:
    tenant = await create_tenant(get_engine(), TenantSpec.parse(slug=slug, name=slug))
    viewer = Viewer(
        id=uuid.uuid4(),
        email="bench@bench.test",
        display_name="Bench",
        roles=("admin",),
        locale=None,
        session_id=uuid.uuid4(),
    )
    with use_tenant(tenant):
        shanghai = await org.create_branch(
            viewer,
            code="CN-SH",
            name="Shanghai",
            country="CN",
            currency="CNY",
            time_zone_name="Asia/Shanghai",
            locale="zh_CN",
        )
        await org.create_branch(
            viewer,
            code="US-SF",
            name="San Francisco",
            country="US",
            currency="USD",
            time_zone_name="America/Los_Angeles",
            locale="en_US",
        )
        for code, rank in (("L1", 1), ("L3", 3), ("L5", 5), ("L9", 9)):
            await org.create_job_level(viewer, code=code, rank=rank, title=f"Level {rank}")
        company = await org.create_org_unit(
            viewer,
            name="Bench Group",
            kind="company",
            branch_id=shanghai.id,
            effective_date=dt.date(2000, 1, 1),
        )
        for name in UNITS:
            await org.create_org_unit(
                viewer,
                name=name,
                kind="department",
                branch_id=shanghai.id,
                effective_date=dt.date(2000, 1, 1),
                parent_id=company.id,
            )


def run_import(url: str, slug: str, data: Path, mapping: Path) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak RSS in MiB and the output of one import process."""
    env = dict(os.environ, DATABASE_URL=url, RENSHI_SPARE_SCHEMAS="0")
    command = [
        str(PROJECT_ROOT / ".venv" / "bin" / "renshi"),
        "import",
        "employees",
        str(data),
        "--tenant",
        slug,
        "--mapping",
        str(mapping),
    ]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"import failed:\n{text}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, text


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local PostgreSQL backend, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def database_cpu(url: str, done: asyncio.Event) -> float:
    """CPU seconds the server spends for the benchmark's database until `done` is set.

    Samples the backends of the database twice a second; a backend's first sample is its
    baseline (the seeding connections did work before the import started).
    """
    connection = await asyncpg.connect(asyncpg_dsn(url))
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    initial = True
    try:
        while True:
            pids = await connection.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            for (pid,) in pids:
                used = _backend_cpu(pid)
                if pid not in first:
                    first[pid] = used if initial else 0.0
                last[pid] = max(last.get(pid, 0.0), used)
            initial = False
            if done.is_set():
                return sum(last[pid] - first[pid] for pid in last)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
    finally:
        await connection.close()


async def main(sizes: tuple[int, ...]) -> None:
    async with throwaway_database("import") as url, bench_engine(url):
        with tempfile.TemporaryDirectory() as folder:
            mapping = Path(folder) / "mapping.toml"
            mapping.write_text(MAPPING, encoding="utf-8")
            print(f"load average before: {os.getloadavg()}")
            print("    rows  file MiB   wall s   CPU s  DB CPU s   rows/s  peak RSS MiB")
            for rows in sizes:
                slug = f"bench_{rows}"
                await seed(slug)
                data = Path(folder) / f"employees_{rows}.csv"
                write_csv(data, rows)
                done = asyncio.Event()
                sampler = asyncio.create_task(database_cpu(url, done))
                await asyncio.sleep(1)  # the sampler's baseline, before the import connects
                try:
                    seconds, cpu, rss, text = await asyncio.to_thread(
                        run_import, url, slug, data, mapping
                    )
                finally:
                    done.set()
                server = await sampler
                size = data.stat().st_size / 2**20
                print(
                    f"{rows:>8}  {size:>8.1f}  {seconds:>7.1f}  {cpu:>6.1f}  {server:>8.1f}"
                    f"  {rows / seconds:>7.0f}  {rss:>12}"
                )
                last = [line for line in text.splitlines() if line.startswith("Created")]
                print(f"          {last[0] if last else text.strip()}")
                print(f"          load average afterwards: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main(tuple(int(a) for a in sys.argv[1:]) or SIZES))
