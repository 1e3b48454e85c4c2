"""Scoring employees' advance risk as of a date, storing the scores, raising alerts.

One call scores one employee (after an event about them) or the whole tenant (nightly)
with the same queries: features for everyone at once (`domain.analytics.features`),
the model in memory, the scores written in one statement (COPY for a large batch),
then the threshold crossings. Every score row names the model that made it.

The model is the tenant's active trained advance-risk model when it has one
(`domain.analytics.advance_model`, loaded from its own schema after its hash is checked),
else the points model (`domain.analytics.points`). A stored model whose bytes fail the
check is not used: the run scores with points and logs the refusal.

TODO(#6): scores are kept (100,000 rows a night for 100,000 employees); nothing prunes
old ones yet. Only each employee's latest is read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import any_, bindparam, insert, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, clock
from domain.analytics import advance_model, alerts, model_store, points
from domain.analytics.features import Features, features_as_of
from domain.analytics.models import RiskModel, RiskScore
from domain.identity.actions import Viewer
from domain.permissions import require_any_role
from tenants.binding import tenant_session
from tenants.context import current_tenant

log = logging.getLogger(__name__)

# From this many rows the scores are written with COPY rather than INSERT.
COPY_FROM = 500
# For a large run's transaction. The feature queries' row estimates are far off (the
# branches' cutoffs are a function's rows), so their costs pass the JIT thresholds and
# they were compiled, a pure cost for queries that run in about a second; and their
# sorts spilled to disk in the default 4 MB of memory.
LARGE_RUN_SETTINGS = text(
    "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)"
)
SCORE_COLUMNS = (
    "employee_id",
    "as_of",
    "score",
    "band",
    "probability",
    "factors",
    "model_kind",
    "model_version",
    "model_id",
    "scored_at",
)


@dataclasses.dataclass(frozen=True)
class Scorer:
    """The model a run scores with: the points model, or a stored one and its estimator."""

    kind: str
    version: str
    model: RiskModel | None = None
    estimator: Any = None

    @property
    def model_id(self) -> uuid.UUID | None:
        return self.model.id if self.model is not None else None

    def score(self, features: list[Any], thresholds: points.Thresholds) -> list[points.Scored]:
        if self.model is None:
            return [points.score(f, thresholds) for f in features]
        return advance_model.score_all(self.model, self.estimator, features, thresholds)

    def scores(
        self, features: dict[uuid.UUID, Features], thresholds: points.Thresholds
    ) -> Iterator[points.Scored]:
        """`score`, emptying `features` as it goes. The points model scores one employee
        at a time, so a large run writes a score while it computes the next; a trained
        model predicts for all rows at once."""
        if self.model is not None:
            rows = list(features.values())
            features.clear()
            yield from self.score(rows, thresholds)
            return
        for employee_id in list(features):
            yield points.score(features.pop(employee_id), thresholds)


POINTS = Scorer(points.MODEL_KIND, points.MODEL_VERSION)


async def current_scorer(session: AsyncSession) -> Scorer:
    """The tenant's active advance-risk model, hash-checked, or the points model."""
    model = await model_store.active_model(session, advance_model.KIND, None)
    if model is None:
        return POINTS
    try:
        estimator = model_store.load(model)
    except model_store.ModelIntegrityError:
        # Logged by the store; the points model keeps the scores coming meanwhile.
        return POINTS
    return Scorer("trained", advance_model.version_name(model), model, estimator)


@dataclasses.dataclass(frozen=True)
class ScoringReport:
    """What one scoring run did."""

    as_of: dt.date
    scored: int
    alerts_raised: int
    alerts_closed: int
    model_kind: str
    model_version: str
    seconds: float


async def score_employees(
    as_of: dt.date | None = None, employee_ids: Sequence[uuid.UUID] | None = None
) -> ScoringReport:
    """Score the current tenant's employees (all, or `employee_ids`) as of a date
    (default: today in the tenant's time zone), in one transaction."""
    started = time.perf_counter()
    day = as_of or clock.local_today(current_tenant().time_zone)
    async with tenant_session() as session:
        report = await score_in(session, day, employee_ids)
    report = dataclasses.replace(report, seconds=round(time.perf_counter() - started, 3))
    log.info(
        "Scored %d employees as of %s with %s; %d alerts raised, %d closed.",
        report.scored,
        day,
        report.model_version,
        report.alerts_raised,
        report.alerts_closed,
    )
    return report


async def score_in(
    session: AsyncSession, as_of: dt.date, employee_ids: Sequence[uuid.UUID] | None = None
) -> ScoringReport:
    """`score_employees` inside the caller's transaction."""
    if employee_ids is not None and len(employee_ids) < COPY_FROM:
        return await _score_in(session, as_of, employee_ids)
    # NOTE: a whole tenant's run allocates a few million small objects and frees none
    # until it ends, so the cyclic collector's passes over them are pure cost: about a
    # fifth of the run at 100,000 employees. It is paused for the run, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        await session.execute(LARGE_RUN_SETTINGS)
        return await _score_in(session, as_of, employee_ids)
    finally:
        if collecting:
            gc.enable()


