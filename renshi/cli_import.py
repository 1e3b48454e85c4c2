"""`renshi import`: load existing people data into a tenant (see README, "Imports")."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from domain.errors import DomainError
from i18n import N_, translate
from renshi.cli import main, run_async

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@main.group("import")
def import_group() -> None:
    """Load employees from files, Oracle's HR sample or IBM's attrition table."""


@import_group.command("employees")
@click.argument("file", type=_EXISTING_FILE)
@click.option("--tenant", "slug", required=True, help="Slug of the tenant.")
@click.option("--mapping", "mapping_path", type=_EXISTING_FILE, required=True, help="TOML map.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
def import_employees(file: Path, slug: str, mapping_path: Path, dry_run: bool) -> None:
    """Upsert employees from a CSV or XLSX FILE, all or nothing, by employee number."""
    from domain.imports.employees import import_employees as run
    from domain.imports.mapping import load_mapping

    try:
        mapping = load_mapping(mapping_path)
    except DomainError as exc:
        raise click.ClickException(translate(exc.message, None, **exc.params)) from exc
    _run(slug, lambda: run(file, mapping, dry_run=dry_run))


@import_group.command("oracle-hr")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tenant", "slug", required=True, help="Slug of the tenant.")
def import_oracle_hr(directory: Path, slug: str) -> None:
    """Load Oracle's sample HR schema from the CSV files in DIRECTORY."""
    from domain.imports.oracle_hr import import_oracle_hr as run

    _run(slug, lambda: run(directory))


@import_group.command("ibm-attrition")
@click.argument("file", type=_EXISTING_FILE)
@click.option("--tenant", "slug", required=True, help="Slug of the tenant.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The day the table describes (YYYY-MM-DD); tenures count back from it.",
)
@click.option("--country", default="US", show_default=True, help="Country of the one branch.")
def import_ibm_attrition(file: Path, slug: str, as_of: dt.datetime, country: str) -> None:
    """Load IBM's HR attrition table (1,470 employees) as of a date."""
    from domain.imports.ibm_attrition import import_ibm_attrition as run

    _run(slug, lambda: run(file, as_of=as_of.date(), country=country))


def _run(slug: str, work: Callable[[], Awaitable[object]]) -> None:
    from domain.imports.report import ImportReport
    from tenants.context import use_tenant
    from tenants.registry import get_active_tenant

    async def in_tenant() -> tuple[ImportReport, str]:
        tenant = await get_active_tenant(slug)
        with use_tenant(tenant):
            report = await work()
        assert isinstance(report, ImportReport)
        return report, tenant.locale

    report, locale = run_async(in_tenant)
    _print(report, locale)
    if report.rejected:
        raise click.ClickException(
            translate(
                N_("{source} was rejected; nothing was written."), locale, source=report.source
            )
        )


def _print(report: object, locale: str) -> None:
    from domain.imports.report import ImportReport

    assert isinstance(report, ImportReport)

    def say(template: str, **params: object) -> None:
        click.echo(translate(template, locale, **params))

    say(N_("{source}: {count} rows read."), source=report.source, count=report.rows)
    for problem in sorted(report.problems, key=lambda p: p.row or 0):
        text = translate(problem.message, locale, **problem.params)
        if problem.row is None:
            say(N_("file: {text}"), text=text)
        elif problem.value is None:
            say(
                N_('row {row}, column "{column}": {text}'),
                row=problem.row,
                column=problem.column or "-",
                text=text,
            )
        else:
            say(
                N_('row {row}, column "{column}", value "{value}": {text}'),
                row=problem.row,
                column=problem.column or "-",
                value=problem.value,
                text=text,
            )
    hidden = report.problem_count - len(report.problems)
    if hidden > 0:
        say(N_("... and {count} more problems."), count=hidden)
    if report.rejected:
        say(N_("Problems: {count}; nothing was written."), count=report.problem_count)
        return
    say(N_("Created: {counts}."), counts=_counts(report.created))
    say(N_("Changed: {counts}."), counts=_counts(report.changed))
    say(N_("Unchanged: {counts}."), counts=_counts(report.unchanged))
    for template, params in report.notes:
        say(template, **params)
    if report.dry_run:
        say(N_("Dry run: nothing was written."))


def _counts(counter: Counter[str]) -> str:
    if not counter:
        return "0"
    return ", ".join(f"{count} {name}" for name, count in sorted(counter.items()))
