"""Department patterns: how each org unit's people fare against the rest of the tenant.

A unit stands for its whole subtree (a department includes its teams), and it is compared
with the rest of the tenant outside that subtree, so a unit is never compared with itself.
Everything is read as of a date D, from the ledger and the employee periods, so events
after D change nothing. Four metrics:

- overdue rate: of the unit's people who hold money out at the end of D (an advance paid
  out and not yet settled), the share with at least one advance overdue, that is past its
  expected settlement date on its branch's calendar. Counting people, not advances, keeps
  one person with five late advances from weighing like five people.
- settlement lag: mean days from an advance's first disbursement to the day its balance
  reached zero, over advances settled in the twelve months up to D.
- write-offs: the amount written off or waived in those twelve months, in the tenant's
  currency at the rate of D; the rate compared is the share of advances closed in the
  window that were closed by a write-off or waiver.
- attrition rate: terminations effective in the twelve months up to D over the unit's
  average headcount in them (person-days employed divided by the days of the window).

Closed advances and leavers belong to the unit their person was in on the day of the
closure or exit; headcount and overdue money to the unit on D.

Each metric is tested one-sided ("is the unit worse than the rest?") with a test that
accounts for the unit's size: Fisher's exact test for the two shares, the Poisson E-test
for attrition (leavers against person-years) and Welch's t-test for the lag. p-values are
adjusted with Benjamini-Hochberg across the units tested for the same metric, and a unit
is flagged on a metric only if the adjusted p-value is at most `ALPHA`, its value is at
least `MIN_RATIO` times the rest's (or the rest's is 0), and at least `MIN_CASES` cases
(people overdue, advances written off, leavers, settlements) stand behind it: big enough
to matter, unlikely to be chance, and more than an anecdote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from scipy import stats
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain import clock
from domain.advances.ledger import CLOSING_KINDS
from domain.advances.models import Advance, LedgerEntry
from domain.advances.queries import branch_days
from domain.advances.rates import convert
from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.money import Money
from domain.organisation.models import OrgUnitVersion
from domain.organisation.queries import HOLDING_STATUSES, in_force
from domain.people.models import EmployeePeriod
from domain.permissions import require_any_role
from i18n import N_

# Only these roles see patterns (issue #6: admin and hr see scores and patterns).
PATTERN_READERS = ("admin", "hr")
METRICS = ("overdue_rate", "settlement_lag", "write_off_rate", "attrition_rate")
# A flag needs all three: the unit at least 1.5 times the rest, an adjusted p-value of at
# most 5 %, and at least three cases behind the unit's figure (one late person, however
# small the team, is an anecdote, not a pattern).
MIN_RATIO = 1.5
ALPHA = 0.05
MIN_CASES = 3


@dataclasses.dataclass(slots=True)
class Tally:
    """Counts that add up over units: a subtree's tally is the sum of its units'."""

    headcount: int = 0
    borrowers: int = 0
    overdue_borrowers: int = 0
    closed: int = 0
    settled: int = 0
    lag_days: int = 0
    lag_squares: int = 0
    written_off: int = 0
    write_offs: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    leavers: int = 0
    person_days: int = 0

    def add(self, other: Tally, sign: int = 1) -> None:
        for field in dataclasses.fields(self):
            if field.name != "write_offs":
                value = getattr(self, field.name) + sign * getattr(other, field.name)
                setattr(self, field.name, value)
        for currency, amount in other.write_offs.items():
            self.write_offs[currency] = self.write_offs.get(currency, Decimal(0)) + sign * amount

    def copy(self) -> Tally:
        return dataclasses.replace(self, write_offs=dict(self.write_offs))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """A unit's (or the tenant's) figures as of a date."""

    headcount: int
    borrowers: int
    overdue_borrowers: int
    overdue_rate: float | None  # None without borrowers
    settled_advances: int
    average_settlement_days: float | None
    closed_advances: int
    written_off_advances: int
    write_off_rate: float | None
    write_off_amount: Money  # in the tenant's currency
    leavers: int
    average_headcount: float
    attrition_rate: float | None


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of a unit against the rest of the tenant."""

    metric: str
    test: str  # fisher_exact, poisson_e_test or welch_t
    unit_value: float
    rest_value: float
    ratio: float | None  # unit / rest; None when the rest's value is 0
    difference: float  # unit - rest
    p_value: float  # one-sided: the unit is worse than the rest
    adjusted_p_value: float  # Benjamini-Hochberg over the units tested for this metric
    flagged: bool


