"""Pieces shared by every area of the GraphQL layer: money, IDs and mutation plumbing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import strawberry

from domain.clock import local_today
from domain.errors import DomainError, NotFound, Refusals
from domain.money import Money as DomainMoney
from i18n import N_
from schema.context import RequestContext
from schema.errors import UserError, user_error
from schema.node import from_global_id

T = TypeVar("T")


@strawberry.type(description="An exact amount in an ISO 4217 currency.")
class Money:
    amount: Decimal = strawberry.field(description="At the currency's minor unit.")
    currency: str = strawberry.field(description="ISO 4217 code.")
    formatted: str = strawberry.field(description="Formatted for the viewer's locale.")

    @classmethod
    def of(cls, amount: Decimal | None, currency: str | None, locale: str) -> Money | None:
        if amount is None or currency is None:
            return None
        money = DomainMoney.of(amount, currency)
        return cls(amount=money.amount, currency=money.currency, formatted=money.format(locale))


@strawberry.input(description="An amount with its currency.")
class MoneyInput:
    amount: Decimal = strawberry.field(description="The amount; rounded half-up to the minor unit.")
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217 code; defaults to the branch's currency."
    )


class Deferred:
    """An awaitable that starts its work only when awaited.

    A field holding one costs nothing unless the query selects it; graphql-core awaits it
    like a resolver's coroutine.
    """

    __slots__ = ("_start",)

    def __init__(self, start: Callable[[], Awaitable[object]]) -> None:
        self._start = start

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._start().__await__()


def decode_id(
    global_id: strawberry.ID | str, type_name: str, context: RequestContext, field: str
) -> uuid.UUID:
    """The primary key behind a global ID of `type_name` in this tenant, or NOT_FOUND."""
    decoded = from_global_id(str(global_id))
    tenant = context.require_tenant()
    if decoded is None or decoded[0] != type_name or decoded[1] != tenant.id:
        raise NotFound(N_("Nothing with this ID exists."), field=field)
    return decoded[2]


def decode_optional(
    global_id: strawberry.ID | None, type_name: str, context: RequestContext, field: str
) -> uuid.UUID | None:
    return None if global_id is None else decode_id(global_id, type_name, context, field)


def today(context: RequestContext) -> dt.date:
    return local_today(context.require_tenant().time_zone)


async def attempt(
    context: RequestContext, action: Callable[[], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run a domain action; a refusal becomes translated `userErrors`, nothing else is caught."""
    context.require_viewer()
    try:
        return await action(), []
    except Refusals as refusals:
        return None, [user_error(error, context.locale) for error in refusals.errors]
    except DomainError as error:
        return None, [user_error(error, context.locale)]
