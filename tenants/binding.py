"""Binding a unit of work to a tenant schema.

Every tenant transaction starts with `SET LOCAL search_path`, so the binding ends with the
transaction, commit or rollback alike, and a pooled connection never carries a tenant to
its next user. One pool serves all tenants.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from tenants.context import Tenant, current_tenant_or_none
from tenants.database import get_engine
from tenants.errors import NoTenantContext, TenantMismatch
from tenants.metadata import TenantBase
from tenants.slugs import SHARED_SCHEMA, quote_ident

TENANT_INFO_KEY = "renshi_tenant"


class RenshiSession(Session):
    """The ORM session class of Renshi; guarded so tenant tables need a bound tenant."""


def search_path_sql(schema: str) -> str:
    # Identifiers cannot be bind parameters; `quote_ident` re-checks the derived name.
    return f"SET LOCAL search_path TO {quote_ident(schema)}, {quote_ident(SHARED_SCHEMA)}"


@contextlib.asynccontextmanager
async def tenant_session(tenant: Tenant | None = None) -> AsyncIterator[AsyncSession]:
    """Open a transaction bound to `tenant` (default: the current tenant) and yield its session.

    The transaction commits when the block exits normally and rolls back on an exception.
    """
    bound = _resolve(tenant)
    session = AsyncSession(
        get_engine(),
        sync_session_class=RenshiSession,
        expire_on_commit=False,
        info={TENANT_INFO_KEY: bound},
    )
    async with session, session.begin():
        await session.execute(text(search_path_sql(bound.schema)))
        yield session


@contextlib.asynccontextmanager
async def shared_session() -> AsyncIterator[AsyncSession]:
    """Open a transaction for the shared schema only; tenant tables stay unreachable."""
    session = AsyncSession(get_engine(), sync_session_class=RenshiSession, expire_on_commit=False)
    async with session, session.begin():
        yield session


def _resolve(tenant: Tenant | None) -> Tenant:
    current = current_tenant_or_none()
    if tenant is None:
        if current is None:
            raise NoTenantContext("A tenant transaction needs a current tenant.")
        return current
    if current is not None and current.id != tenant.id:
        raise TenantMismatch(f"Asked for tenant {tenant.slug!r} while {current.slug!r} is current.")
    return tenant


def _touches_tenant_tables(mappers: Any) -> bool:
    return any(issubclass(mapper.class_, TenantBase) for mapper in mappers)


def _check_binding(session: Session) -> None:
    bound: Tenant | None = session.info.get(TENANT_INFO_KEY)
    if bound is None:
        raise NoTenantContext("Tenant tables were touched outside a tenant transaction.")
    current = current_tenant_or_none()
    if current is not None and current.id != bound.id:
        raise TenantMismatch(
            f"A transaction bound to {bound.slug!r} was used while {current.slug!r} is current."
        )


@event.listens_for(RenshiSession, "do_orm_execute")
def _guard_orm_execute(state: ORMExecuteState) -> None:
    if _touches_tenant_tables(state.all_mappers):
        _check_binding(state.session)


@event.listens_for(RenshiSession, "before_flush")
def _guard_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    pending = [*session.new, *session.dirty, *session.deleted]
    if any(isinstance(obj, TenantBase) for obj in pending):
        _check_binding(session)
