"""Migrating many tenant schemas: partial failure, reruns, the lock, the report, drift.

The session database is shared with other tests, so these tests only assert about tenants
they created, and drop them again: a tenant left at a revision of a temporary line, or
with a changed catalog, would break every later run of `tenants migrate` or `check`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from domain.identity.models import User
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tenants.errors import MigrationLocked
from tenants.migrator import (
    TENANT_LINE,
    head_of,
    migrate_tenant_schema,
    migrate_tenants,
    migration_lock,
    script_directory,
    tenant_revisions,
)
from tenants.provisioning import drop_tenant
from tests.conftest import PASSWORD, TenantWithAdmin, make_tenant, unique_slug
from tests.test_cli import Cli

NEXT = "t9001"


def unique_names_revision(down_revision: str) -> str:
    """A revision making display names unique: fails where two users share one."""
    return f'''"""Display names are unique (a revision of the tests, not of the product).

Revision ID: {NEXT}
Revises: {down_revision}
"""

from alembic import op

revision = "{NEXT}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_users_display_name", "users", ["display_name"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_display_name", table_name="users")
'''


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


@pytest.fixture
async def own_tenants(engine: AsyncEngine) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """Makes tenants for one test and drops them afterwards, whatever state they are in."""
    made: list[str] = []

    async def make() -> TenantWithAdmin:
        tenant = await make_tenant(engine, unique_slug("mig"))
        made.append(tenant.tenant.slug)
        return tenant

    yield make
    for slug in made:
        await drop_tenant(engine, slug)


def copy_of_tenant_line(into: Path) -> Path:
    location = into / "tenant"
    shutil.copytree(TENANT_LINE, location, ignore=shutil.ignore_patterns("__pycache__"))
    return location


def with_unique_names(into: Path) -> tuple[Path, str]:
    """The tenant line with one more revision on top; returns it and its previous head."""
    location = copy_of_tenant_line(into)
    head = head_of(location)
    revision = location / "versions" / f"{NEXT}_unique_display_names.py"
    revision.write_text(unique_names_revision(head))
    return location, head


def without_head(into: Path) -> Path:
    """The tenant line as it was before its newest revision."""
    location = copy_of_tenant_line(into)
    newest = script_directory(location).get_revision(head_of(location))
    assert newest is not None and newest.path is not None
    Path(newest.path).unlink()
    return location


async def rebuild_at(engine: AsyncEngine, slug: str, location: Path) -> None:
    """Recreate a tenant's schema at the head of `location`, as an older release built it."""
    schema = f"t_{slug}"
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await migrate_tenant_schema(conn, schema, location)


async def index_names(engine: AsyncEngine, slug: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = :s"), {"s": f"t_{slug}"}
        )
        return set(rows)


def outcomes(results: list[Any]) -> list[dict[str, Any]]:
    """Results without their durations, which vary from run to run."""
    return [{k: v for k, v in r.as_dict().items() if k != "seconds"} for r in results]


async def test_a_failing_tenant_keeps_its_revision_and_a_rerun_finishes_the_job(
    engine: AsyncEngine, own_tenants: Callable[[], Awaitable[TenantWithAdmin]], tmp_path: Path
) -> None:
    # Given three tenants, one of them with two users of the same name,
    first, clashing, last = [await own_tenants() for _ in range(3)]
    with use_tenant(clashing.tenant):
        await create_user(
            clashing.tenant,
            email="second.admin@clash.test",
            display_name="Admin",
            password=PASSWORD,
            roles=["admin"],
        )
    slugs = [first.tenant.slug, clashing.tenant.slug, last.tenant.slug]
    # and a new revision on top of the current head that makes display names unique,
    location, head = with_unique_names(tmp_path)

    # when all three are migrated at once,
    failed = await migrate_tenants(engine, slugs, concurrency=4, location=location)

    # then the clashing tenant failed with the database's reason and kept its revision
    # and its data, while the other two reached the new head;
    assert outcomes(failed) == [
        {"slug": slugs[0], "outcome": "ok", "from_revision": head, "to_revision": NEXT,
         "error": None},
        {"slug": slugs[1], "outcome": "failed", "from_revision": head, "to_revision": head,
         "error": 'could not create unique index "uq_users_display_name"'},
        {"slug": slugs[2], "outcome": "ok", "from_revision": head, "to_revision": NEXT,
         "error": None},
    ]  # fmt: skip
    assert await tenant_revisions(engine, slugs) == dict(
        zip(slugs, [NEXT, head, NEXT], strict=True)
    )
    assert "uq_users_display_name" in await index_names(engine, slugs[0])
    assert "uq_users_display_name" not in await index_names(engine, slugs[1])
    async with tenant_session(clashing.tenant) as session:
        names = sorted((await session.scalars(text("SELECT display_name FROM users"))).all())
    assert names == ["Admin", "Admin"]

    # when the clash is resolved and the same run is started again,
    async with tenant_session(clashing.tenant) as session:
        await session.execute(
            update(User)
            .where(User.email == "second.admin@clash.test")
            .values(display_name="Second Admin")
        )
    rerun = await migrate_tenants(engine, slugs, concurrency=4, location=location)

    # then the tenants already done are skipped and the last one is migrated.
    assert outcomes(rerun) == [
        {"slug": slugs[0], "outcome": "skipped", "from_revision": NEXT, "to_revision": NEXT,
         "error": None},
        {"slug": slugs[1], "outcome": "ok", "from_revision": head, "to_revision": NEXT,
         "error": None},
        {"slug": slugs[2], "outcome": "skipped", "from_revision": NEXT, "to_revision": NEXT,
         "error": None},
    ]  # fmt: skip
    assert await tenant_revisions(engine, slugs) == dict.fromkeys(slugs, NEXT)
    assert "uq_users_display_name" in await index_names(engine, slugs[1])