@dataclasses.dataclass(frozen=True)
class UnitPattern:
    org_unit_id: uuid.UUID
    parent_id: uuid.UUID | None
    metrics: Metrics
    comparisons: list[Comparison]

    @property
    def flagged_metrics(self) -> list[str]:
        return [c.metric for c in self.comparisons if c.flagged]


@dataclasses.dataclass(frozen=True)
class Patterns:
    as_of: dt.date
    window_start: dt.date  # the first day of the twelve months up to `as_of`
    tenant: Metrics
    units: list[UnitPattern]


async def department_patterns(
    session: AsyncSession,
    viewer: Viewer,
    *,
    tenant_currency: str,
    time_zone: str,
    as_of: dt.date | None = None,
) -> Patterns:
    """Every org unit's metrics as of `as_of` (default: today in `time_zone`), compared
    with the rest of the tenant. A fixed number of queries, whatever the number of units."""
    require_any_role(viewer, *PATTERN_READERS)
    today = clock.local_today(time_zone)
    if as_of is not None and as_of > today:
        raise DomainError(N_("The as-of date cannot be in the future."), field="asOf")
    day = as_of or today
    window_start = _year_before(day) + dt.timedelta(days=1)
    # An explicit date is that day on every branch's calendar; by default each branch is
    # judged on its own today, as the aging report does.
    local_day = _branch_day(await branch_days(session) if as_of is None else {}, day)

    # TODO(#6): the overdue and closure counts each group the whole ledger per advance
    # (about 0.6 s and 1.0 s of 2.2 s at 100,000 advances, benchmarks/risk_patterns.py);
    # one pass feeding both would save the second.
    parents = await _unit_tree(session, day)
    own: dict[uuid.UUID | None, Tally] = defaultdict(Tally)
    await _count_overdue(session, own, day, local_day)
    await _count_closures(session, own, window_start, local_day)
    await _count_attrition(session, own, window_start, day)
    rates = await _rates_to(session, tenant_currency, day, own.values())

    window_days = (day - window_start).days + 1
    total = Tally()
    for tally in own.values():
        total.add(tally)
    subtrees = _subtree_tallies(parents, own)
    units = []
    for unit_id, tally in subtrees.items():
        rest = total.copy()
        rest.add(tally, sign=-1)
        units.append((unit_id, tally, rest))
    comparisons = _compare_all(
        [(unit_id, tally, rest, window_days) for unit_id, tally, rest in units]
    )

    def metrics(tally: Tally) -> Metrics:
        return _metrics(tally, window_days, rates, tenant_currency)

    return Patterns(
        as_of=day,
        window_start=window_start,
        tenant=metrics(total),
        units=[
            UnitPattern(unit_id, parents[unit_id], metrics(tally), comparisons[unit_id])
            for unit_id, tally, _ in units
        ],
    )


# --- the queries -----------------------------------------------------------------------------


