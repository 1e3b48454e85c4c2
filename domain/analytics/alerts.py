"""Risk thresholds and the alerts raised when a score rises into a band.

A tenant's thresholds split scores into bands: low below `medium`, medium from `medium`,
high from `high`. An alert is raised when a re-score puts an employee in a higher band
than their previous score did (no previous score counts as low): once per crossing, not
on every re-score. It stays open while the score stays in that band or above, and closes
when a re-score falls below its band; a later rise is a new crossing and a new alert. A
partial unique index allows one open alert per employee and band, so two concurrent
re-scores raise one.

HR users and the employee's manager are told in-app and by e-mail
(`domain.notifications`, written in bulk by `domain.analytics.notices`), under a key
naming the alert and the recipient.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Numeric,
    String,
    and_,
    any_,
    bindparam,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, clock
from domain.advances.chain import placements
from domain.analytics.models import RiskAlert
from domain.analytics.notices import notify_in_bulk
from domain.analytics.points import Scored, Thresholds, describe, formatted
from domain.errors import DomainError, NotFound
from domain.identity.actions import Viewer
from domain.identity.models import User
from domain.notifications import Draft, display_name, readers_of
from domain.organisation.queries import managers_of_positions
from domain.people.models import Employee
from domain.permissions import require_any_role
from domain.tenant_settings import get_setting, set_setting
from i18n import N_, translate
from tenants.binding import tenant_session

THRESHOLDS_KEY = "analytics.risk_thresholds"
# Who sees scores, factors and alerts.
RISK_READERS = ("admin", "hr")
BAND_RANK = {"low": 0, "medium": 1, "high": 2}
BAND_LABELS = {"low": N_("low"), "medium": N_("medium"), "high": N_("high")}
REASONS_IN_ALERT = 3
# Alerts notified at a time: telling them looks their employees up with one bind
# parameter each, and a statement takes at most 32,767.
NOTIFY_CHUNK = 5000


async def risk_thresholds(session: AsyncSession) -> Thresholds:
    stored = await get_setting(session, THRESHOLDS_KEY)
    return Thresholds(medium=Decimal(str(stored["medium"])), high=Decimal(str(stored["high"])))


def checked_thresholds(medium: Any, high: Any) -> Thresholds:
    """Thresholds from input: 0 < medium < high <= 100, in hundredths."""
    try:
        low_bound, high_bound = Decimal(str(medium)), Decimal(str(high))
    except InvalidOperation:
        raise DomainError(N_("A threshold is a number."), field="medium") from None
    for field, value in (("medium", low_bound), ("high", high_bound)):
        if not Decimal(0) < value <= Decimal(100) or value != value.quantize(Decimal("0.01")):
            raise DomainError(
                N_("A threshold is above 0 and at most 100, in hundredths."), field=field
            )
    if high_bound <= low_bound:
        raise DomainError(N_("The high threshold is above the medium one."), field="high")
    return Thresholds(medium=low_bound, high=high_bound)


async def set_risk_thresholds(actor: Viewer, medium: Any, high: Any) -> Thresholds:
    """Replace the tenant's thresholds (admin and hr). Stored scores keep their band;
    the next scoring uses the new thresholds."""
    require_any_role(actor, *RISK_READERS)
    thresholds = checked_thresholds(medium, high)
    values = {"medium": str(thresholds.medium), "high": str(thresholds.high)}
    async with tenant_session() as session:
        before = await risk_thresholds(session)
        await set_setting(session, THRESHOLDS_KEY, values)
        audit.record(
            session,
            actor_id=actor.id,
            action="risk.thresholds",
            entity_type="tenant_setting",
            entity_id=THRESHOLDS_KEY,
            before={"medium": str(before.medium), "high": str(before.high)},
            after=values,
        )
    return thresholds


@dataclasses.dataclass(frozen=True)
class Crossing:
    """A score that rose into `band`, with the stored score it came from."""

    scored: Scored
    risk_score_id: int | None
    threshold: Decimal


def crossings(scored: list[Scored], previous_bands: dict[uuid.UUID, str]) -> list[Scored]:
    """The scores in a higher band than the employee's previous score."""
    return [
        s
        for s in scored
        if s.band != "low"
        and BAND_RANK[s.band] > BAND_RANK[previous_bands.get(s.employee_id, "low")]
    ]