async def _score_in(
    session: AsyncSession, as_of: dt.date, employee_ids: Sequence[uuid.UUID] | None
) -> ScoringReport:
    at = clock.now()
    thresholds = await alerts.risk_thresholds(session)
    scorer = await current_scorer(session)
    features = await features_as_of(session, as_of, employee_ids)
    # Everyone with features gets a score.
    gone = await alerts.close_gone(session, employee_ids, set(features), at)
    if not features:
        return ScoringReport(as_of, 0, 0, gone, scorer.kind, scorer.version, 0.0)

    previous = await _previous_bands(session, list(features))
    # The features are dropped as they are scored: a large run never holds all of both.
    scored = await _write_scores(
        session, scorer.scores(features, thresholds), len(features), scorer, as_of, at
    )

    rising = alerts.crossings(scored, previous)
    score_ids = await _score_ids(session, [s.employee_id for s in rising], at)
    crossings = [
        alerts.Crossing(s, score_ids.get(s.employee_id), getattr(thresholds, s.band))
        for s in rising
    ]
    closed = gone + await alerts.close_fallen(session, scored, at)
    raised = await alerts.raise_alerts(session, crossings, as_of, at)
    return ScoringReport(as_of, len(scored), len(raised), closed, scorer.kind, scorer.version, 0.0)


def _record(
    scored: points.Scored, scorer: Scorer, as_of: dt.date, at: dt.datetime
) -> tuple[Any, ...]:
    """A `risk_scores` row in the order of SCORE_COLUMNS; factors as JSON text."""
    return (
        scored.employee_id,
        as_of,
        scored.score,
        scored.band,
        scored.probability,
        json.dumps([f.as_json() for f in scored.factors]),
        scorer.kind,
        scorer.version,
        scorer.model_id,
        at,
    )


async def _write_scores(
    session: AsyncSession,
    scores: Iterator[points.Scored],
    count: int,
    scorer: Scorer,
    as_of: dt.date,
    at: dt.datetime,
) -> list[points.Scored]:
    """Store `count` scores as they come; returns them."""
    if count < COPY_FROM:
        scored = list(scores)
        rows = [
            {
                "employee_id": s.employee_id,
                "as_of": as_of,
                "score": s.score,
                "band": s.band,
                "probability": s.probability,
                "factors": [f.as_json() for f in s.factors],
                "model_kind": scorer.kind,
                "model_version": scorer.version,
                "model_id": scorer.model_id,
                "scored_at": at,
            }
            for s in scored
        ]
        await session.execute(insert(RiskScore), rows)
        return scored
    # COPY: a nightly batch of 100,000 rows goes in in about a second. The session's own
    # connection, so the rows commit or roll back with the rest of the run.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    scored = []

    def records() -> Iterator[tuple[Any, ...]]:
        # asyncpg sends the rows half a megabyte at a time as it reads them, so the
        # database stores each batch while the next one is scored.
        for found in scores:
            scored.append(found)
            yield _record(found, scorer, as_of, at)

    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "risk_scores",
        records=records(),
        columns=SCORE_COLUMNS,
        schema_name=current_tenant().schema,
    )
    return scored


async def _previous_bands(
    session: AsyncSession, employee_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Each employee's band at their latest stored score: an index probe per employee."""
    statement = text(
        """
        SELECT e.id, (
          SELECT r.band FROM risk_scores r WHERE r.employee_id = e.id
           ORDER BY r.scored_at DESC, r.id DESC LIMIT 1
        ) AS band
          FROM unnest(:ids) AS e(id)
        """
    ).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
    rows = await session.execute(statement, {"ids": employee_ids})
    # Unpacked, not read by name: a whole tenant's run reads 100,000 of them.
    return {employee_id: band for employee_id, band in rows if band is not None}


async def _score_ids(
    session: AsyncSession, employee_ids: list[uuid.UUID], at: dt.datetime
) -> dict[uuid.UUID, int]:
    if not employee_ids:
        return {}
    rows = await session.execute(
        select(RiskScore.employee_id, RiskScore.id).where(
            RiskScore.employee_id == any_(literal(employee_ids)), RiskScore.scored_at == at
        )
    )
    return {employee_id: score_id for employee_id, score_id in rows}


async def read_scores(
    viewer: Viewer, employee_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, RiskScore]:
    """The latest score of each employee (admin and hr), with an audit entry per employee
    read: two statements in one transaction, whatever the number (a page of employees)."""
    require_any_role(viewer, *alerts.RISK_READERS)
    ids = list(dict.fromkeys(employee_ids))
    if not ids:
        return {}
    async with tenant_session() as session:
        found = {
            row.employee_id: row
            for row in await session.scalars(
                select(RiskScore)
                .where(RiskScore.employee_id == any_(literal(ids)))
                .ext(distinct_on(RiskScore.employee_id))
                .order_by(RiskScore.employee_id, RiskScore.scored_at.desc(), RiskScore.id.desc())
            )
        }
        await session.execute(
            insert(audit.AuditEntry),
            [
                audit.values(
                    actor_id=viewer.id,
                    action="risk.score.read",
                    entity_type="employee",
                    entity_id=employee_id,
                    after={
                        "risk_score_id": found[employee_id].id if employee_id in found else None
                    },
                )
                for employee_id in ids
            ],
        )
    return found


async def rescore_employee(employee_id: uuid.UUID, as_of: dt.date | None = None) -> ScoringReport:
    """Re-score one employee after an event about them (a gone employee is skipped)."""
    report = await score_employees(as_of, [employee_id])
    if report.scored == 0:
        log.debug("Employee %s has no record in force; nothing to score.", employee_id)
    return report
