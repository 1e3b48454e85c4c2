"""Exact money: `Decimal` amounts in an ISO 4217 currency, at that currency's minor unit.

The one rounding rule of Renshi is half-up to the currency's minor unit (JPY 0 decimals,
CNY/USD/EUR 2, KWD/JOD 3), as Babel's CLDR data gives them.
"""

from __future__ import annotations

import dataclasses
import functools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies

from domain.errors import DomainError
from i18n import N_


def currency_code(value: str, *, field: str = "currency") -> str:
    """A known ISO 4217 code in upper case, or a `DomainError`."""
    code = (value or "").strip().upper()
    if code not in _known_currencies():
        raise DomainError(N_("{value} is not an ISO 4217 currency code."), field=field, value=value)
    return code


@functools.cache
def _known_currencies() -> frozenset[str]:
    # Babel rebuilds the set on every call; imports check hundreds of thousands of amounts.
    return frozenset(list_currencies())


@functools.cache
def minor_units(currency: str) -> int:
    return int(get_currency_precision(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


@dataclasses.dataclass(frozen=True, slots=True)
class Money:
    """An amount at its currency's minor unit. Build it with `Money.of`."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str, *, field: str = "amount") -> Money:
        code = currency_code(currency)
        try:
            value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
        except InvalidOperation as exc:
            raise DomainError(N_("{value} is not a number."), field=field, value=amount) from exc
        if not value.is_finite():
            raise DomainError(N_("{value} is not a number."), field=field, value=amount)
        return cls(quantize(value, code), code)

    def format(self, locale: str) -> str:
        return format_currency(self.amount, self.currency, locale=locale)

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"Cannot add {other.currency} to {self.currency}.")
        return Money(self.amount + other.amount, self.currency)
