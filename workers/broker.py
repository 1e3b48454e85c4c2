"""The message broker, chosen by URL.

- `amqp://`, `amqps://`: RabbitMQ (Dramatiq's `RabbitmqBroker`), the production choice;
- `postgresql://`, `postgres://`: the Postgres broker of `dramatiq-postgres`, its queue
  tables in the schema `dramatiq`.

`BROKER_URL` names it; when unset the Postgres broker runs on the application database, so
a development machine needs no other server. Every broker gets the same middleware: the
tenant context, the retry policy and the worker's event loop.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy.engine import make_url

from workers import actors
from workers.jobs import JobLedger
from workers.middleware import TenantContext, should_retry
from workers.runtime import EventLoop

log = logging.getLogger(__name__)

QUEUE_SCHEMA = "dramatiq"
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 3_600_000


class UnsupportedBroker(ValueError):
    """Raised when a broker URL names a scheme Renshi has no broker for."""


def middleware() -> list[Middleware]:
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        JobLedger(),  # before Retries: its after-hooks run after Retries' (reverse order)
        Retries(min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS, retry_when=should_retry),
        TenantContext(),
        EventLoop(),
    ]


def configured_url(database_url: str | None = None) -> str:
    """`BROKER_URL` when set, else the database (`database_url`, default from settings)."""
    from renshi.settings import get_settings

    settings = get_settings()
    if settings.broker_url:
        return settings.broker_url
    if database_url is None:
        from renshi.database import database_url as resolve

        database_url = resolve(settings)
    return database_url


def make_broker(url: str) -> Broker:
    """A broker for `url`, with Renshi's middleware; actors are declared by `install`."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: the relay marks an outbox row sent only once RabbitMQ has it.
        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware())
    if scheme.startswith("postgres"):
        return _postgres_broker(url)
    raise UnsupportedBroker(
        f"No broker for {scheme!r} URLs; use amqp:// (RabbitMQ) or postgresql:// (Postgres)."
    )


def _postgres_broker(url: str) -> Broker:
    from dramatiq_postgres import PostgresBroker
    from dramatiq_postgres.schema import init

    # libpq wants the plain scheme, not SQLAlchemy's `postgresql+asyncpg`.
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    from renshi.settings import get_settings

    ttl = get_settings().broker_heartbeat_seconds
    broker = PostgresBroker(
        url=plain,
        schema=QUEUE_SCHEMA,
        results=False,
        heartbeat_ttl=ttl,
        heartbeat_interval=ttl / 4,
        maintenance_interval=ttl / 2,
        middleware=middleware(),
    )
    # Idempotent and serialised on an advisory lock, so every process may call it.
    with broker.pool.connection() as conn, conn.cursor() as cursor:
        if init(cursor, schema=QUEUE_SCHEMA):
            log.info("Created the Postgres broker's queue tables in schema %s.", QUEUE_SCHEMA)
    return broker


_installed: Broker | None = None


def install(broker: Broker) -> Broker:
    """Make `broker` the process's broker and declare every actor on it."""
    global _installed
    actors.declare_all(broker)
    dramatiq.set_broker(broker)
    _installed = broker
    return broker


def current() -> Broker:
    """The installed broker; raises rather than let Dramatiq invent a default one."""
    if _installed is None:
        raise RuntimeError("No broker is installed; call workers.broker.install() first.")
    return _installed


def uninstall(broker: Broker) -> None:
    """Forget `broker` (tests switching brokers) and close its connections."""
    global _installed
    actors.forget(broker)
    if _installed is broker:
        _installed = None
    broker.close()
