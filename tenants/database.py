"""The one engine and connection pool that serves every tenant.

Connections start with an empty `search_path`, so an unqualified table name resolves to
nothing until a tenant transaction binds one with `SET LOCAL` (see `tenants.binding`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def async_url(url: str) -> str:
    """Turn any PostgreSQL URL into the asyncpg flavour SQLAlchemy needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"Renshi needs PostgreSQL, not {parsed.get_backend_name()!r}.")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 5, null_pool: bool = False
) -> AsyncEngine:
    """Create an engine. The process-wide one is installed with `configure_engine`.

    `null_pool` gives a pool-less engine for short-lived worker processes.
    """
    pooling: dict[str, Any] = (
        {"poolclass": NullPool}
        if null_pool
        else {"pool_size": pool_size, "max_overflow": max_overflow, "pool_pre_ping": True}
    )
    return create_async_engine(
        async_url(url),
        connect_args={
            "server_settings": {"search_path": "", "application_name": "renshi"},
        },
        **pooling,
    )


_engine: AsyncEngine | None = None


def configure_engine(engine: AsyncEngine) -> None:
    """Install `engine` as the process-wide engine (the app factory and CLI do this)."""
    global _engine
    _engine = engine


def get_engine() -> AsyncEngine:
    if _engine is None:
        raise RuntimeError("The database engine is not configured; call configure_engine().")
    return _engine


async def dispose_engine() -> None:
    global _engine
    if _engine is not None:
        await _engine.dispose()
        _engine = None
