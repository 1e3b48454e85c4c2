"""The transparent points model of advance risk: fixed, documented weights.

A tenant with too little history to train a model on is scored with these points. Every
employee starts at 10 points; each factor below adds (or, for rewards, takes away) its
points, and the total is kept between 0 and 100. The factors with a contribution are
the explanation, largest first.

| factor                | reads (as of the day)                 | points                     |
|-----------------------|---------------------------------------|----------------------------|
| (base)                | -                                     | 10                         |
| advance_outstanding   | outstanding / monthly salary (r)      | 10 x r, at most 30         |
| advance_overdue       | most days an advance is overdue (d)   | d / 3, at most 30          |
| write_offs            | write-offs in 12 months (n)           | 15 x n, at most 30         |
| rejections            | rejected requests in 12 months (n)    | 4 x n, at most 12          |
| slow_settlement       | average days to settle (s)            | (s - 30) / 5, 0 to 10      |
| missing_receipts      | claim lines without receipt, 12 m (n) | 2 x n, at most 8           |
| late_receipts         | receipts after settlement date, 12 m  | 2 x n, at most 8           |
| performance_decline   | last rating minus the previous (t)    | 5 x -t when t < 0, <= 10   |
| penalties             | penalties in 12 months (n)            | 4 x n, at most 12          |
| rewards               | rewards in 12 months (n)              | -3 x n, at least -9        |
| leaving               | status is offboarding                 | 15                         |
| short_tenure          | employed less than a year             | 5                          |
| manager_changes       | manager changes in 12 months (n)      | 2 x n, at most 6           |
| long_leave            | 30 or more days on leave in 12 months | 4                          |
| stalled_promotion     | 4 or more years since promotion/hire  | 3                          |
| low_pay               | salary in the lowest quarter of band  | 3                          |

The bands come from the tenant's thresholds (`domain.analytics.alerts`): high from the
high threshold up, medium from the medium threshold up, low below. The points model
gives no probability: it ranks, it is not calibrated.

Contributions are rounded to hundredths; the score is the rounded base plus the sum of
the rounded contributions, clamped, so the explanation always adds up.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_decimal

from domain.analytics.features import SENTENCES, Features
from i18n import N_, translate

MODEL_KIND = "points"
# points-2 added the receipt factors; stored scores keep the version that made them.
MODEL_VERSION = "points-2"
BASE_POINTS = Decimal(10)
HUNDREDTH = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Scores from `medium` up are in the medium band, from `high` up in the high band."""

    medium: Decimal
    high: Decimal

    def band(self, score: Decimal) -> str:
        if score >= self.high:
            return "high"
        if score >= self.medium:
            return "medium"
        return "low"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the weights table: points from a feature, and the sentence saying why."""

    name: str
    points: Callable[[Features], Decimal | None]
    message: str
    params: Callable[[Features], dict[str, Decimal | int]]


def _capped(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def _outstanding(f: Features) -> Decimal | None:
    if not f.outstanding_to_salary:
        return None
    return _capped(10 * f.outstanding_to_salary, Decimal(0), Decimal(30))


def _overdue(f: Features) -> Decimal | None:
    if f.max_overdue_days <= 0:
        return None
    return _capped(Decimal(f.max_overdue_days) / 3, Decimal(0), Decimal(30))


def _slow(f: Features) -> Decimal | None:
    days = f.average_settlement_days
    if days is None or days <= 30:
        return None
    return _capped((days - 30) / 5, Decimal(0), Decimal(10))


def _decline(f: Features) -> Decimal | None:
    if f.rating_trend is None or f.rating_trend >= 0:
        return None
    return _capped(5 * -f.rating_trend, Decimal(0), Decimal(10))


def _per_count(count: int, each: int, cap: int) -> Decimal | None:
    if count <= 0:
        return None
    total = Decimal(count * each)
    return max(total, Decimal(cap)) if each < 0 else min(total, Decimal(cap))


def _flag(condition: bool, points: int) -> Decimal | None:
    return Decimal(points) if condition else None


RULES: tuple[Rule, ...] = (
    Rule(
        "advance_outstanding",
        _outstanding,
        N_("Advance outstanding is {ratio}x monthly salary."),
        lambda f: {"ratio": f.outstanding_to_salary or Decimal(0)},
    ),
    Rule(
        "advance_overdue",
        _overdue,
        N_("An advance is {days} days overdue."),
        lambda f: {"days": f.max_overdue_days},
    ),
    Rule(
        "write_offs",
        lambda f: _per_count(f.write_offs_12m, 15, 30),
        N_("Advances written off in the last 12 months: {count}."),
        lambda f: {"count": f.write_offs_12m},
    ),
    Rule(
        "rejections",
        lambda f: _per_count(f.rejections_12m, 4, 12),
        N_("Advance requests rejected in the last 12 months: {count}."),
        lambda f: {"count": f.rejections_12m},
    ),
    Rule(
        "slow_settlement",
        _slow,
        N_("Advances take {days} days on average from payment to settlement."),
        lambda f: {"days": f.average_settlement_days or Decimal(0)},
    ),
    Rule(
        "missing_receipts",
        lambda f: _per_count(f.missing_receipts_12m, 2, 8),
        N_("Expense lines claimed without a receipt in the last 12 months: {count}."),
        lambda f: {"count": f.missing_receipts_12m},
    ),
    Rule(
        "late_receipts",
        lambda f: _per_count(f.late_receipts_12m, 2, 8),
        N_("Receipts handed in after the settlement date in the last 12 months: {count}."),
        lambda f: {"count": f.late_receipts_12m},
    ),
    Rule(
        "performance_decline",
        _decline,
        N_("The performance rating fell from {previous} to {last}."),
        lambda f: {
            "previous": (f.last_rating or Decimal(0)) - (f.rating_trend or Decimal(0)),
            "last": f.last_rating or Decimal(0),
        },
    ),
    Rule(
        "penalties",
        lambda f: _per_count(f.penalties_12m, 4, 12),
        N_("Penalties in the last 12 months: {count}."),
        lambda f: {"count": f.penalties_12m},
    ),
    Rule(
        "rewards",
        lambda f: _per_count(f.rewards_12m, -3, -9),
        N_("Rewards in the last 12 months: {count}."),
        lambda f: {"count": f.rewards_12m},
    ),
    Rule(
        "leaving",
        lambda f: _flag(f.status == "offboarding", 15),
        N_("The employee is leaving the company."),
        lambda f: {},
    ),
    Rule(
        "short_tenure",
        lambda f: _flag(f.tenure_years < 1, 5),
        N_("Employed for less than a year ({years} years)."),
        lambda f: {"years": f.tenure_years},
    ),
    Rule(
        "manager_changes",
        lambda f: _per_count(f.manager_changes_12m, 2, 6),
        N_("Manager changes in the last 12 months: {count}."),
        lambda f: {"count": f.manager_changes_12m},
    ),
    Rule(
        "long_leave",
        lambda f: _flag(f.leave_days_12m >= 30, 4),
        N_("On leave for {days} days in the last 12 months."),
        lambda f: {"days": f.leave_days_12m},
    ),
    Rule(
        "stalled_promotion",
        lambda f: _flag(f.years_since_promotion >= 4, 3),
        N_("No promotion for {years} years."),
        lambda f: {"years": f.years_since_promotion},
    ),
    Rule(
        "low_pay",
        lambda f: _flag(f.pay_band_position is not None and f.pay_band_position < 0.25, 3),
        N_("The salary is in the lowest quarter of the pay band."),
        lambda f: {},
    ),
)


MESSAGES = {rule.name: rule.message for rule in RULES}


# NOTE: Factor and Scored are slots and not frozen, as `Features` is: a frozen dataclass
# sets each field through object.__setattr__, and a nightly run makes some 400,000 of
# them. Treat them as read-only.
@dataclasses.dataclass(slots=True)
class Factor:
    """One reason for a score: its signed points and the sentence that explains it."""

    name: str
    contribution: Decimal
    message: str
    params: Mapping[str, Decimal | int | str | None]

    def as_json(self) -> dict[str, Any]:
        """The stored form. The sentence is not stored: `describe` finds it by the name,
        so a reworded sentence serves old scores too."""
        return {
            "name": self.name,
            "contribution": str(self.contribution),
            "params": {k: None if v is None else str(v) for k, v in self.params.items()},
        }


@dataclasses.dataclass(slots=True)
class Scored:
    employee_id: Any
    score: Decimal
    band: str
    probability: Decimal | None
    factors: list[Factor]


def score(features: Features, thresholds: Thresholds) -> Scored:
    """Points, band and explaining factors (largest first) of one employee."""
    factors = []
    total = BASE_POINTS
    for rule in RULES:
        points = rule.points(features)
        if points is None:
            continue
        contribution = points.quantize(HUNDREDTH, rounding=ROUND_HALF_UP)
        if contribution:
            total += contribution
            factors.append(Factor(rule.name, contribution, rule.message, rule.params(features)))
    value = _capped(total, ZERO, HUNDRED)
    factors.sort(key=_largest_first)
    return Scored(features.employee_id, value, thresholds.band(value), None, factors)


def _largest_first(factor: Factor) -> tuple[Decimal, str]:
    return -abs(factor.contribution), factor.name


def describe(factor: dict[str, Any], locale: str, format_locale: str) -> str:
    """A stored factor's sentence in the reader's language, numbers in their format.

    A factor is named by a rule of this model or, for a trained model, by the feature it
    reads (`domain.analytics.features.SENTENCES`).
    """
    params = {
        name: _shown(value, locale, format_locale)
        for name, value in factor.get("params", {}).items()
    }
    name = factor["name"]
    message = factor.get("message") or MESSAGES.get(name) or SENTENCES[name]
    return translate(message, locale, **params)


def _shown(value: str | None, locale: str, format_locale: str) -> str:
    """A stored parameter for a sentence: a number in the reader's format, a word as it is."""
    if value is None:
        return translate(N_("unknown"), locale)
    try:
        return formatted(value, format_locale)
    except InvalidOperation:
        return value  # a category, such as a status


@functools.lru_cache(maxsize=8192)
def formatted(value: str, format_locale: str) -> str:
    """A stored number as the reader writes it; cached, as alerts repeat a few values."""
    return format_decimal(Decimal(value), locale=format_locale)
