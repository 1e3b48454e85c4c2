"""Per-employee features as of a date, for the whole tenant in a few set-based queries.

Everything is read as it stood on the as-of date, so a score can be reproduced later:

- the employee's state (status, org unit, job level, salary) is the period in force that
  day, and events count only when they take effect on or before it;
- an advance counts only when it was requested before the end of that day on its
  branch's local calendar, a ledger entry only when it was recorded before then, and a
  reversal cancels its entry only when it too was recorded before then;
- windows ("in the last 12 months") are the 365 days ending on the as-of date.

Five queries compute every employee's features (people, manager changes, the branches'
calendars, advances, expense claims), plus one per currency pair to convert, whatever the
number of employees.

Expense habits are read from the claims that settle advances: each claim line is a
receipt, missing when it names no receipt reference, late when its claim was submitted
after the advance's expected settlement date (on the branch's calendar). A claim counts
when it was submitted in the window and before the end of the as-of day, unless every
ledger entry it made had been reversed by then.

NOTE: employment events are judged by their effective date, as the periods are. An event
recorded later but effective earlier (a backdated correction) does change the past.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Result, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Date, DateTime

from domain.advances.rates import rate_on
from domain.errors import DomainError
from domain.organisation.models import Branch
from i18n import N_

WINDOW_DAYS = 365
# Salary-change and transfer counts look two years back: both are rare events.
LONG_WINDOW_DAYS = 730
# Monthly salary from an hourly one: 40 hours a week, 52 weeks, 12 months.
HOURS_PER_MONTH = Decimal(40 * 52) / 12
DAYS_PER_YEAR = Decimal("365.25")
HUNDREDTH = Decimal("0.01")
TENTH = Decimal("0.1")
NO_CLAIMS = (0, 0, 0)


# What each feature says about one employee, for the factors of a trained model's answer.
SENTENCES = {
    "job_level_rank": N_("Job level rank is {value}."),
    "pay_band_position": N_("Salary sits at {value} of the pay band (0 minimum, 1 maximum)."),
    "salary_changes_24m": N_("{value} salary changes in 24 months."),
    "last_rating": N_("Last performance rating is {value}."),
    "rating_trend": N_("Performance rating moved by {value} since the review before."),
    "rewards_12m": N_("{value} rewards in 12 months."),
    "penalties_12m": N_("{value} penalties in 12 months."),
    "transfers_24m": N_("{value} transfers in 24 months."),
    "manager_changes_12m": N_("{value} manager changes in 12 months."),
    "advances_12m": N_("{value} advances in 12 months."),
    "rejections_12m": N_("{value} rejected advance requests in 12 months."),
    "write_offs_12m": N_("{value} advance write-offs in 12 months."),
    "tenure_years": N_("{value} years at the company."),
    "years_since_promotion": N_("{value} years since the last promotion (or the hire)."),
    "leave_days_12m": N_("{value} days on leave in 12 months."),
    "advances_total": N_("{value} advances in all."),
    "outstanding_to_salary": N_("Advance outstanding is {value}x monthly salary."),
    "max_overdue_days": N_("An advance is {value} days overdue."),
    "average_settlement_days": N_("Advances are settled {value} days after payment on average."),
    "claim_lines_12m": N_("{value} expense lines claimed in 12 months."),
    "missing_receipts_12m": N_("{value} expense lines without a receipt in 12 months."),
    "late_receipts_12m": N_("{value} receipts handed in after the settlement date in 12 months."),
    "org_unit_id": N_("The org unit they work in."),
    "status": N_("Their status ({value})."),
}


# NOTE: slots and not frozen: a frozen dataclass sets each of its 30 fields through
# object.__setattr__, which costs a nightly run of 100,000 employees about a second.
@dataclasses.dataclass(slots=True)
class Features:
    """What the scoring models read of one employee on one day (treat as read-only)."""

    employee_id: uuid.UUID
    as_of: dt.date
    status: str
    branch_id: uuid.UUID | None
    org_unit_id: uuid.UUID | None
    job_level_rank: int | None
    tenure_years: Decimal
    years_since_promotion: Decimal
    monthly_salary: Decimal | None
    salary_currency: str | None
    pay_band_position: Decimal | None  # 0 at the band's minimum, 1 at its maximum
    salary_changes_24m: int
    last_rating: Decimal | None
    rating_trend: Decimal | None  # last rating minus the one before
    rewards_12m: int
    penalties_12m: int
    transfers_24m: int
    manager_changes_12m: int
    leave_days_12m: int
    advances_total: int
    advances_12m: int
    outstanding: Decimal  # in the salary currency (the advances' own when no salary)
    outstanding_to_salary: Decimal | None
    max_overdue_days: int
    average_settlement_days: Decimal | None
    rejections_12m: int
    write_offs_12m: int
    claim_lines_12m: int  # expense claim lines (receipts) submitted
    missing_receipts_12m: int  # of them, without a receipt reference
    late_receipts_12m: int  # of them, submitted after the advance's settlement date

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def features_as_of(
    session: AsyncSession,
    as_of: dt.date,
    employee_ids: Sequence[uuid.UUID] | None = None,
) -> dict[uuid.UUID, Features]:
    """Features of every employee not gone on `as_of` (or of `employee_ids` among them)."""
    ids = list(employee_ids) if employee_ids is not None else None
    people = await _people(session, as_of, ids)
    if not people:
        return {}
    managers = await _manager_changes(session, as_of, ids)
    cutoffs = await branch_cutoffs(session, as_of)
    advances = await _advances(session, as_of, cutoffs, ids)
    claims = await _expense_habits(session, cutoffs, ids)
    rates = await _rates(session, as_of, people, advances)

    found = {}
    # Rows are dropped as they are turned into features: a whole tenant's rows and its
    # features are never held at once.
    while people:
        employee_id, row = people.popitem()
        found[employee_id] = _features(
            employee_id,
            as_of,
            row,
            managers.get(employee_id, 0),
            advances.pop(employee_id, {}),
            claims.pop(employee_id, NO_CLAIMS),
            rates,
        )
    return found


async def branch_cutoffs(session: AsyncSession, as_of: dt.date) -> dict[uuid.UUID, dt.datetime]:
    """The instant each branch's local `as_of` ends: what is recorded from then is unseen."""
    next_day = as_of + dt.timedelta(days=1)
    rows = await session.execute(select(Branch.id, Branch.time_zone))
    return {
        branch_id: dt.datetime.combine(next_day, dt.time(), tzinfo=ZoneInfo(zone))
        for branch_id, zone in rows
    }


