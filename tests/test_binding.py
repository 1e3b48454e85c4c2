"""Binding units of work to a tenant: nothing outlives its transaction.

The engine here has a single connection, so "the next user of the connection" is simply
whoever asks for one next.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.models import User
from tenants.binding import shared_session, tenant_session
from tenants.context import use_tenant
from tenants.database import configure_engine, create_engine
from tenants.errors import NoTenantContext, TenantMismatch
from tests.conftest import TenantWithAdmin, make_tenant

BACKEND = text("SELECT pg_backend_pid(), current_setting('search_path')")


class Boom(Exception):
    """Raised by a test in the middle of a transaction."""


@pytest.fixture
async def one_connection(database_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Install a process engine with exactly one connection; the session one comes back."""
    single = create_engine(database_url, pool_size=1, max_overflow=0)
    configure_engine(single)
    try:
        yield single
    finally:
        configure_engine(engine)
        await single.dispose()


@pytest.fixture(scope="module")
async def pair(engine: AsyncEngine) -> tuple[TenantWithAdmin, TenantWithAdmin]:
    return await make_tenant(engine), await make_tenant(engine)


@pytest.fixture
def tenant(pair: tuple[TenantWithAdmin, TenantWithAdmin]) -> TenantWithAdmin:
    return pair[0]


@pytest.fixture
def other(pair: tuple[TenantWithAdmin, TenantWithAdmin]) -> TenantWithAdmin:
    return pair[1]


def record(statements: list[str]) -> Any:
    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    return before_cursor_execute


async def next_user_sees(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(BACKEND)).one()
    return row[0], row[1]


async def count_users(tenant: TenantWithAdmin) -> int:
    async with tenant_session(tenant.tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def new_user() -> User:
    return User(id=uuid.uuid4(), email="temp@example.test", display_name="Temp", password_hash="x")


async def test_an_exception_mid_transaction_leaves_the_connection_without_a_tenant(
    tenant: TenantWithAdmin, one_connection: AsyncEngine
) -> None:
    # Given a tenant transaction that has written a row on the only connection,
    before = await count_users(tenant)
    with pytest.raises(Boom):
        async with tenant_session(tenant.tenant) as session:
            inside = (await session.execute(BACKEND)).one()
            session.add(new_user())
            await session.flush()
            # when the code raises before the transaction ends,
            raise Boom

    # then the next user of that same connection has no tenant and sees no tenant table,
    pid, search_path = await next_user_sees(one_connection)
    assert (pid, search_path) == (inside[0], "")
    assert inside[1] == f"{tenant.tenant.schema}, shared"
    # and the row was rolled back.
    assert await count_users(tenant) == before


async def test_a_failed_statement_mid_transaction_leaves_the_connection_without_a_tenant(
    tenant: TenantWithAdmin, one_connection: AsyncEngine
) -> None:
    # Given a tenant transaction on the only connection whose statement fails in the database,
    before = await count_users(tenant)
    with pytest.raises(DBAPIError, match="division by zero"):
        async with tenant_session(tenant.tenant) as session:
            inside = (await session.execute(BACKEND)).one()
            session.add(new_user())
            await session.flush()
            await session.execute(text("SELECT 1 / 0"))

    # then the next user of that connection is back on the empty search_path,
    pid, search_path = await next_user_sees(one_connection)
    assert (pid, search_path) == (inside[0], "")
    # and nothing the transaction wrote was kept.
    assert await count_users(tenant) == before


async def test_a_committed_transaction_leaves_the_connection_without_a_tenant(
    tenant: TenantWithAdmin, one_connection: AsyncEngine
) -> None:
    before = await count_users(tenant)
    async with tenant_session(tenant.tenant) as session:
        inside = (await session.execute(BACKEND)).one()
        session.add(new_user())

    pid, search_path = await next_user_sees(one_connection)

    assert (pid, search_path) == (inside[0], "")
    assert await count_users(tenant) == before + 1


async def test_an_unqualified_query_on_a_connection_a_tenant_used_finds_no_table(
    tenant: TenantWithAdmin, one_connection: AsyncEngine
) -> None:
    async with tenant_session(tenant.tenant) as session:
        await session.execute(select(User.id))

    async with one_connection.connect() as conn:
        with pytest.raises(ProgrammingError, match='relation "users" does not exist'):
            await conn.execute(text("SELECT * FROM users"))


async def test_reading_a_tenant_table_outside_a_tenant_transaction_raises(
    tenant: TenantWithAdmin,
) -> None:
    with use_tenant(tenant.tenant):
        async with shared_session() as session:
            with pytest.raises(NoTenantContext):
                await session.scalars(select(User))


async def test_writing_a_tenant_table_outside_a_tenant_transaction_raises_and_keeps_nothing(
    tenant: TenantWithAdmin,
) -> None:
    before = await count_users(tenant)

    with use_tenant(tenant.tenant), pytest.raises(NoTenantContext):
        async with shared_session() as session:
            session.add(new_user())

    assert await count_users(tenant) == before


async def test_a_tenant_transaction_needs_a_tenant() -> None:
    with pytest.raises(NoTenantContext, match="needs a current tenant"):
        async with tenant_session():
            pass


async def test_a_tenant_transaction_for_another_tenant_than_the_current_one_is_refused(
    tenant: TenantWithAdmin, other: TenantWithAdmin, one_connection: AsyncEngine
) -> None:
    statements: list[str] = []
    event.listen(one_connection.sync_engine, "before_cursor_execute", record(statements))

    with use_tenant(tenant.tenant), pytest.raises(TenantMismatch):
        async with tenant_session(other.tenant):
            pass

    assert statements == []


async def test_a_transaction_bound_to_one_tenant_cannot_be_used_while_another_is_current(
    tenant: TenantWithAdmin, other: TenantWithAdmin
) -> None:
    async with tenant_session(tenant.tenant) as session:
        with use_tenant(other.tenant), pytest.raises(TenantMismatch):
            await session.scalars(select(User))
