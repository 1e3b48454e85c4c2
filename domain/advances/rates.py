"""Exchange rates per tenant, entered or imported, each valid from a date."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advances.bounds import inverse_rate
from domain.advances.models import ExchangeRate
from domain.errors import DomainError
from domain.money import Money
from i18n import N_


@dataclasses.dataclass(frozen=True)
class Conversion:
    """An amount converted, with the rate and the date the rate applies from."""

    source: Money
    result: Money
    rate: Decimal | None  # None when no conversion was needed
    rate_date: dt.date | None


async def rate_on(
    session: AsyncSession, base: str, quote: str, day: dt.date
) -> tuple[Decimal, dt.date]:
    """Units of `quote` per unit of `base` on `day`: the latest rate entered on or before it.

    A rate entered the other way round (quote to base) serves too, inverted: 1 / rate,
    rounded half-up to the ten decimals rates are kept with. The later of the two wins.
    """
    direct = await session.execute(
        select(ExchangeRate.rate, ExchangeRate.valid_from)
        .where(
            ExchangeRate.base_currency == base,
            ExchangeRate.quote_currency == quote,
            ExchangeRate.valid_from <= day,
        )
        .order_by(ExchangeRate.valid_from.desc())
        .limit(1)
    )
    inverse = await session.execute(
        select(ExchangeRate.rate, ExchangeRate.valid_from)
        .where(
            ExchangeRate.base_currency == quote,
            ExchangeRate.quote_currency == base,
            ExchangeRate.valid_from <= day,
        )
        .order_by(ExchangeRate.valid_from.desc())
        .limit(1)
    )
    found = direct.first()
    flipped = inverse.first()
    if found and (flipped is None or found.valid_from >= flipped.valid_from):
        return found.rate, found.valid_from
    if flipped:
        return inverse_rate(flipped.rate), flipped.valid_from
    raise DomainError(
        N_("No exchange rate from {base} to {quote} is known on {day}."),
        field="currency",
        base=base,
        quote=quote,
        day=day.isoformat(),
    )


async def convert(session: AsyncSession, money: Money, currency: str, day: dt.date) -> Conversion:
    """`money` in `currency`, rounded half-up to that currency's minor unit."""
    if money.currency == currency:
        return Conversion(money, money, None, None)
    rate, valid_from = await rate_on(session, money.currency, currency, day)
    return Conversion(money, Money.of(money.amount * rate, currency), rate, valid_from)