def _employee_filter(column: str, ids: list[uuid.UUID] | None) -> str:
    return f"AND {column} = ANY(:ids)" if ids is not None else ""


def _params(as_of: dt.date, ids: list[uuid.UUID] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "as_of": as_of,
        "window_start": as_of - dt.timedelta(days=WINDOW_DAYS),
        "long_window_start": as_of - dt.timedelta(days=LONG_WINDOW_DAYS),
    }
    if ids is not None:
        params["ids"] = ids
    return params


def _bound(statement: str, ids: list[uuid.UUID] | None) -> Any:
    # Typed parameters: asyncpg then sends `$1::DATE`, and `:as_of + 1` is date arithmetic.
    dates = ("as_of", "window_start", "long_window_start")
    query = text(statement).bindparams(
        *(bindparam(name, type_=Date) for name in dates if f":{name}" in statement)
    )
    if ids is not None:
        query = query.bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
    return query


def _named_tuples(result: Result[Any]) -> list[Any]:
    """The result's rows as named tuples of its columns.

    NOTE: SQLAlchemy's Row finds a column by name in about half a microsecond, a named
    tuple in a twentieth of that; a whole tenant's features read some three million.
    """
    shape = collections.namedtuple("Row", list(result.keys()))  # type: ignore[misc]
    return [shape._make(row) for row in result]


