"""Choosing the database for this process and preparing it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from renshi import embedded
from renshi.settings import Settings, get_settings
from tenants.database import configure_engine, create_engine


def database_url(settings: Settings | None = None) -> str:
    """`DATABASE_URL` when set, else the embedded server's (started on demand)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded.start(settings.data_dir)


def setup_engine(url: str | None = None, settings: Settings | None = None) -> AsyncEngine:
    """Create the process-wide engine from settings and install it."""
    settings = settings or get_settings()
    engine = create_engine(
        url or database_url(settings),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_overflow,
    )
    configure_engine(engine)
    return engine
