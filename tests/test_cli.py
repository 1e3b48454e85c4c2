"""The `renshi` command line, run as a separate process the way an operator runs it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from renshi.cli import main
from renshi.settings import get_settings
from schema.api import build_schema
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant, unique_slug
from tests.smtp_sink import free_port
from tests.worker_support import rabbitmq_listening, rabbitmq_url

RENSHI = Path(sys.executable).parent / "renshi"
VIEWER = "{ viewer { user { email displayName } roles tenant { slug } } }"


@dataclasses.dataclass
class Run:
    code: int
    out: str
    err: str


class Cli:
    """Runs the installed `renshi` command against a database; spare schemas are not refilled.

    Each call starts a fresh interpreter. Compiled bytecode is kept in a cache of the tests'
    own, outside the tree, even where the environment turns bytecode files off: otherwise
    every call would compile SQLAlchemy from source again.
    """

    def __init__(self, database_url: str) -> None:
        env = os.environ | {
            "DATABASE_URL": database_url,
            "RENSHI_SPARE_SCHEMAS": "0",
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "renshi-cli-pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = env

    async def __call__(self, *args: str, **env: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            str(RENSHI),
            *args,
            env=self.env | env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def usage_error(command: str, argument: str, message: str) -> str:
    return (
        f"Usage: renshi {command} [OPTIONS] {argument}\n"
        f"Try 'renshi {command} --help' for help.\n\n"
        f"Error: {message}\n"
    )


def every_command(
    command: click.Command = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from every_command(sub, (*path, name))


async def registry_row(engine: AsyncEngine, slug: str) -> dict[str, object] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT slug, name, status, locale, currency, time_zone, hostnames"
                    " FROM shared.tenants WHERE slug = :slug"
                ),
                {"slug": slug},
            )
        ).one_or_none()
    return dict(row._mapping) if row else None


async def schema_exists(engine: AsyncEngine, slug: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"), {"name": f"t_{slug}"}
        )
    return bool(found == 1)


async def count_users(engine: AsyncEngine, slug: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f'SELECT count(*) FROM "t_{slug}".users')) or 0)


async def test_the_installed_command_answers_help(cli: Cli) -> None:
    run = await cli("--help")

    assert (run.code, run.err) == (0, "")
    assert run.out.startswith("Usage: renshi [OPTIONS] COMMAND [ARGS]...\n")
    assert [line.split()[0] for line in run.out.split("Commands:\n")[1].splitlines()] == sorted(
        main.commands
    )


@pytest.mark.parametrize("path", list(every_command()), ids=lambda p: " ".join(("renshi", *p)))
def test_every_command_explains_itself_with_help(path: tuple[str, ...]) -> None:
    # In-process: the same click objects as the installed command, without a process each.
    command = " ".join(("renshi", *path))

    result = CliRunner().invoke(main, [*path, "--help"], prog_name="renshi")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {command} ")
    assert "  -h, --help " in result.output


async def test_create_prints_the_new_tenant_and_registers_it(cli: Cli, engine: AsyncEngine) -> None:
    slug, plain = unique_slug("cli"), unique_slug("cli")

    as_json, as_text = await asyncio.gather(
        cli(
            "tenants", "create", slug, "--name", "Hai Tang Trading", "--locale", "zh_CN",
            "--currency", "cny", "--time-zone", "Asia/Shanghai", "--hostname", "HR.Example.CN",
            "--json",
        ),
        cli("tenants", "create", plain, "--name", "Plain"),
    )  # fmt: skip

    # (Standard error carries log lines, e.g. that no spare schema was ready.)
    printed = json.loads(as_json.out)
    assert as_json.code == 0
    assert isinstance(printed.pop("seconds"), float)
    assert printed == {
        "slug": slug,
        "name": "Hai Tang Trading",
        "status": "active",
        "locale": "zh_Hans_CN",
        "currency": "CNY",
        "time_zone": "Asia/Shanghai",
        "schema": f"t_{slug}",
        "hostnames": ["hr.example.cn"],
    }
    assert await registry_row(engine, slug) == {
        "slug": slug,
        "name": "Hai Tang Trading",
        "status": "active",
        "locale": "zh_Hans_CN",
        "currency": "CNY",
        "time_zone": "Asia/Shanghai",
        "hostnames": ["hr.example.cn"],
    }
    assert await schema_exists(engine, slug)
    assert as_text.code == 0
    assert re.fullmatch(
        rf"Created tenant {plain} \(schema t_{plain}\) in \d+\.\d+ s\.\n", as_text.out
    )


async def test_create_refuses_a_slug_that_is_taken_and_changes_nothing(
    cli: Cli, engine: AsyncEngine, tenant: TenantWithAdmin
) -> None:
    slug = tenant.tenant.slug
    before = await registry_row(engine, slug)

    run = await cli("tenants", "create", slug, "--name", "Usurper")

    assert (run.code, run.out) == (1, "")
    assert run.err == f"Error: A tenant '{slug}' already exists.\n"
    assert await registry_row(engine, slug) == before
    assert await count_users(engine, slug) == 1


async def test_list_shows_every_tenant_as_json(cli: Cli, engine: AsyncEngine) -> None:
    mine = await make_tenant(engine, unique_slug("listed"), currency="EUR")

    run = await cli("tenants", "list", "--json")

    rows = json.loads(run.out)
    async with engine.connect() as conn:
        registered = list(await conn.scalars(text("SELECT slug FROM shared.tenants ORDER BY 1")))
    assert (run.code, run.err) == (0, "")
    assert [row["slug"] for row in rows] == registered
    assert next(row for row in rows if row["slug"] == mine.tenant.slug) == {
        "slug": mine.tenant.slug,
        "name": mine.tenant.name,
        "status": "active",
        "locale": "en",
        "currency": "EUR",
        "time_zone": "UTC",
        "schema": mine.tenant.schema,
        "hostnames": [],
    }


async def test_suspend_activate_and_archive_change_what_the_api_allows(
    cli: Cli, engine: AsyncEngine, gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    slug = tenant.tenant.slug

    suspended = await cli("tenants", "suspend", slug)
    status_after_suspend = (await registry_row(engine, slug) or {})["status"]
    refused = await gql.post(VIEWER, tenant=slug)
    activated = await cli("tenants", "activate", slug)
    status_after_activate = (await registry_row(engine, slug) or {})["status"]
    archived = await cli("tenants", "archive", slug)
    status_after_archive = (await registry_row(engine, slug) or {})["status"]

    assert (suspended.code, suspended.out) == (0, f"Tenant {slug} is now suspended.\n")
    assert status_after_suspend == "suspended"
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"] == {"code": "TENANT_SUSPENDED"}
    assert (activated.code, activated.out) == (0, f"Tenant {slug} is now active.\n")
    assert status_after_activate == "active"
    assert (archived.code, archived.out) == (0, f"Tenant {slug} is now archived.\n")
    assert status_after_archive == "archived"
    assert await count_users(engine, slug) == 1


async def test_drop_needs_yes_and_then_deletes_the_schema_and_the_row(
    cli: Cli, engine: AsyncEngine, tenant: TenantWithAdmin
) -> None:
    slug = tenant.tenant.slug

    unconfirmed = await cli("tenants", "drop", slug)
    kept = (await registry_row(engine, slug) is not None, await schema_exists(engine, slug))
    confirmed = await cli("tenants", "drop", slug, "--yes")

    assert (unconfirmed.code, unconfirmed.out) == (2, "")
    assert unconfirmed.err == usage_error(
        "tenants drop", "SLUG", f"Dropping '{slug}' deletes all its data; add --yes to confirm."
    )
    assert kept == (True, True)
    assert (confirmed.code, confirmed.out, confirmed.err) == (0, f"Dropped tenant {slug}.\n", "")
    assert await registry_row(engine, slug) is None
    assert not await schema_exists(engine, slug)


async def test_commands_on_an_unknown_tenant_say_so(cli: Cli) -> None:
    ghost = unique_slug("ghost")

    runs = await asyncio.gather(
        cli("tenants", "suspend", ghost),
        cli("tenants", "drop", ghost, "--yes"),
        cli(
            "users", "create", "--tenant", ghost, "--email", "a@b.test", "--name", "A",
            "--role", "hr", RENSHI_USER_PASSWORD=PASSWORD,
        ),
    )  # fmt: skip

    assert [(run.code, run.out, run.err) for run in runs] == [
        (1, "", f"Error: No tenant is registered as '{ghost}'.\n")
    ] * 3


async def test_users_create_makes_a_user_who_can_sign_in(
    cli: Cli, gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    slug = tenant.tenant.slug

    run = await cli(
        "users", "create", "--tenant", slug, "--email", "mei@example.cn", "--name", "Li Mei",
        "--role", "hr", "--role", "finance", RENSHI_USER_PASSWORD=PASSWORD,
    )  # fmt: skip
    token = await gql.token(slug, "mei@example.cn", PASSWORD)
    viewer = await gql.execute(VIEWER, token=token)

    assert (run.code, run.err) == (0, "")
    assert run.out == "Created user mei@example.cn with roles finance, hr.\n"
    assert viewer == {
        "data": {
            "viewer": {
                "user": {"email": "mei@example.cn", "displayName": "Li Mei"},
                "roles": ["finance", "hr"],
                "tenant": {"slug": slug},
            }
        }
    }


async def test_users_create_refuses_bad_input_and_creates_nobody(
    cli: Cli, engine: AsyncEngine, tenant: TenantWithAdmin
) -> None:
    slug = tenant.tenant.slug
    user = ("users", "create", "--tenant", slug, "--email", "x@example.cn", "--name", "X")

    bad_role, short_password = await asyncio.gather(
        cli(*user, "--role", "boss", RENSHI_USER_PASSWORD=PASSWORD),
        cli(*user, "--role", "hr", RENSHI_USER_PASSWORD="short"),
    )

    assert (bad_role.code, bad_role.out) == (1, "")
    assert bad_role.err == (
        "Error: Roles must be among: admin, hr, finance, manager, employee, auditor.\n"
    )
    assert (short_password.code, short_password.out) == (1, "")
    assert short_password.err == "Error: A password has at least 10 characters.\n"
    assert await count_users(engine, slug) == 1


async def test_schema_export_prints_the_live_schema(cli: Cli) -> None:
    live = build_schema(get_settings()).as_str() + "\n"

    run = await cli("schema", "export", "--output", "-")

    assert (run.code, run.err) == (0, "")
    assert run.out == live


# --- background work: errors in one line ----------------------------------------------------

NO_BROKER = (
    "Error: BROKER_URL names no broker Renshi knows ('{scheme}://'):"
    " use amqp:// (RabbitMQ) or postgresql:// (Postgres).\n"
)


async def test_worker_scheduler_and_jobs_refuse_a_broker_url_they_have_no_broker_for(
    cli: Cli,
) -> None:
    runs = await asyncio.gather(
        cli("jobs", "status", BROKER_URL="foo://x"),
        cli("worker", BROKER_URL="redis://localhost:6379/0"),
        cli("scheduler", BROKER_URL="redis://localhost:6379/0"),
    )

    assert [(run.code, run.err) for run in runs] == [
        (1, NO_BROKER.format(scheme="foo")),
        (1, NO_BROKER.format(scheme="redis")),
        (1, NO_BROKER.format(scheme="redis")),
    ]


async def test_commands_say_at_once_in_one_line_what_is_out_of_reach(
    cli: Cli, database_url: str, engine: AsyncEngine
) -> None:
    dead = free_port()
    missing = make_url(database_url).set(database="renshi_no_such_db")
    missing_url = missing.render_as_string(hide_password=False)
    shown = missing.render_as_string(hide_password=True)
    refused = f"postgresql://postgres@127.0.0.1:{dead}/renshi"

    started = time.monotonic()
    runs = await asyncio.gather(
        cli("worker", BROKER_URL=f"amqp://guest:secret@127.0.0.1:{dead}/"),
        cli("jobs", "status", BROKER_URL=missing_url),
        cli("tenants", "list", DATABASE_URL=missing_url),
        cli("worker", DATABASE_URL=refused, BROKER_URL=database_url),
        cli("jobs", "status", DATABASE_URL="notaurl"),
        cli("tenants", "list", DATABASE_URL="mysql://renshi@localhost/renshi"),
    )
    took = time.monotonic() - started

    assert [(run.code, run.err) for run in runs] == [
        (
            1,
            f"Error: Cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{dead}/:"
            " AMQPConnectorSocketConnectError: ConnectionRefusedError(111, 'Connection refused')\n",
        ),
        (
            1,
            f"Error: Cannot use the Postgres broker at {shown}:"
            ' database "renshi_no_such_db" does not exist\n',
        ),
        (1, 'Error: Cannot use the database: database "renshi_no_such_db" does not exist\n'),
        (1, f"Error: Cannot use the database at {refused}: Connection refused\n"),
        (
            1,
            "Error: DATABASE_URL is not a database URL: give "
            "postgresql://user@host:port/database.\n",
        ),
        (
            1,
            "Error: DATABASE_URL names a mysql database; Renshi needs PostgreSQL "
            "(postgresql://).\n",
        ),
    ]
    assert took < 60  # no 30-second pool timeouts, no retrying for ever


async def test_the_worker_refuses_an_unknown_queue_and_names_the_known_ones(cli: Cli) -> None:
    run = await cli("worker", "-Q", "events", "-Q", "nosuchqueue")

    assert run.code == 2
    assert run.err.endswith(
        "Error: Invalid value for '-Q' / '--queue': no queue is named nosuchqueue;"
        " the queues are default, events, notifications, reminders, risk.\n"
    )


async def test_a_scheduler_without_its_database_says_so_in_a_line_per_try_waiting_longer(
    cli: Cli,
) -> None:
    url = rabbitmq_url()
    if not rabbitmq_listening(url):
        pytest.skip("RabbitMQ is not listening; the scheduler needs a broker that answers")
    env = cli.env | {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/renshi",
        "BROKER_URL": url,
    }
    process = await asyncio.create_subprocess_exec(
        str(RENSHI),
        "scheduler",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while sum("cannot use the database" in line for line in lines) < 2:
                lines.append((await process.stderr.readline()).decode())
    finally:
        process.terminate()
        rest, _ = await process.communicate()
    lines += (rest or b"").decode().splitlines()

    tries = [line for line in lines if "cannot use the database" in line]
    waits = [re.search(r"trying again in (\d+) s\.$", t.strip()) for t in tries[:2]]
    assert [wait.group(1) if wait else None for wait in waits] == ["5", "10"]
    assert all("Connect call failed" in t for t in tries)
    assert not any("Traceback" in line for line in lines)
    assert process.returncode == 0