async def _people(
    session: AsyncSession, as_of: dt.date, ids: list[uuid.UUID] | None
) -> dict[uuid.UUID, Any]:
    """State on the day, event counts, reviews, rewards and leave: one query."""
    # Windows are half-open on the left: (start, as_of]. Leave days count the days of
    # that window covered by an on_leave period. In employee order: a nightly scoring
    # then stores its scores in the order of their index, a fifth cheaper than at random.
    statement = f"""
        WITH population AS (
          SELECT p.employee_id, p.status, p.branch_id, p.org_unit_id, p.job_level_id,
                 p.salary_amount, p.salary_currency, p.salary_period, e.hire_date
            FROM employee_periods p JOIN employees e ON e.id = p.employee_id
           WHERE p.valid_from <= :as_of AND (p.valid_to IS NULL OR p.valid_to > :as_of)
             AND p.status <> 'terminated' {_employee_filter("p.employee_id", ids)}
        ),
        events AS (
          SELECT employee_id,
                 max(effective_date) FILTER (WHERE kind = 'promotion') AS last_promotion,
                 count(*) FILTER (
                   WHERE kind = 'salary_change' AND effective_date > :long_window_start
                 ) AS salary_changes,
                 count(*) FILTER (
                   WHERE kind = 'transfer' AND effective_date > :long_window_start
                 ) AS transfers
            FROM employment_events
           WHERE effective_date <= :as_of {_employee_filter("employee_id", ids)}
           GROUP BY employee_id
        ),
        ranked_reviews AS (
          SELECT employee_id, rating,
                 row_number() OVER (
                   PARTITION BY employee_id ORDER BY reviewed_on DESC, created_at DESC, id
                 ) AS recency
            FROM performance_reviews
           WHERE reviewed_on <= :as_of {_employee_filter("employee_id", ids)}
        ),
        reviews AS (
          SELECT employee_id,
                 max(rating) FILTER (WHERE recency = 1) AS last_rating,
                 max(rating) FILTER (WHERE recency = 2) AS previous_rating
            FROM ranked_reviews WHERE recency <= 2
           GROUP BY employee_id
        ),
        sanctions AS (
          SELECT employee_id,
                 count(*) FILTER (WHERE kind = 'reward') AS rewards,
                 count(*) FILTER (WHERE kind = 'penalty') AS penalties
            FROM rewards_penalties
           WHERE occurred_on > :window_start AND occurred_on <= :as_of
                 {_employee_filter("employee_id", ids)}
           GROUP BY employee_id
        ),
        leave AS (
          SELECT employee_id,
                 sum(
                   least(coalesce(valid_to, :as_of + 1), :as_of + 1)
                   - greatest(valid_from, :window_start + 1)
                 ) AS days
            FROM employee_periods
           WHERE status = 'on_leave' AND valid_from <= :as_of
             AND (valid_to IS NULL OR valid_to > :window_start + 1)
             {_employee_filter("employee_id", ids)}
           GROUP BY employee_id
        )
        SELECT pop.employee_id, pop.status, pop.branch_id, pop.org_unit_id, pop.hire_date,
               pop.salary_amount, pop.salary_currency, pop.salary_period,
               jl.rank, jl.pay_min, jl.pay_max, jl.pay_currency,
               ev.last_promotion, ev.salary_changes, ev.transfers,
               rv.last_rating, rv.previous_rating, sn.rewards, sn.penalties,
               lv.days AS leave_days
          FROM population pop
          LEFT JOIN job_levels jl ON jl.id = pop.job_level_id
          LEFT JOIN events ev ON ev.employee_id = pop.employee_id
          LEFT JOIN reviews rv ON rv.employee_id = pop.employee_id
          LEFT JOIN sanctions sn ON sn.employee_id = pop.employee_id
          LEFT JOIN leave lv ON lv.employee_id = pop.employee_id
         ORDER BY pop.employee_id
    """
    rows = await session.execute(_bound(statement, ids), _params(as_of, ids))
    return {row.employee_id: row for row in _named_tuples(rows)}