async def close_fallen(session: AsyncSession, scored: list[Scored], at: dt.datetime) -> int:
    """Close the open alerts of bands the new scores fell below: two statements."""
    below_high = [s.employee_id for s in scored if s.band != "high"]
    below_medium = [s.employee_id for s in scored if s.band == "low"]
    closed = 0
    for band, ids in (("high", below_high), ("medium", below_medium)):
        if not ids:
            continue
        result = await session.execute(
            update(RiskAlert)
            .where(
                RiskAlert.closed_at.is_(None),
                RiskAlert.band == band,
                RiskAlert.employee_id == any_(literal(ids)),
            )
            .values(closed_at=at)
            .execution_options(synchronize_session=False)
        )
        closed += result.rowcount  # type: ignore[attr-defined]
    return closed


async def close_gone(
    session: AsyncSession,
    asked: Sequence[uuid.UUID] | None,
    scored: set[uuid.UUID],
    at: dt.datetime,
) -> int:
    """Close the open alerts of employees asked about (None: the whole tenant) who were
    not scored: they have left, and their crossing is over."""
    if asked is None:
        gone = ~(RiskAlert.employee_id == any_(literal(list(scored)))) if scored else true()
    else:
        missing = [employee_id for employee_id in asked if employee_id not in scored]
        if not missing:
            return 0
        gone = RiskAlert.employee_id == any_(literal(missing))
    result = await session.execute(
        update(RiskAlert)
        .where(RiskAlert.closed_at.is_(None), gone)
        .values(closed_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def raise_alerts(
    session: AsyncSession, rising: list[Crossing], as_of: dt.date, at: dt.datetime
) -> list[Any]:
    """Insert an alert per crossing (an open one of the same band wins) and tell HR and
    the managers. Returns the alerts written (rows of id, employee_id, band, score and
    threshold).

    One statement whatever the number of crossings: a tenant's first nightly scoring may
    raise one for most employees, so each column goes in as one array.
    """
    if not rising:
        return []
    raised = list(
        await session.execute(
            _RAISE,
            {
                "employee_ids": [c.scored.employee_id for c in rising],
                "bands": [c.scored.band for c in rising],
                "scores": [c.scored.score for c in rising],
                "thresholds": [c.threshold for c in rising],
                "risk_score_ids": [c.risk_score_id for c in rising],
                "raised_at": at,
            },
        )
    )
    by_employee = {c.scored.employee_id: c.scored for c in rising}
    for start in range(0, len(raised), NOTIFY_CHUNK):
        await _notify(session, raised[start : start + NOTIFY_CHUNK], by_employee, as_of)
    return raised


_RAISE = text(
    """
    INSERT INTO risk_alerts (id, employee_id, band, score, threshold, risk_score_id, raised_at)
    SELECT gen_random_uuid(), c.employee_id, c.band, c.score, c.threshold, c.risk_score_id,
           :raised_at
      FROM unnest(:employee_ids, :bands, :scores, :thresholds, :risk_score_ids)
           AS c(employee_id, band, score, threshold, risk_score_id)
    ON CONFLICT (employee_id, band) WHERE closed_at IS NULL DO NOTHING
    RETURNING id, employee_id, band, score, threshold
    """
).bindparams(
    bindparam("employee_ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("bands", type_=ARRAY(String)),
    bindparam("scores", type_=ARRAY(Numeric(5, 2))),
    bindparam("thresholds", type_=ARRAY(Numeric(5, 2))),
    bindparam("risk_score_ids", type_=ARRAY(BigInteger)),
    bindparam("raised_at", type_=DateTime(timezone=True)),
)


async def _notify(
    session: AsyncSession,
    alerts: list[Any],
    scores: dict[uuid.UUID, Scored],
    as_of: dt.date,
) -> None:
    """HR users and each employee's manager: a handful of queries for all alerts, and
    the notifications and their e-mails in one statement."""
    employee_ids = {a.employee_id for a in alerts}
    hr = list(
        await session.scalars(
            select(User).where(
                or_(literal("hr") == any_(User.roles), literal("admin") == any_(User.roles)),
                User.is_active.is_(True),
            )
        )
    )
    managers = await _manager_users(session, employee_ids, as_of)
    everyone = {u.id: u for u in hr} | {u.id: u for us in managers.values() for u in us}
    readers = await readers_of(session, list(everyone.values()))
    employees = {
        e.id: e
        for e in await session.scalars(select(Employee).where(Employee.id.in_(employee_ids)))
    }
    hr_ids = {u.id for u in hr}
    users_of_employee: dict[uuid.UUID | None, set[uuid.UUID]] = {}
    for user in everyone.values():
        users_of_employee.setdefault(user.employee_id, set()).add(user.id)
    drafts = []
    for alert in alerts:
        recipients = hr_ids | {u.id for u in managers.get(alert.employee_id, [])}
        # The employee is never told about their own score.
        recipients -= users_of_employee.get(alert.employee_id, set())
        reasons = _reasons(scores[alert.employee_id])
        for user_id in sorted(recipients):
            reader = readers[user_id]
            locale, format_locale = reader.locale, reader.format_locale
            params = {
                "employee": display_name(employees[alert.employee_id], locale),
                "band": translate(BAND_LABELS[alert.band], locale),
                "score": _number(alert.score, format_locale),
                "threshold": _number(alert.threshold, format_locale),
                "reasons": " ".join(_reason(*r, locale, format_locale) for r in reasons),
            }
            key = f"risk.alert:{alert.id}:{user_id}"
            data = {"alert_id": alert.id, "employee_id": alert.employee_id}
            drafts.append(Draft(reader, "risk.alert", key, params, data))
    await notify_in_bulk(session, drafts)


def _reasons(scored: Scored) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    """The factors an alert names (of the first few, those that raise the score), as
    (name, stored parameters) that `_reason` can cache."""
    found = []
    for factor in scored.factors[:REASONS_IN_ALERT]:
        if factor.contribution > 0:
            stored = factor.as_json()
            found.append((stored["name"], tuple(stored["params"].items())))
    return found


@functools.lru_cache(maxsize=16384)
def _reason(
    name: str, params: tuple[tuple[str, str | None], ...], locale: str, format_locale: str
) -> str:
    """A reason's sentence; cached, as thousands of alerts share a few hundred reasons."""
    return describe({"name": name, "params": dict(params)}, locale, format_locale)


def _number(value: Decimal, locale: str) -> str:
    return formatted(str(value), locale)


async def _manager_users(
    session: AsyncSession, employee_ids: set[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, list[User]]:
    places = await placements(session, employee_ids, day)
    positions = {p.position_id for p in places.values() if p.position_id is not None}
    managers = await managers_of_positions(session, positions, day)
    manager_of = {
        employee_id: managers[place.position_id]
        for employee_id, place in places.items()
        if place.position_id in managers
    }
    if not manager_of:
        return {}
    users = list(
        await session.scalars(
            select(User).where(
                User.employee_id.in_(set(manager_of.values())), User.is_active.is_(True)
            )
        )
    )
    by_employee: dict[uuid.UUID, list[User]] = {}
    for employee_id, manager_id in manager_of.items():
        by_employee[employee_id] = [u for u in users if u.employee_id == manager_id]
    return by_employee


async def acknowledge_risk_alert(actor: Viewer, alert_id: uuid.UUID) -> RiskAlert:
    """Mark an alert as seen (admin and hr); a second acknowledgement is refused."""
    require_any_role(actor, *RISK_READERS)
    async with tenant_session() as session:
        alert = await session.get(RiskAlert, alert_id, with_for_update=True)
        if alert is None:
            raise NotFound(N_("The risk alert does not exist."), field="alertId")
        if alert.acknowledged_at is not None:
            raise DomainError(N_("The risk alert has already been acknowledged."), field="alertId")
        alert.acknowledged_by = actor.id
        alert.acknowledged_at = clock.now()
        audit.record(
            session,
            actor_id=actor.id,
            action="risk.alert.acknowledge",
            entity_type="risk_alert",
            entity_id=alert.id,
            after={"employee_id": alert.employee_id, "band": alert.band},
        )
    return alert


async def list_alerts(
    session: AsyncSession,
    viewer: Viewer,
    *,
    first: int,
    after: uuid.UUID | None,
    open_only: bool = False,
    acknowledged: bool | None = None,
) -> tuple[list[RiskAlert], bool]:
    """A page of alerts, newest first, keyset-paginated on (raised_at, id)."""
    require_any_role(viewer, *RISK_READERS)
    if not 1 <= first <= 100:
        raise DomainError(N_("Ask for 1 to {count} rows at a time."), field="first", count=100)
    query = select(RiskAlert)
    if open_only:
        query = query.where(RiskAlert.closed_at.is_(None))
    if acknowledged is not None:
        seen = RiskAlert.acknowledged_at.is_not(None)
        query = query.where(seen if acknowledged else ~seen)
    if after is not None:
        anchor = await session.get(RiskAlert, after)
        if anchor is not None:
            query = query.where(
                or_(
                    RiskAlert.raised_at < anchor.raised_at,
                    and_(RiskAlert.raised_at == anchor.raised_at, RiskAlert.id < anchor.id),
                )
            )
    rows = list(
        await session.scalars(
            query.order_by(RiskAlert.raised_at.desc(), RiskAlert.id.desc()).limit(first + 1)
        )
    )
    return rows[:first], len(rows) > first
