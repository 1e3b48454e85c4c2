"""Tenant context and retry policy for every message.

Only transient failures are retried (`should_retry`): a message whose arguments do not fit
its actor, or that hits a bug, fails at once rather than twelve times over a day.

Every message names its tenant by slug in `options["tenant"]`. On the way out the
`TenantContext` middleware stamps the current tenant on a message that names none, and
refuses to send a message for a tenant-scoped actor without one. On the way in it looks
the tenant up in the registry, makes it current for the actor, and clears it once the
message is done: succeeded, failed or skipped. Messages for a suspended, archived or
deleted tenant are dropped with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import BrokerConnectionError, Retry
from dramatiq.message import Message
from dramatiq.middleware import Interrupt, MiddlewareError, SkipMessage

from tenants.context import current_tenant_or_none, use_tenant
from tenants.registry import find_tenant
from workers import runtime

log = logging.getLogger(__name__)

TENANT_OPTION = "tenant"
SCOPED_OPTION = "tenant_scoped"


class WorkerError(MiddlewareError):
    """Root of the errors raised by Renshi's worker machinery."""


class PermanentFailure(Exception):
    """Raised by an actor when retrying cannot help (bad input, a refused address...)."""


class MalformedMessage(PermanentFailure):
    """Raised when a message's arguments do not fit its actor: retrying cannot fix them."""


class TenantRequired(WorkerError, PermanentFailure):
    """Raised when a message for a tenant-scoped actor carries no tenant."""


class TenantLookupFailed(WorkerError):
    """Raised when the registry could not be read to check a message's tenant (retried)."""


def is_tenant_scoped(broker: Broker, actor_name: str) -> bool:
    actor = broker.actors.get(actor_name)
    return bool(actor is None or actor.options.get(SCOPED_OPTION, True))


class TenantContext(Middleware):
    """Sets the message's tenant as the current one around each actor call."""

    def __init__(self) -> None:
        # The tenant entered for the message a worker thread runs, kept per thread: the
        # enter and the exit happen on that thread, and two copies of one message (same
        # id) may run on two threads at once.
        self._running = threading.local()

    @property
    def actor_options(self) -> set[str]:
        return {SCOPED_OPTION}

    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        if message.options.get(TENANT_OPTION):
            return
        current = current_tenant_or_none()
        if current is not None:
            message.options[TENANT_OPTION] = current.slug
        elif is_tenant_scoped(broker, message.actor_name):
            raise TenantRequired(
                f"Refusing to send {message.actor_name!r} without a tenant: "
                "it is tenant-scoped; send it inside use_tenant() or name one."
            )

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        slug = message.options.get(TENANT_OPTION)
        if not slug:
            if is_tenant_scoped(broker, message.actor_name):
                raise TenantRequired(
                    f"Message {message.message_id} for the tenant-scoped actor "
                    f"{message.actor_name!r} names no tenant; it is refused."
                )
            return
        try:
            tenant = runtime.run(find_tenant(slug))
        except Exception as exc:
            raise TenantLookupFailed(f"Could not look up tenant {slug!r}: {exc}") from exc
        if tenant is None or not tenant.is_active:
            log.warning(
                "Dropping message %s for %r: tenant %r is %s.",
                message.message_id,
                message.actor_name,
                slug,
                tenant.status if tenant else "deleted",
            )
            raise SkipMessage(f"tenant {slug!r} is not active")
        self._leave()  # nothing is left from an earlier message, but never stack tenants
        entered = use_tenant(tenant)
        entered.__enter__()
        self._running.entered = entered

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._leave()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._leave()

    def _leave(self) -> None:
        entered: contextlib.AbstractContextManager[Any] | None = getattr(
            self._running, "entered", None
        )
        self._running.entered = None
        if entered is not None:
            # Same worker thread as the enter: the context variable resets cleanly.
            entered.__exit__(None, None, None)


MAX_RETRIES = 12
# SQLSTATE classes and codes worth another try: a lost connection (08), a serialisation
# failure or deadlock (40), a server short of resources (53), an administrator's shutdown
# or a server starting (57P), a lock not available (55P03).
TRANSIENT_SQLSTATES = ("08", "40", "53", "57P", "55P03")


def should_retry(retries: int, exception: BaseException) -> bool:
    """The default policy: transient failures up to MAX_RETRIES times, nothing else.

    Retrying helps when the failure was the world's (the database or the broker out of
    reach, a deadlock, a shutdown) and not the message's: bad arguments, a bug, a
    permanent failure fail at once, into the dead letters and `renshi jobs status`.
    """
    return retries < MAX_RETRIES and is_transient(exception)


def is_transient(exception: BaseException) -> bool:
    """Whether `exception`, or one it was raised from, may not happen on another try."""
    from sqlalchemy import exc as sa

    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PermanentFailure):
            return False
        if isinstance(
            current,
            OSError  # connections refused or reset, timeouts (TimeoutError is one)
            | Retry
            | Interrupt  # a worker shutting down, a time limit
            | BrokerConnectionError
            | TenantLookupFailed
            | sa.OperationalError
            | sa.InterfaceError
            | sa.TimeoutError,  # no connection free in the pool
        ):
            return True
        if isinstance(current, sa.DBAPIError):
            if current.connection_invalidated:
                return True
            state = getattr(current.orig, "sqlstate", None) or ""
            return state.startswith(TRANSIENT_SQLSTATES)
        current = current.__cause__ or current.__context__
    return False