async def _manager_changes(
    session: AsyncSession, as_of: dt.date, ids: list[uuid.UUID] | None
) -> dict[uuid.UUID, int]:
    """How often each employee's manager changed in the window: one query.

    A change is either the employee moving to a position that reports elsewhere, or
    someone new taking the position the employee reports to.

    TODO(#6): a vacant reports-to position passes management further up the line; such
    changes higher up are not counted.
    """
    # For a few employees, only the people who ever held a position they report to.
    holders_filter = (
        """AND employee_id IN (
             SELECT employee_id FROM employee_periods
              WHERE position_id IN (SELECT reports_to_id FROM own)
           )"""
        if ids is not None
        else ""
    )
    statement = f"""
        WITH own AS (
          SELECT p.employee_id, p.valid_from, p.valid_to, pos.reports_to_id,
                 lag(pos.reports_to_id) OVER w AS previous_reports_to,
                 lag(p.valid_from) OVER w AS previous_from
            FROM employee_periods p LEFT JOIN positions pos ON pos.id = p.position_id
           WHERE p.valid_from <= :as_of {_employee_filter("p.employee_id", ids)}
          WINDOW w AS (PARTITION BY p.employee_id ORDER BY p.valid_from)
        ),
        moves AS (
          SELECT employee_id, count(*) AS moves FROM own
           WHERE previous_from IS NOT NULL AND valid_from > :window_start
             AND reports_to_id IS DISTINCT FROM previous_reports_to
           GROUP BY employee_id
        ),
        holders AS (
          SELECT employee_id, position_id, valid_from,
                 lag(position_id) OVER (
                   PARTITION BY employee_id ORDER BY valid_from
                 ) AS previous_position
            FROM employee_periods
           WHERE valid_from <= :as_of AND status <> 'terminated' {holders_filter}
        ),
        arrivals AS (
          SELECT o.employee_id, count(*) AS arrivals
            FROM own o
            JOIN holders h
              ON h.position_id = o.reports_to_id
             AND h.previous_position IS DISTINCT FROM h.position_id
             AND h.employee_id <> o.employee_id
             AND h.valid_from > greatest(o.valid_from, :window_start)
             AND h.valid_from < coalesce(o.valid_to, :as_of + 1)
             AND h.valid_from <= :as_of
           GROUP BY o.employee_id
        )
        SELECT coalesce(m.employee_id, a.employee_id) AS employee_id,
               coalesce(m.moves, 0) + coalesce(a.arrivals, 0) AS changes
          FROM moves m FULL JOIN arrivals a ON a.employee_id = m.employee_id
    """
    params = _params(as_of, ids)
    del params["long_window_start"]
    rows = await session.execute(_bound(statement, ids), params)
    return {row.employee_id: int(row.changes) for row in rows}


