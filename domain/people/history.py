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
from typing import Any, Protocol

from domain.errors import DomainError
from domain.people.models import EmployeePeriod
from i18n import N_


@dataclasses.dataclass(frozen=True)
class PositionFacts:
    org_unit_id: uuid.UUID
    job_level_id: uuid.UUID | None


class EventFacts(Protocol):
    """What replaying reads of an event: a stored `EmploymentEvent` or an import's draft."""

    @property
    def kind(self) -> str: ...
    @property
    def effective_date(self) -> dt.date: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def branch_id(self) -> uuid.UUID | None: ...
    @property
    def position_id(self) -> uuid.UUID | None: ...
    @property
    def org_unit_id(self) -> uuid.UUID | None: ...
    @property
    def job_level_id(self) -> uuid.UUID | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def salary_amount(self) -> Decimal | None: ...
    @property
    def salary_currency(self) -> str | None: ...
    @property
    def salary_period(self) -> str | None: ...


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
    events: Iterable[EventFacts], positions: Mapping[uuid.UUID, PositionFacts]
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
    state: State | None, event: EventFacts, positions: Mapping[uuid.UUID, PositionFacts]
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


def _place(state: State, event: EventFacts, positions: Mapping[uuid.UUID, PositionFacts]) -> None:
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


def _pay(state: State, event: EventFacts) -> None:
    if event.salary_amount is not None:
        state.salary_amount = event.salary_amount
        state.salary_currency = event.salary_currency
        state.salary_period = event.salary_period


def to_rows(
    employee_id: uuid.UUID, periods: list[tuple[dt.date, dt.date | None, State]]
) -> list[EmployeePeriod]:
    return [EmployeePeriod(**values) for values in period_values(employee_id, periods)]


def period_values(
    employee_id: uuid.UUID, periods: list[tuple[dt.date, dt.date | None, State]]
) -> list[dict[str, Any]]:
    """The `employee_periods` rows of `periods` as plain values, for bulk inserts."""
    return [
        {
            "employee_id": employee_id,
            "valid_from": start,
            "valid_to": end,
            "status": state.status,
            "branch_id": state.branch_id,
            "position_id": state.position_id,
            "org_unit_id": state.org_unit_id,
            "job_level_id": state.job_level_id,
            "salary_amount": state.salary_amount,
            "salary_currency": state.salary_currency,
            "salary_period": state.salary_period,
        }
        for start, end, state in periods
    ]
