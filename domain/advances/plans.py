"""Repayment schedules: N monthly instalments that add up exactly to the amount.

Each instalment is the amount divided by N, rounded half-up to the currency's minor
unit; the last one absorbs the remainder. A plan starting on a date has its instalments
fall due one, two, ... N months later, on the start's day of the month clamped to the
month's end (from 31 January: 28 or 29 February, 31 March, 30 April).
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from domain.errors import DomainError
from domain.money import Money, quantize
from i18n import N_

MAX_INSTALMENTS = 120


def monthly_due_dates(start: dt.date, count: int) -> list[dt.date]:
    """`count` dates, 1 to `count` months after `start`, clamped to each month's end."""
    dates = []
    for offset in range(1, count + 1):
        month_index = start.month - 1 + offset
        year, month = start.year + month_index // 12, month_index % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        dates.append(dt.date(year, month, min(start.day, last_day)))
    return dates


def instalments(total: Money, count: int, start: dt.date) -> list[tuple[dt.date, Money]]:
    """The schedule of a plan; raises `DomainError` when the split is impossible."""
    if not 1 <= count <= MAX_INSTALMENTS:
        raise DomainError(
            N_("A plan has 1 to {count} instalments."), field="instalments", count=MAX_INSTALMENTS
        )
    if total.amount <= 0:
        raise DomainError(N_("There is nothing to repay."), field="amount")
    regular = quantize(total.amount / Decimal(count), total.currency)
    last = total.amount - regular * (count - 1)
    if regular <= 0 or last <= 0:
        raise DomainError(
            N_("The amount is too small for that many instalments."), field="instalments"
        )
    amounts = [regular] * (count - 1) + [last]
    return [
        (due, Money(amount, total.currency))
        for due, amount in zip(monthly_due_dates(start, count), amounts, strict=True)
    ]