async def _advances(
    session: AsyncSession,
    as_of: dt.date,
    cutoffs: dict[uuid.UUID, dt.datetime],
    ids: list[uuid.UUID] | None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Advance history per employee and currency as of each branch's end of day: one query."""
    if not cutoffs:
        return {}
    # An entry and its reversal cancel out, so both are left out once the reversal is
    # visible; a write-off reversed by then is no write-off.
    statement = f"""
        WITH cutoffs AS (
          SELECT * FROM unnest(:branch_ids, :cutoffs) AS c(branch_id, cutoff)
        ),
        visible AS (
          SELECT a.id, a.employee_id, a.currency, a.status, a.decided_at, a.created_at,
                 a.expected_settlement_date, c.cutoff
            FROM advances a JOIN cutoffs c ON c.branch_id = a.branch_id
           WHERE a.created_at < c.cutoff {_employee_filter("a.employee_id", ids)}
        ),
        per_advance AS (
          SELECT v.id, v.employee_id, v.currency, v.status, v.decided_at, v.created_at,
                 v.expected_settlement_date, v.cutoff,
                 coalesce(sum(l.amount), 0) AS owed,
                 min(l.occurred_on) FILTER (WHERE l.kind = 'disbursement') AS disbursed_on,
                 max(l.occurred_on) AS last_movement_on,
                 bool_or(l.kind IN ('write_off', 'waiver')) AS closed_by_authority,
                 max(l.recorded_at) FILTER (WHERE l.kind = 'write_off') AS written_off_at
            FROM visible v
            LEFT JOIN ledger_entries l
              ON l.advance_id = v.id AND l.recorded_at < v.cutoff AND l.kind <> 'reversal'
             AND NOT EXISTS (
                   SELECT 1 FROM ledger_entries r
                    WHERE r.reverses_id = l.id AND r.recorded_at < v.cutoff
                 )
           GROUP BY v.id, v.employee_id, v.currency, v.status, v.decided_at, v.created_at,
                    v.expected_settlement_date, v.cutoff
        )
        SELECT employee_id, currency,
               count(*) AS advances_total,
               count(*) FILTER (
                 WHERE created_at >= cutoff - interval '{WINDOW_DAYS} days'
               ) AS advances_12m,
               coalesce(sum(owed) FILTER (
                 WHERE disbursed_on IS NOT NULL AND owed > 0
               ), 0) AS outstanding,
               coalesce(max(:as_of - expected_settlement_date) FILTER (
                 WHERE disbursed_on IS NOT NULL AND owed > 0
                   AND expected_settlement_date < :as_of
               ), 0) AS max_overdue_days,
               sum(last_movement_on - disbursed_on) FILTER (
                 WHERE disbursed_on IS NOT NULL AND owed <= 0 AND NOT closed_by_authority
               ) AS settlement_days,
               count(*) FILTER (
                 WHERE disbursed_on IS NOT NULL AND owed <= 0 AND NOT closed_by_authority
               ) AS settled,
               count(*) FILTER (
                 WHERE status = 'rejected' AND decided_at < cutoff
                   AND decided_at >= cutoff - interval '{WINDOW_DAYS} days'
               ) AS rejections_12m,
               count(*) FILTER (
                 WHERE written_off_at >= cutoff - interval '{WINDOW_DAYS} days'
               ) AS write_offs_12m
          FROM per_advance
         GROUP BY employee_id, currency
    """
    query = text(statement).bindparams(
        bindparam("as_of", type_=Date),
        bindparam("branch_ids", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("cutoffs", type_=ARRAY(DateTime(timezone=True))),
    )
    if ids is not None:
        query = query.bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
    params = {"as_of": as_of, "branch_ids": list(cutoffs), "cutoffs": list(cutoffs.values())}
    if ids is not None:
        params["ids"] = ids
    found: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    for row in _named_tuples(await session.execute(query, params)):
        found[row.employee_id][row.currency] = row
    return found


async def _expense_habits(
    session: AsyncSession,
    cutoffs: dict[uuid.UUID, dt.datetime],
    ids: list[uuid.UUID] | None,
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """Claim lines, missing receipts and late receipts per employee: one query."""
    if not cutoffs:
        return {}
    # Claims are reached from their advance and lines from their claim through the
    # indexes of migration t0010, so one employee's re-score reads only their rows.
    statement = f"""
        WITH cutoffs AS (
          SELECT * FROM unnest(:branch_ids, :cutoffs) AS c(branch_id, cutoff)
        ),
        claims AS (
          SELECT c.id, a.employee_id,
                 (c.submitted_at AT TIME ZONE b.time_zone)::date
                   > a.expected_settlement_date AS late
            FROM advances a
            JOIN cutoffs k ON k.branch_id = a.branch_id
            JOIN branches b ON b.id = a.branch_id
            JOIN expense_claims c ON c.advance_id = a.id
           WHERE c.submitted_at < k.cutoff
             AND c.submitted_at >= k.cutoff - interval '{WINDOW_DAYS} days'
             AND EXISTS (
                   SELECT 1 FROM ledger_entries e
                    WHERE e.advance_id = a.id AND e.claim_id = c.id
                      AND e.kind <> 'reversal' AND e.recorded_at < k.cutoff
                      AND NOT EXISTS (
                            SELECT 1 FROM ledger_entries r
                             WHERE r.reverses_id = e.id AND r.recorded_at < k.cutoff
                          )
                 )
             {_employee_filter("a.employee_id", ids)}
        )
        SELECT cl.employee_id, count(*) AS lines,
               count(*) FILTER (WHERE l.receipt_reference IS NULL) AS missing,
               count(*) FILTER (WHERE cl.late) AS late
          FROM claims cl JOIN expense_claim_lines l ON l.claim_id = cl.id
         GROUP BY cl.employee_id
    """
    query = text(statement).bindparams(
        bindparam("branch_ids", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("cutoffs", type_=ARRAY(DateTime(timezone=True))),
    )
    params: dict[str, Any] = {"branch_ids": list(cutoffs), "cutoffs": list(cutoffs.values())}
    if ids is not None:
        query = query.bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
        params["ids"] = ids
    rows = await session.execute(query, params)
    return {employee_id: (lines, missing, late) for employee_id, lines, missing, late in rows}


async def _rates(
    session: AsyncSession,
    as_of: dt.date,
    people: dict[uuid.UUID, Any],
    advances: dict[uuid.UUID, dict[str, Any]],
) -> dict[tuple[str, str], Decimal | None]:
    """Rates for every (advance currency, salary currency) pair met: a query per pair."""
    pairs = set()
    for employee_id, by_currency in advances.items():
        salary_currency = people[employee_id].salary_currency if employee_id in people else None
        for currency in by_currency:
            if salary_currency and currency != salary_currency:
                pairs.add((currency, salary_currency))
    rates: dict[tuple[str, str], Decimal | None] = {}
    for base, quote in sorted(pairs):
        try:
            rates[(base, quote)] = (await rate_on(session, base, quote, as_of))[0]
        except DomainError:
            rates[(base, quote)] = None  # unknown: that currency's money is left out
    return rates


def _features(
    employee_id: uuid.UUID,
    as_of: dt.date,
    row: Any,
    manager_changes: int,
    advances: dict[str, Any],
    claims: tuple[int, int, int],
    rates: dict[tuple[str, str], Decimal | None],
) -> Features:
    monthly = _monthly(row.salary_amount, row.salary_period)
    salary_currency = row.salary_currency
    outstanding = Decimal(0)
    total = recent = rejections = write_offs = overdue = settlement_days = settled = 0
    for currency, found in advances.items():
        target = salary_currency or currency
        rate = Decimal(1) if currency == target else rates.get((currency, target))
        if rate is not None:
            outstanding += found.outstanding * rate
        total += found.advances_total
        recent += found.advances_12m
        rejections += found.rejections_12m
        write_offs += found.write_offs_12m
        overdue = max(overdue, found.max_overdue_days)
        settlement_days += found.settlement_days or 0
        settled += found.settled
    promoted_on = row.last_promotion or row.hire_date
    return Features(
        employee_id=employee_id,
        as_of=as_of,
        status=row.status,
        branch_id=row.branch_id,
        org_unit_id=row.org_unit_id,
        job_level_rank=row.rank,
        tenure_years=_years(row.hire_date, as_of),
        years_since_promotion=_years(promoted_on, as_of),
        monthly_salary=monthly,
        salary_currency=salary_currency,
        pay_band_position=_band_position(monthly, salary_currency, row),
        salary_changes_24m=int(row.salary_changes or 0),
        last_rating=row.last_rating,
        rating_trend=(
            row.last_rating - row.previous_rating
            if row.last_rating is not None and row.previous_rating is not None
            else None
        ),
        rewards_12m=int(row.rewards or 0),
        penalties_12m=int(row.penalties or 0),
        transfers_24m=int(row.transfers or 0),
        manager_changes_12m=manager_changes,
        leave_days_12m=int(row.leave_days or 0),
        advances_total=total,
        advances_12m=recent,
        outstanding=outstanding.quantize(HUNDREDTH),
        outstanding_to_salary=((outstanding / monthly).quantize(HUNDREDTH) if monthly else None),
        max_overdue_days=overdue,
        average_settlement_days=(
            (Decimal(settlement_days) / settled).quantize(TENTH) if settled else None
        ),
        rejections_12m=rejections,
        write_offs_12m=write_offs,
        claim_lines_12m=claims[0],
        missing_receipts_12m=claims[1],
        late_receipts_12m=claims[2],
    )


def _monthly(amount: Decimal | None, period: str | None) -> Decimal | None:
    if amount is None or amount <= 0:
        return None
    match period:
        case "year":
            return amount / 12
        case "hour":
            return amount * HOURS_PER_MONTH
        case _:
            return amount


@functools.lru_cache(maxsize=4096)
def _years(since: dt.date, as_of: dt.date) -> Decimal:
    """Years, to the hundredth; cached, as many people share a hire date."""
    return (Decimal(max((as_of - since).days, 0)) / DAYS_PER_YEAR).quantize(Decimal("0.01"))


def _band_position(monthly: Decimal | None, currency: str | None, row: Any) -> Decimal | None:
    """Where the salary sits in the job level's band (pay bands are monthly); None when the
    band is unknown or in another currency."""
    if monthly is None or row.pay_min is None or row.pay_max is None:
        return None
    if row.pay_currency != currency or row.pay_max <= row.pay_min:
        return None
    position: Decimal = (monthly - row.pay_min) / (row.pay_max - row.pay_min)
    return position.quantize(Decimal("0.01"))