async def _unit_tree(session: AsyncSession, day: dt.date) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each unit in force on `day`, mapped to its parent."""
    rows = await session.execute(
        select(OrgUnitVersion.org_unit_id, OrgUnitVersion.parent_id).where(
            in_force(OrgUnitVersion, day)
        )
    )
    return {unit_id: parent_id for unit_id, parent_id in rows}


async def _count_overdue(
    session: AsyncSession, own: dict[uuid.UUID | None, Tally], day: dt.date, local_day: Any
) -> None:
    """Headcount, borrowers and overdue borrowers per unit, at the end of `day`."""
    owed = func.sum(LedgerEntry.amount)
    per_advance = (
        select(
            Advance.employee_id,
            (Advance.expected_settlement_date < local_day).label("late"),
        )
        .join(LedgerEntry, LedgerEntry.advance_id == Advance.id)
        .where(LedgerEntry.occurred_on <= local_day)
        .group_by(Advance.id)
        .having(func.bool_or(LedgerEntry.kind == "disbursement"), owed > 0)
        .subquery()
    )
    owing = (
        select(per_advance.c.employee_id, func.bool_or(per_advance.c.late).label("late"))
        .group_by(per_advance.c.employee_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            EmployeePeriod.org_unit_id,
            func.count(),
            func.count(owing.c.employee_id),
            func.count().filter(owing.c.late),
        )
        .outerjoin(owing, owing.c.employee_id == EmployeePeriod.employee_id)
        .where(in_force(EmployeePeriod, day), EmployeePeriod.status.in_(HOLDING_STATUSES))
        .group_by(EmployeePeriod.org_unit_id)
    )
    for unit_id, headcount, borrowers, late in rows:
        tally = own[unit_id]
        tally.headcount, tally.borrowers, tally.overdue_borrowers = headcount, borrowers, late


async def _count_closures(
    session: AsyncSession,
    own: dict[uuid.UUID | None, Tally],
    window_start: dt.date,
    local_day: Any,
) -> None:
    """Advances whose balance reached zero in the window, settled or written off, per unit
    of their person on the closing day; with the lag and the amounts written off."""
    reversal = aliased(LedgerEntry)
    live = reversal.id.is_(None)
    closed_on = func.max(LedgerEntry.occurred_on)
    paid_on = func.min(LedgerEntry.occurred_on).filter(LedgerEntry.kind == "disbursement", live)
    per_advance = (
        select(
            Advance.employee_id,
            Advance.currency,
            paid_on.label("paid_on"),
            closed_on.label("closed_on"),
            func.sum(-LedgerEntry.amount)
            .filter(LedgerEntry.kind.in_(CLOSING_KINDS), live)
            .label("written"),
        )
        .join(LedgerEntry, LedgerEntry.advance_id == Advance.id)
        # A reversal made after the day has not happened yet as of the day.
        .outerjoin(
            reversal,
            and_(reversal.reverses_id == LedgerEntry.id, reversal.occurred_on <= local_day),
        )
        .where(LedgerEntry.occurred_on <= local_day)
        .group_by(Advance.id)
        .having(
            paid_on.is_not(None),
            func.sum(LedgerEntry.amount) <= 0,
            closed_on >= window_start,
        )
        .subquery()
    )
    lag = per_advance.c.closed_on - per_advance.c.paid_on
    settled = per_advance.c.written.is_(None)
    rows = await session.execute(
        select(
            EmployeePeriod.org_unit_id,
            per_advance.c.currency,
            func.count(),
            func.count().filter(settled),
            func.coalesce(func.sum(lag).filter(settled), 0),
            func.coalesce(func.sum(lag * lag).filter(settled), 0),
            func.count().filter(~settled),
            func.coalesce(func.sum(per_advance.c.written), 0),
        )
        .select_from(per_advance)
        .outerjoin(
            EmployeePeriod,
            and_(
                EmployeePeriod.employee_id == per_advance.c.employee_id,
                EmployeePeriod.valid_from <= per_advance.c.closed_on,
                or_(
                    EmployeePeriod.valid_to.is_(None),
                    EmployeePeriod.valid_to > per_advance.c.closed_on,
                ),
            ),
        )
        .group_by(EmployeePeriod.org_unit_id, per_advance.c.currency)
    )
    for unit_id, currency, closed, n_settled, days, squares, n_written, written in rows:
        tally = own[unit_id]
        tally.closed += closed
        tally.settled += n_settled
        tally.lag_days += days
        tally.lag_squares += squares
        tally.written_off += n_written
        if written:
            tally.write_offs[currency] = tally.write_offs.get(currency, Decimal(0)) + written


async def _count_attrition(
    session: AsyncSession,
    own: dict[uuid.UUID | None, Tally],
    window_start: dt.date,
    day: dt.date,
) -> None:
    """Leavers (termination effective in the window) and person-days employed, per unit."""
    end = day + dt.timedelta(days=1)
    employed = EmployeePeriod.status.in_(HOLDING_STATUSES)
    overlap = func.least(func.coalesce(EmployeePeriod.valid_to, end), end) - func.greatest(
        EmployeePeriod.valid_from, window_start
    )
    # The terminated period starts on the termination's effective date and keeps the unit
    # the person left from; nothing can follow it, so there is one per leaver.
    left = and_(EmployeePeriod.status == "terminated", EmployeePeriod.valid_from >= window_start)
    rows = await session.execute(
        select(
            EmployeePeriod.org_unit_id,
            func.coalesce(func.sum(overlap).filter(employed), 0),
            func.count().filter(left),
        )
        .where(
            EmployeePeriod.valid_from < end,
            or_(EmployeePeriod.valid_to.is_(None), EmployeePeriod.valid_to > window_start),
        )
        .group_by(EmployeePeriod.org_unit_id)
    )
    for unit_id, person_days, leavers in rows:
        own[unit_id].person_days += person_days
        own[unit_id].leavers += leavers


async def _rates_to(
    session: AsyncSession, currency: str, day: dt.date, tallies: Iterable[Tally]
) -> dict[str, Decimal]:
    """The rate of `day` from each currency written off into `currency`, as aging uses."""
    rates: dict[str, Decimal] = {}
    for tally in tallies:
        for source in tally.write_offs:
            if source not in rates:
                one = await convert(session, Money.of(1, source), currency, day)
                rates[source] = one.rate if one.rate is not None else Decimal(1)
    return rates


def _branch_day(days: Mapping[uuid.UUID, dt.date], default: dt.date) -> Any:
    """The as-of date on the calendar of each advance's branch, as an SQL expression."""
    if not days:
        return literal(default)
    return case(
        *((Advance.branch_id == branch_id, literal(day)) for branch_id, day in days.items()),
        else_=literal(default),
    )


