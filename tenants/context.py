"""The current tenant, carried in a context variable.

Set by the request middleware (and the worker middleware) with `use_tenant`, read by the
binding layer. Never a module global or a thread-local: each asyncio task and each thread
sees only the tenant its own caller set.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from tenants.errors import NoTenantContext
from tenants.slugs import schema_for


@dataclass(frozen=True, slots=True)
class Tenant:
    """A registered tenant as the rest of the code sees it (immutable snapshot)."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    locale: str
    currency: str
    time_zone: str
    hostnames: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return schema_for(self.slug)

    @property
    def is_active(self) -> bool:
        return self.status == "active"


_current_tenant: ContextVar[Tenant | None] = ContextVar("renshi_current_tenant", default=None)


def current_tenant() -> Tenant:
    """The tenant of the running unit of work; raises `NoTenantContext` when none is set."""
    tenant = _current_tenant.get()
    if tenant is None:
        raise NoTenantContext("No tenant is set for this unit of work.")
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _current_tenant.get()


@contextlib.contextmanager
def use_tenant(tenant: Tenant) -> Iterator[Tenant]:
    """Make `tenant` current inside the block and restore the previous one afterwards."""
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)
