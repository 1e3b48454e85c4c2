"""Hostile slugs and tenant fields are refused before any SQL runs.

A slug becomes a schema name, and identifiers cannot be bound parameters, so the slug is
the one input that could ever be spliced into SQL. It is checked in Python first, by the
CLI and by `TenantSpec.parse` alike; nothing reaches the database when it fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from renshi.settings import get_settings
from tenants.errors import InvalidSlug, InvalidTenantField
from tenants.provisioning import TenantSpec, create_tenant, drop_tenant
from tests.conftest import GraphQLClient, unique_slug
from tests.test_cli import Cli

# Nothing listens on the discard port: a CLI run that tried to connect would fail there.
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:9/renshi_nowhere"

NOT_FOUND = {
    "data": None,
    "errors": [{"message": "No such tenant.", "extensions": {"code": "NOT_FOUND"}}],
}
SHAPE = "A slug starts with a letter and has 2 to 40 lower-case letters, digits or '_'."
HOSTILE_SLUGS = [
    pytest.param("x;drop", SHAPE, id="semicolon"),
    pytest.param("x; DROP SCHEMA shared CASCADE;--", SHAPE, id="statement"),
    pytest.param("a'b", SHAPE, id="single-quote"),
    pytest.param('a"b', SHAPE, id="double-quote"),
    pytest.param("Acme", "A slug is lower case: use 'acme'.", id="upper-case"),
    pytest.param("pg_catalog", "The slug 'pg_catalog' is reserved.", id="pg_catalog"),
    pytest.param("PG_Catalog", "The slug 'pg_catalog' is reserved.", id="pg_catalog-upper"),
    pytest.param("pg_temp_1", "The slug 'pg_temp_1' is reserved.", id="pg-prefix"),
    pytest.param("public", "The slug 'public' is reserved.", id="public"),
    pytest.param("shared", "The slug 'shared' is reserved.", id="shared"),
    pytest.param(
        "information_schema", "The slug 'information_schema' is reserved.", id="information"
    ),
    pytest.param("a" * 200, "A slug has at most 40 characters, this one has 200.", id="200"),
    pytest.param("a" * 41, "A slug has at most 40 characters, this one has 41.", id="41"),
    pytest.param("", "A slug is required.", id="empty"),
    pytest.param("a", SHAPE, id="one-letter"),
    pytest.param("租户", SHAPE, id="unicode"),
    pytest.param("café", SHAPE, id="accent"),
    pytest.param("1acme", SHAPE, id="leading-digit"),
    pytest.param("_acme", SHAPE, id="leading-underscore"),
    pytest.param("ac me", SHAPE, id="space"),
    pytest.param("acme\n", SHAPE, id="newline"),
    pytest.param("ac-me", SHAPE, id="hyphen"),
    pytest.param("ac\x00me", SHAPE, id="nul"),
]
BAD_FIELDS = [
    pytest.param({"name": ""}, "name", "A tenant name has 1 to 200 characters.", id="no-name"),
    pytest.param({"name": "   "}, "name", "A tenant name has 1 to 200 characters.", id="blank"),
    pytest.param(
        {"name": "x" * 201}, "name", "A tenant name has 1 to 200 characters.", id="long-name"
    ),
    pytest.param(
        {"name": "Acme\x00"},
        "name",
        "A tenant name cannot contain control characters.",
        id="nul-name",
    ),
    pytest.param({"locale": "xx"}, "locale", "Unknown locale 'xx'.", id="locale"),
    pytest.param({"locale": ""}, "locale", "Unknown locale ''.", id="empty-locale"),
    pytest.param(
        {"locale": "en_US;drop"}, "locale", "Unknown locale 'en_US;drop'.", id="locale-sql"
    ),
    pytest.param({"locale": "en US"}, "locale", "Unknown locale 'en US'.", id="locale-space"),
    pytest.param(
        {"currency": "EURO"}, "currency", "Unknown ISO 4217 currency 'EURO'.", id="currency"
    ),
    pytest.param(
        {"currency": "ABC"}, "currency", "Unknown ISO 4217 currency 'ABC'.", id="no-such-code"
    ),
    pytest.param(
        {"time_zone": "Mars/Olympus"},
        "time_zone",
        "Unknown IANA time zone 'Mars/Olympus'.",
        id="time-zone",
    ),
    pytest.param(
        {"time_zone": "../../etc/passwd"},
        "time_zone",
        "Unknown IANA time zone '../../etc/passwd'.",
        id="time-zone-path",
    ),
]


def usage_error(message: str) -> str:
    return (
        "Usage: renshi tenants create [OPTIONS] SLUG\n"
        "Try 'renshi tenants create --help' for help.\n\n"
        f"Error: Invalid value: {message}\n"
    )


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement the process engine sends while the test runs."""
    sent: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    yield sent
    event.remove(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


async def catalog(engine: AsyncEngine) -> tuple[list[str], list[str]]:
    """The database's schemas and registered slugs."""
    async with engine.connect() as conn:
        schemas = await conn.scalars(text("SELECT nspname FROM pg_namespace ORDER BY 1"))
        names = list(schemas)
        slugs = list(await conn.scalars(text("SELECT slug FROM shared.tenants ORDER BY 1")))
    return names, slugs


@pytest.mark.parametrize(("slug", "message"), HOSTILE_SLUGS)
async def test_a_hostile_slug_is_refused_before_any_sql(
    engine: AsyncEngine, statements: list[str], slug: str, message: str
) -> None:
    before = await catalog(engine)
    statements.clear()

    with pytest.raises(InvalidSlug) as refused:
        TenantSpec.parse(slug=slug, name="Hostile")

    assert str(refused.value) == message
    assert statements == []
    assert await catalog(engine) == before


@pytest.mark.parametrize(("fields", "field", "message"), BAD_FIELDS)
async def test_a_bad_tenant_field_is_refused_before_any_sql(
    engine: AsyncEngine, statements: list[str], fields: dict[str, Any], field: str, message: str
) -> None:
    before = await catalog(engine)
    statements.clear()

    with pytest.raises(InvalidTenantField) as refused:
        TenantSpec.parse(**({"slug": unique_slug("field"), "name": "Fine"} | fields))

    assert (refused.value.field, str(refused.value)) == (field, message)
    assert statements == []
    assert await catalog(engine) == before


async def test_a_name_full_of_sql_is_stored_as_plain_text(engine: AsyncEngine) -> None:
    slug = unique_slug("quoted")
    name = 'O\'Brien "&" Sons; DROP TABLE shared.tenants;--'

    tenant = await create_tenant(engine, TenantSpec.parse(slug=slug, name=name))
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(
                text("SELECT name FROM shared.tenants WHERE slug = :slug"), {"slug": slug}
            )
    finally:
        await drop_tenant(engine, slug)

    assert tenant.name == name
    assert stored == name


@pytest.mark.parametrize(
    "header",
    ["x;drop", "public", "pg_catalog", "shared", "Robert'); DROP TABLE tenants;--", "a" * 200],
)
async def test_a_hostile_x_tenant_header_is_not_found_without_any_sql(
    gql: GraphQLClient, statements: list[str], header: str
) -> None:
    response = await gql.post("{ viewer { user { email } } }", tenant=header)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert statements == []


async def test_a_hostile_hostname_is_not_found_without_any_sql(
    gql: GraphQLClient, statements: list[str]
) -> None:
    response = await gql.post(
        "{ viewer { user { email } } }", headers={"Host": f"x'drop.{get_settings().base_domain}"}
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert statements == []


async def test_the_cli_refuses_hostile_slugs_and_names_and_creates_nothing(
    engine: AsyncEngine, database_url: str
) -> None:
    # Given the database as it is,
    before = await catalog(engine)
    attempts = {
        ("x;drop", "X"): usage_error(SHAPE),
        ("pg_catalog", "X"): usage_error("The slug 'pg_catalog' is reserved."),
        (unique_slug("cli"), ""): usage_error("A tenant name has 1 to 200 characters."),
    }

    # when an operator tries to create tenants with a hostile slug or an empty name,
    runs = await asyncio.gather(
        *(Cli(database_url)("tenants", "create", slug, "--name", name) for slug, name in attempts)
    )

    # then each attempt fails with a usage error that says why, and nothing was created.
    assert [(run.code, run.out, run.err) for run in runs] == [
        (2, "", expected) for expected in attempts.values()
    ]
    assert await catalog(engine) == before


async def test_the_cli_refuses_bad_input_without_reaching_for_the_database() -> None:
    attempts = {
        ("a'b", "--currency", "USD"): usage_error(SHAPE),
        (unique_slug("nodb"), "--currency", "EURO"): usage_error(
            "Unknown ISO 4217 currency 'EURO'."
        ),
    }

    runs = await asyncio.gather(
        *(
            Cli(UNREACHABLE_DATABASE)("tenants", "create", slug, "--name", "Fine", option, value)
            for slug, option, value in attempts
        )
    )

    assert [(run.code, run.out, run.err) for run in runs] == [
        (2, "", expected) for expected in attempts.values()
    ]