async def test_a_second_migration_run_is_refused_while_the_lock_is_held(
    engine: AsyncEngine, cli: Cli
) -> None:
    async with migration_lock(engine):
        with pytest.raises(MigrationLocked) as refused:
            async with migration_lock(engine):
                pass
        run = await cli("tenants", "migrate")
    async with migration_lock(engine):
        taken_again = True

    assert str(refused.value) == "Another migration run holds the lock; try again later."
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: Another migration run holds the lock; try again later.\n",
    )
    assert taken_again


async def test_the_migrate_command_reports_every_tenant_and_fails_when_one_fails(
    engine: AsyncEngine,
    cli: Cli,
    own_tenants: Callable[[], Awaitable[TenantWithAdmin]],
    tmp_path: Path,
) -> None:
    # Given a tenant built by the previous release, one whose version table claims the
    # previous revision although its tables are current, and one at head,
    behind, lying, current = [(await own_tenants()).tenant.slug for _ in range(3)]
    head = head_of(TENANT_LINE)
    await rebuild_at(engine, behind, without_head(tmp_path))
    previous = (await tenant_revisions(engine, [behind]))[behind]
    async with engine.begin() as conn:
        await conn.execute(
            text(f'UPDATE "t_{lying}".alembic_version SET version_num = :v'), {"v": previous}
        )

    # when the operator migrates everything, with a JSON report,
    run = await cli("tenants", "migrate", "--json")

    # then the report has one entry per registered tenant, says what happened to each,
    # and the command fails because one tenant did.
    report = {entry["slug"]: entry for entry in json.loads(run.out)}
    async with engine.connect() as conn:
        registered = set(await conn.scalars(text("SELECT slug FROM shared.tenants")))
    assert set(report) == registered
    assert {slug: report[slug]["outcome"] for slug in (behind, lying, current)} == {
        behind: "ok",
        lying: "failed",
        current: "skipped",
    }
    assert isinstance(report[behind].pop("seconds"), float)
    assert report[behind] == {
        "slug": behind,
        "outcome": "ok",
        "from_revision": previous,
        "to_revision": head,
        "error": None,
    }
    assert isinstance(report[lying].pop("seconds"), float)
    error = report[lying].pop("error")
    assert report[lying] == {
        "slug": lying,
        "outcome": "failed",
        "from_revision": previous,
        "to_revision": previous,
    }
    # The head revision finds what it makes (a table, a column, a function) already there.
    made = r'(column "\w+" of )?(relation|function) "\w+" already exists'
    assert re.fullmatch(made + "( with same argument types)?", error), error
    assert report[current] == {
        "slug": current,
        "outcome": "skipped",
        "from_revision": head,
        "to_revision": head,
        "seconds": 0.0,
        "error": None,
    }
    assert (run.code, run.err.splitlines()[-1]) == (
        1,
        "Error: 1 tenant(s) failed to migrate; rerun to retry.",
    )
    assert await tenant_revisions(engine, [behind, lying, current]) == {
        behind: head,
        lying: previous,
        current: head,
    }


async def test_the_check_command_names_a_difference_in_one_tenant_schema(
    engine: AsyncEngine,
    cli: Cli,
    own_tenants: Callable[[], Awaitable[TenantWithAdmin]],
) -> None:
    # Given two tenants with clean schemas,
    clean, changed = [(await own_tenants()).tenant.slug for _ in range(2)]
    before = await cli("tenants", "check", "--json")

    # when someone adds a column and drops an index by hand in one of them,
    async with engine.begin() as conn:
        await conn.execute(text(f'ALTER TABLE "t_{changed}".users ADD COLUMN nickname text'))
        await conn.execute(text(f'DROP INDEX "t_{changed}".uq_users_email'))
    after = await cli("tenants", "check")

    # then the check passed before, and now names both differences of that tenant only.
    reports = {entry["slug"]: entry for entry in json.loads(before.out)}
    assert before.code == 0, before.err
    assert reports[clean] == {"slug": clean, "missing": [], "unexpected": []}
    assert reports[changed] == {"slug": changed, "missing": [], "unexpected": []}
    assert after.code == 1
    assert after.err.splitlines()[-1] == "Error: Some tenant schemas differ from the reference."
    lines = after.out.splitlines()
    assert f"{clean}: ok" in lines
    block = lines[lines.index(f"{changed}: DRIFT") :][:3]
    assert block == [
        f"{changed}: DRIFT",
        "  missing:    index CREATE UNIQUE INDEX uq_users_email ON users USING btree "
        "(lower((email)::text))",
        "  unexpected: column users.nickname text null",
    ]
