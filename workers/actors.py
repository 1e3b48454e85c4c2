"""Declaring Renshi's actors independently of the broker they end up on.

`@actor` records a function under a stable name; `workers.broker.install` declares every
recorded actor on the broker chosen at start-up (the URL decides which), so the same
actors run on RabbitMQ, the Postgres broker or a test's broker. Coroutine functions run
on the worker's event loop (`workers.runtime`) with the message's tenant made current
inside the coroutine as well.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import inspect
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq

from tenants.context import current_tenant_or_none, use_tenant
from workers import runtime
from workers.jobs import SCHEDULED_ACTORS
from workers.middleware import SCOPED_OPTION, MalformedMessage, TenantRequired


@dataclasses.dataclass(frozen=True)
class ActorSpec:
    name: str
    fn: Callable[..., Any]
    queue_name: str
    tenant_scoped: bool
    options: dict[str, Any]

    def callable(self) -> Callable[..., None]:
        """The function Dramatiq calls on a worker thread."""
        fn, name, scoped = self.fn, self.name, self.tenant_scoped
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> None:
            tenant = current_tenant_or_none()
            if scoped and tenant is None:
                raise TenantRequired(f"The tenant-scoped actor {name!r} ran without a tenant.")
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise MalformedMessage(f"Arguments that {name!r} does not take: {exc}") from None
            if not inspect.iscoroutinefunction(fn):
                fn(*args, **kwargs)
                return

            async def in_tenant() -> None:
                # The loop's task does not see the worker thread's context: set it again.
                if tenant is None:
                    await fn(*args, **kwargs)
                else:
                    with use_tenant(tenant):
                        await fn(*args, **kwargs)

            runtime.run(in_tenant())

        return call


# Every module that declares actors; workers import them all before they start.
ACTOR_MODULES = (
    "workers.system",
    "workers.events",
    "workers.notifications",
    "workers.reminders",
    "workers.risk",
    "workers.risk_models",
)

_specs: dict[str, ActorSpec] = {}
_declared_on: list[dramatiq.Broker] = []


def actor(
    name: str | None = None,
    *,
    queue_name: str = "default",
    tenant_scoped: bool = True,
    scheduled: bool = False,
    **options: Any,
) -> Callable[[Callable[..., Any]], ActorRef]:
    """Record an actor. Tenant-scoped actors (the default) refuse messages without a tenant;
    the last run of a `scheduled` one is recorded per tenant for `renshi jobs status`."""

    def record(fn: Callable[..., Any]) -> ActorRef:
        spec = ActorSpec(
            name=name or f"{fn.__module__}.{fn.__name__}",
            fn=fn,
            queue_name=queue_name,
            tenant_scoped=tenant_scoped,
            options=options,
        )
        known = _specs.get(spec.name)
        if known is not None and known.fn is not fn:
            raise ValueError(f"An actor named {spec.name!r} is already recorded.")
        _specs[spec.name] = spec
        if scheduled:
            SCHEDULED_ACTORS.add(spec.name)
        for broker in _declared_on:
            declare(broker, spec)
        return ActorRef(spec.name)

    return record


def declare(broker: dramatiq.Broker, spec: ActorSpec) -> None:
    if spec.name in broker.actors:
        return
    dramatiq.actor(
        spec.callable(),
        actor_name=spec.name,
        queue_name=spec.queue_name,
        broker=broker,
        **{SCOPED_OPTION: spec.tenant_scoped, **spec.options},
    )


def declare_all(broker: dramatiq.Broker) -> None:
    """Declare every recorded actor (and those recorded later) on `broker`."""
    for spec in list(_specs.values()):
        declare(broker, spec)
    if broker not in _declared_on:
        _declared_on.append(broker)


def forget(broker: dramatiq.Broker) -> None:
    if broker in _declared_on:
        _declared_on.remove(broker)


def import_all() -> None:
    for module in ACTOR_MODULES:
        importlib.import_module(module)


def spec(name: str) -> ActorSpec:
    return _specs[name]


def queue_names() -> list[str]:
    """The queues of the recorded actors (import them all first), sorted."""
    return sorted({s.queue_name for s in _specs.values()})


@dataclasses.dataclass(frozen=True)
class ActorRef:
    """A handle on a recorded actor; sending goes through the installed broker."""

    name: str

    def send(self, *args: Any, **kwargs: Any) -> dramatiq.Message[Any]:
        return self.send_with_options(args=args, kwargs=kwargs)

    def send_with_options(
        self,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        delay: int | None = None,
        **options: Any,
    ) -> dramatiq.Message[Any]:
        from workers.broker import current

        return (
            current()
            .get_actor(self.name)
            .send_with_options(args=args, kwargs=kwargs, delay=delay, **options)
        )

    @property
    def queue_name(self) -> str:
        return _specs[self.name].queue_name


# --- reading a message's arguments ------------------------------------------------------------


def parse_uuid(value: object, argument: str) -> uuid.UUID:
    """`value` as a UUID, or a `MalformedMessage` naming the argument."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise MalformedMessage(f"{argument} is not a UUID: {value!r}") from None


def parse_instant(value: object, argument: str) -> dt.datetime:
    """`value` as an aware datetime (ISO 8601 with its UTC offset), or a `MalformedMessage`."""
    try:
        instant = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise MalformedMessage(f"{argument} is not an ISO 8601 instant: {value!r}") from None
    if instant.utcoffset() is None:
        raise MalformedMessage(f"{argument} has no UTC offset: {value!r}")
    return instant
