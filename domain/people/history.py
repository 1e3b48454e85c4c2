"""Deriving an employee's record from their effective-dated events.

The events are the truth; the periods are what they add up to, rebuilt whenever an event
is recorded. Replaying refuses histories that make no sense (a leave that never started,
a change before the hire), so a bad event never reaches the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal

from domain.errors import DomainError
from domain.people.models import EmployeePeriod, EmploymentEvent
from i18n import N_


@dataclasses.dataclass(frozen=True)
class PositionFacts:
    org_unit_id: uuid.UUID
    job_level_id: uuid.UUID | None


@dataclasses.dataclass
class State:
    status: str
    branch_id: uuid.UUID | None = None
    position_id: uuid.UUID | None = None
    org_unit_id: uuid.UUID | None = None
    job_level_id: uuid.UUID | None = None
    salary_amount: Decimal | None = None
    salary_currency: str | None = None
    salary_period: str | None = None


def replay(
    events: Iterable[EmploymentEvent], positions: Mapping[uuid.UUID, PositionFacts]
) -> list[tuple[dt.date, dt.date | None, State]]:
    """Fold events (in effective-date, then recording order) into [from, to) periods."""
    ordered = sorted(events, key=lambda e: (e.effective_date, e.seq or 0))
    periods: list[tuple[dt.date, dt.date | None, State]] = []
    state: State | None = None
    for event in ordered:
        state = _apply(state, event, positions)
        snapshot = dataclasses.replace(state)
        if periods and periods[-1][0] == event.effective_date:
            periods[-1] = (event.effective_date, None, snapshot)
        else:
            if periods:
                start, _, previous = periods[-1]
                periods[-1] = (start, event.effective_date, previous)
            periods.append((event.effective_date, None, snapshot))
    return periods


def _apply(
    state: State | None, event: EmploymentEvent, positions: Mapping[uuid.UUID, PositionFacts]
) -> State:
    on = event.effective_date
    if event.kind == "hire":
        if state is not None:
            raise DomainError(N_("The employee is already hired."), field="effectiveDate")
        state = State(status=event.status or "active")
        _place(state, event, positions)
        _pay(state, event)
        return state
    if state is None:
        raise DomainError(
            N_("No change can take effect before the hire date ({date})."),
            field="effectiveDate",
            date=on.isoformat(),
        )
    if state.status == "terminated":
        raise DomainError(
            N_("No change can take effect after the employee has left."), field="effectiveDate"
        )
    state = dataclasses.replace(state)
    match event.kind:
        case "transfer" | "promotion":
            _place(state, event, positions)
        case "salary_change":
            _pay(state, event)
        case "leave_start":
            if state.status != "active":
                raise DomainError(
                    N_("Only an active employee can start a leave."), field="effectiveDate"
                )
            state.status = "on_leave"
        case "leave_end":
            if state.status != "on_leave":
                raise DomainError(N_("The employee is not on leave then."), field="effectiveDate")
            state.status = "active"
        case "status_change":
            state.status = event.status or state.status
        case "termination":
            state.status = "terminated"
    return state


def _place(
    state: State, event: EmploymentEvent, positions: Mapping[uuid.UUID, PositionFacts]
) -> None:
    if event.branch_id is not None:
        state.branch_id = event.branch_id
    if event.position_id is not None:
        facts = positions[event.position_id]
        state.position_id = event.position_id
        state.org_unit_id = facts.org_unit_id
        state.job_level_id = facts.job_level_id
    elif event.org_unit_id is not None:
        state.org_unit_id = event.org_unit_id
    if event.job_level_id is not None:
        state.job_level_id = event.job_level_id


def _pay(state: State, event: EmploymentEvent) -> None:
    if event.salary_amount is not None:
        state.salary_amount = event.salary_amount
        state.salary_currency = event.salary_currency
        state.salary_period = event.salary_period


def to_rows(
    employee_id: uuid.UUID, periods: list[tuple[dt.date, dt.date | None, State]]
) -> list[EmployeePeriod]:
    return [
        EmployeePeriod(
            employee_id=employee_id,
            valid_from=start,
            valid_to=end,
            **dataclasses.asdict(state),
        )
        for start, end, state in periods
    ]