# --- from tallies to figures -----------------------------------------------------------------


def _subtree_tallies(
    parents: Mapping[uuid.UUID, uuid.UUID | None], own: Mapping[uuid.UUID | None, Tally]
) -> dict[uuid.UUID, Tally]:
    """Each unit's tally with everything below it added."""
    subtrees = {unit_id: Tally() for unit_id in parents}
    for unit_id, tally in own.items():
        seen: set[uuid.UUID] = set()
        # Walk up to the root; `seen` guards against a cycle in bad data.
        while unit_id is not None and unit_id in subtrees and unit_id not in seen:
            seen.add(unit_id)
            subtrees[unit_id].add(tally)
            unit_id = parents[unit_id]
    return subtrees


def _metrics(
    tally: Tally, window_days: int, rates: Mapping[str, Decimal], currency: str
) -> Metrics:
    written = sum(
        (amount * rates[source] for source, amount in tally.write_offs.items()), Decimal(0)
    )
    average_headcount = tally.person_days / window_days
    return Metrics(
        headcount=tally.headcount,
        borrowers=tally.borrowers,
        overdue_borrowers=tally.overdue_borrowers,
        overdue_rate=_share(tally.overdue_borrowers, tally.borrowers),
        settled_advances=tally.settled,
        average_settlement_days=_share(tally.lag_days, tally.settled),
        closed_advances=tally.closed,
        written_off_advances=tally.written_off,
        write_off_rate=_share(tally.written_off, tally.closed),
        write_off_amount=Money.of(written, currency),
        leavers=tally.leavers,
        average_headcount=average_headcount,
        attrition_rate=_share(tally.leavers * window_days, tally.person_days),
    )


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclasses.dataclass(frozen=True)
class _Tested:
    unit_id: uuid.UUID
    metric: str
    test: str
    cases: int  # the unit's observations behind its value (people late, leavers, ...)
    unit_value: Fraction
    rest_value: Fraction
    p_value: float


