"""What the advances area accepts: money in real currencies, amounts its columns hold,
sensible exchange rates and dates that stay on the calendar.

Each check raises a `DomainError` naming the input field, so an absurd input is a clear
user error rather than an overflow in the database or in `decimal`.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import ROUND_HALF_UP, Decimal

from babel.core import get_global
from babel.numbers import get_territory_currencies

from domain import clock
from domain.errors import DomainError
from domain.money import Money, currency_code
from i18n import N_

# Money columns are NUMERIC(19, 4): fifteen digits before the point. Inputs stay three
# digits below that, so that sums, conversions and formatting never come near it.
MAX_AMOUNT = Decimal(10) ** 12
# Rates are NUMERIC(24, 10). Between these bounds a rate keeps at least four significant
# digits, and a converted amount stays within what the columns hold.
MIN_RATE = Decimal("0.000001")
MAX_RATE = Decimal(1_000_000)
RATE_EXPONENT = Decimal("1e-10")
MAX_CLAIM_LINES = 200
# A repayment plan starts within a year back (a plan agreed before it was entered) and
# five years ahead.
PLAN_START_YEARS_BACK = 1
PLAN_START_YEARS_AHEAD = 5


@functools.lru_cache(maxsize=2)
def _tender(today: dt.date) -> frozenset[str]:
    """Currencies that are legal tender somewhere on `today`, as CLDR records them: no
    precious metals (XAU), funds (CLF), testing codes (XTS) or the code for no currency,
    and no currency that has been withdrawn (DEM). Kept per day, so a long-running
    process follows withdrawals."""
    found: set[str] = set()
    for territory in get_global("territory_currencies"):
        found.update(get_territory_currencies(territory, today, tender=True))
    return frozenset(found)


def money_currency(value: str, *, field: str = "currency") -> str:
    """An ISO 4217 code of a currency people are paid in, or a `DomainError`."""
    code = currency_code(value, field=field)
    if code not in _tender(clock.now().date()):
        raise DomainError(
            N_("{value} is not a currency money is paid in."), field=field, value=code
        )
    return code


def money(
    amount: Decimal, currency: str, *, field: str = "amount", currency_field: str = "currency"
) -> Money:
    """`amount` in `currency` at its minor unit, within what an advance may hold."""
    code = money_currency(currency, field=currency_field)
    # copy_abs ignores the decimal context, so even 1e999999999 compares without raising.
    if amount.is_finite() and amount.copy_abs() >= MAX_AMOUNT:
        raise DomainError(
            N_("The amount must be less than {limit}."), field=field, limit=f"{MAX_AMOUNT:,f}"
        )
    return Money.of(amount, code, field=field)


def held(amount: Money, *, field: str = "amount") -> Money:
    """`amount` (e.g. the result of a conversion), if an advance may hold it."""
    if amount.amount.copy_abs() >= MAX_AMOUNT:
        raise DomainError(
            N_("The amount must be less than {limit}."), field=field, limit=f"{MAX_AMOUNT:,f}"
        )
    return amount


def rate(value: Decimal, *, field: str = "rate") -> Decimal:
    """An exchange rate within bounds, rounded half-up to the ten decimals rates keep."""
    if not value.is_finite() or not MIN_RATE <= value <= MAX_RATE:
        raise DomainError(
            N_("A rate is between {low} and {high}."),
            field=field,
            low=f"{MIN_RATE:f}",
            high=f"{MAX_RATE:,f}",
        )
    return value.quantize(RATE_EXPONENT, rounding=ROUND_HALF_UP)


def inverse_rate(value: Decimal) -> Decimal:
    """1 / `value`, rounded half-up to the ten decimals rates keep."""
    return (Decimal(1) / value).quantize(RATE_EXPONENT, rounding=ROUND_HALF_UP)


def years_from(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (or earlier); 29 February falls on the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def plan_start(starts_on: dt.date, today: dt.date, *, field: str = "startsOn") -> dt.date:
    """A repayment plan's start, within a year back and five years ahead of `today`."""
    earliest = years_from(today, -PLAN_START_YEARS_BACK)
    latest = years_from(today, PLAN_START_YEARS_AHEAD)
    if not earliest <= starts_on <= latest:
        raise DomainError(
            N_("A plan starts between {earliest} and {latest}."),
            field=field,
            earliest=earliest.isoformat(),
            latest=latest.isoformat(),
        )
    return starts_on
