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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


class BrokerUnavailable(RuntimeError):
    """Raised when the broker of a URL cannot be reached, or refuses the connection."""


RABBITMQ = "RabbitMQ"
POSTGRES = "Postgres"
PROBE_TIMEOUT = 5.0  # seconds to connect, before the broker is reported out of reach


def kind_of(url: str) -> str:
    """`RABBITMQ` or `POSTGRES`, by the URL's scheme; `UnsupportedBroker` for others."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("amqp", "amqps"):
        return RABBITMQ
    if scheme.startswith("postgres"):
        return POSTGRES
    raise UnsupportedBroker(
        f"BROKER_URL names no broker Renshi knows ({scheme + '://' if scheme else url!r}):"
        " use amqp:// (RabbitMQ) or postgresql:// (Postgres)."
    )


def shown(url: str) -> str:
    """`url` without its password, to be shown in messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def libpq_url(url: str) -> str:
    """A Postgres URL as libpq takes it: the plain scheme, not `postgresql+asyncpg`."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def check_reachable(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect to the broker of `url` once, or raise `BrokerUnavailable` saying why."""
    if kind_of(url) == RABBITMQ:
        rabbitmq_connection(url, timeout).close()
    else:
        postgres_connection(url, timeout).close()


def postgres_connection(
    url: str, timeout: float = PROBE_TIMEOUT, *, what: str = "the Postgres broker"
) -> Any:
    """A psycopg connection to the database of `url` (`what` it serves, for the message),
    or `BrokerUnavailable`."""
    import psycopg

    try:
        return psycopg.connect(libpq_url(url), connect_timeout=max(1, round(timeout)))
    except psycopg.Error as exc:
        # libpq: 'connection failed: connection to server at "h", port p failed: <why>'
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = first.rsplit("failed:", 1)[-1].strip().removeprefix("FATAL:").strip()
        raise BrokerUnavailable(f"Cannot use {what} at {shown(url)}: {reason}") from None


def rabbitmq_connection(url: str, timeout: float = PROBE_TIMEOUT) -> Any:
    """A pika connection to RabbitMQ, tried once, or `BrokerUnavailable` saying why."""
    import pika
    from pika import exceptions

    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    where = f"RabbitMQ at {shown(url)}"
    try:
        return pika.BlockingConnection(params)
    except exceptions.ProbableAuthenticationError:
        raise BrokerUnavailable(f"{where} refused the user name or password.") from None
    except exceptions.ProbableAccessDeniedError:
        raise BrokerUnavailable(
            f"{where} refused access to virtual host {params.virtual_host!r}:"
            " it does not exist, or the user may not use it."
        ) from None
    except (exceptions.AMQPError, OSError) as exc:
        # pika wraps the socket's error: "AMQPConnectorSocketConnectError: ConnectionRefused..."
        reason = repr(exc.args[0]) if exc.args else type(exc).__name__
        raise BrokerUnavailable(f"Cannot reach {where}: {reason}") from None


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
    if kind_of(url) == RABBITMQ:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Publisher confirms: the relay marks an outbox row sent only once RabbitMQ has it.
        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware())
    return _postgres_broker(url)


def _postgres_broker(url: str) -> Broker:
    from dramatiq_postgres import PostgresBroker
    from dramatiq_postgres.schema import init

    plain = libpq_url(url)
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