def _compare_all(
    units: list[tuple[uuid.UUID, Tally, Tally, int]],
) -> dict[uuid.UUID, list[Comparison]]:
    """Test every unit on every metric it has data for, then adjust per metric."""
    tested: dict[str, list[_Tested]] = defaultdict(list)
    for unit_id, unit, rest, window_days in units:
        for found in _tests(unit_id, unit, rest, window_days):
            tested[found.metric].append(found)
    result: dict[uuid.UUID, list[Comparison]] = {unit_id: [] for unit_id, *_ in units}
    for metric in METRICS:
        family = tested[metric]
        if not family:
            continue
        adjusted = stats.false_discovery_control([t.p_value for t in family], method="bh")
        for found, q in zip(family, adjusted, strict=True):
            # Exact fractions until here, so 12/40 against 8/160 is a ratio of exactly 6.
            ratio = found.unit_value / found.rest_value if found.rest_value else None
            big = found.unit_value > 0 if ratio is None else ratio >= MIN_RATIO
            result[found.unit_id].append(
                Comparison(
                    metric=metric,
                    test=found.test,
                    unit_value=float(found.unit_value),
                    rest_value=float(found.rest_value),
                    ratio=None if ratio is None else float(ratio),
                    difference=float(found.unit_value - found.rest_value),
                    p_value=found.p_value,
                    adjusted_p_value=float(q),
                    flagged=bool(big and q <= ALPHA and found.cases >= MIN_CASES),
                )
            )
    return result


def _tests(unit_id: uuid.UUID, unit: Tally, rest: Tally, window_days: int) -> Iterable[_Tested]:
    """The one-sided tests a unit has data for: both sides need observations."""
    if unit.borrowers and rest.borrowers:
        yield _fisher(
            unit_id, "overdue_rate", unit.overdue_borrowers, unit.borrowers,
            rest.overdue_borrowers, rest.borrowers,
        )  # fmt: skip
    if unit.settled >= 2 and rest.settled >= 2:
        lag = _welch(unit, rest)
        if lag is not None:
            yield _Tested(unit_id, "settlement_lag", "welch_t", unit.settled, *lag)
    if unit.closed and rest.closed:
        yield _fisher(
            unit_id, "write_off_rate", unit.written_off, unit.closed,
            rest.written_off, rest.closed,
        )  # fmt: skip
    if unit.person_days and rest.person_days:
        # Exposure in person-years of the window: a full-year member counts 1.
        test = stats.poisson_means_test(
            unit.leavers, unit.person_days / window_days,
            rest.leavers, rest.person_days / window_days,
            alternative="greater",
        )  # fmt: skip
        yield _Tested(
            unit_id,
            "attrition_rate",
            "poisson_e_test",
            unit.leavers,
            Fraction(unit.leavers * window_days, unit.person_days),
            Fraction(rest.leavers * window_days, rest.person_days),
            _p(test.pvalue),
        )


def _fisher(
    unit_id: uuid.UUID, metric: str, hits: int, size: int, rest_hits: int, rest_size: int
) -> _Tested:
    table = [[hits, size - hits], [rest_hits, rest_size - rest_hits]]
    test = stats.fisher_exact(table, alternative="greater")
    return _Tested(
        unit_id,
        metric,
        "fisher_exact",
        hits,
        Fraction(hits, size),
        Fraction(rest_hits, rest_size),
        _p(test.pvalue),
    )


def _welch(unit: Tally, rest: Tally) -> tuple[Fraction, Fraction, float] | None:
    """Mean lags of both sides and the one-sided p-value of Welch's t-test, from sums."""
    sides = []
    for tally in (unit, rest):
        mean = tally.lag_days / tally.settled
        variance = (tally.lag_squares - tally.settled * mean * mean) / (tally.settled - 1)
        sides.append((mean, math.sqrt(max(variance, 0.0)), tally.settled))
    (unit_mean, unit_sd, unit_n), (rest_mean, rest_sd, rest_n) = sides
    if unit_sd == 0 and rest_sd == 0:
        return None  # no spread on either side: the t statistic is undefined
    test = stats.ttest_ind_from_stats(
        unit_mean, unit_sd, unit_n, rest_mean, rest_sd, rest_n,
        equal_var=False, alternative="greater",
    )  # fmt: skip
    return (
        Fraction(unit.lag_days, unit.settled),
        Fraction(rest.lag_days, rest.settled),
        _p(test.pvalue),
    )


def _p(value: Any) -> float:
    """A p-value as a float; an undefined one (no variation) counts as no evidence."""
    p = float(value)
    return 1.0 if math.isnan(p) else min(max(p, 0.0), 1.0)


def _year_before(day: dt.date) -> dt.date:
    """The same date a year earlier; 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)
