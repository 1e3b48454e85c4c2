"""A tenant's trained advance-risk model: will one of an employee's advances go bad?

An advance goes bad when it is more than `OVERDUE_DAYS` (60) days overdue (past its
expected settlement date with money still out) or is written off: the labelled outcomes
of the issue. A tenant with too little such history is scored by the points model
(`domain.analytics.points`); once it has enough, this model, trained on its own rows
alone, takes over.

Training on day T reads the same monthly snapshots as the attrition models
(`domain.analytics.attrition.snapshot_set`): at S = T - 6 months, T - 7 months, ...
everyone employed on S (people already leaving included: leaving with money out is a
risk) gives one row of features as of S, labelled 1 when on some day in (S, S + 6 months]
one of their advances was bad, else 0. The ledger says when: an advance is bad from the
61st day after its expected settlement date until its balance reaches zero (entries by
their day of occurrence, reversed ones left out), and on the day of its write-off. Every
window ends by T, so every label is known.

At least `MIN_OUTCOMES` (20) people with a bad advance in the rows, and as many without,
are needed; with fewer, training is refused and nothing is stored. The pipeline, the
person-grouped cross-validation, the metrics and the storage are those of the attrition
models, but for one thing: the isotonic calibrator is fitted on the out-of-fold decisions
of inner folds and serves a single pipeline fitted on all rows (`ensemble=False`) rather
than one pipeline per inner fold, averaged; so scoring one employee after an event
transforms their row once, not three times (about 10 ms instead of 60 under load). The
fairness report counts someone as selected when their probability puts them at or above
the tenant's medium threshold (as a score of 100 x probability), in a band that alerts.

Serving (`score_all`): score = 100 x the calibrated probability, rounded to four places
so that the score, in hundredths, is exactly 100 times it; the band from the tenant's
thresholds, and the five inputs that moved the log-odds most from the average training
row, each with the sentence of `domain.analytics.features.SENTENCES`.

Retraining: `retrainRiskModels`, and the nightly run (`queue_training_if_due`) when the
tenant has no model, or its model was trained more than `RETRAIN_AFTER_DAYS` ago, and the
last window holds enough bad advances to try.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Date

from domain import clock, outbox
from domain.analytics import model_store
from domain.analytics.alerts import risk_thresholds
from domain.analytics.attrition import (
    RETRAIN_ACTOR,
    SNAPSHOTS,
    TRAINERS,
    TrainedModel,
    TrainingSet,
    feature_row,
    fit_tenant_model,
    months_before,
    snapshot_set,
    store_trained,
)
from domain.analytics.attrition_model import Calibration, predict_and_explain
from domain.analytics.features import SENTENCES, Features
from domain.analytics.models import RiskModel
from domain.analytics.points import Factor, Scored, Thresholds
from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.permissions import require_any_role
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

log = logging.getLogger(__name__)

KIND = "advance_risk"
OUTCOME_MONTHS = 6
OVERDUE_DAYS = 60
MIN_OUTCOMES = 20
RETRAIN_AFTER_DAYS = 30
TOP_FACTORS = 5
HUNDREDTH = Decimal("0.01")


@dataclasses.dataclass(frozen=True, slots=True)
class BadAdvance:
    """When one paid-out advance was bad: from `overdue_from` until `cleared_on` (None:
    still out), and on `written_off_on`."""

    overdue_from: dt.date
    cleared_on: dt.date | None
    written_off_on: dt.date | None

    def bad_within(self, first: dt.date, last: dt.date) -> bool:
        """Whether the advance was bad on some day from `first` to `last`, both included."""
        if self.written_off_on is not None and first <= self.written_off_on <= last:
            return True
        start = max(first, self.overdue_from)
        return start <= last and (self.cleared_on is None or start < self.cleared_on)


async def bad_advances(session: AsyncSession, until: dt.date) -> dict[uuid.UUID, list[BadAdvance]]:
    """Every paid-out advance per employee, as the ledger stood at the end of `until`."""
    statement = text(
        """
        WITH entries AS (
          SELECT l.advance_id, l.kind, l.amount, l.occurred_on
            FROM ledger_entries l
           WHERE l.kind <> 'reversal' AND l.occurred_on <= :until
             AND NOT EXISTS (
                   SELECT 1 FROM ledger_entries r
                    WHERE r.reverses_id = l.id AND r.occurred_on <= :until
                 )
        )
        SELECT a.employee_id, a.expected_settlement_date + CAST(:grace AS integer) AS overdue_from,
               CASE WHEN sum(e.amount) <= 0 THEN max(e.occurred_on) END AS cleared_on,
               min(e.occurred_on) FILTER (WHERE e.kind = 'write_off') AS written_off_on
          FROM advances a JOIN entries e ON e.advance_id = a.id
         GROUP BY a.id, a.employee_id, a.expected_settlement_date
        HAVING bool_or(e.kind = 'disbursement')
        """
    ).bindparams(bindparam("until", type_=Date))
    rows = await session.execute(statement, {"until": until, "grace": OVERDUE_DAYS + 1})
    found: dict[uuid.UUID, list[BadAdvance]] = defaultdict(list)
    for row in rows:
        found[row.employee_id].append(
            BadAdvance(row.overdue_from, row.cleared_on, row.written_off_on)
        )
    return found


async def training_set(session: AsyncSession, *, trained_to: dt.date) -> TrainingSet:
    """The snapshot rows (see the module's docstring) through the tenant's session."""
    advances = await bad_advances(session, trained_to)

    def went_bad(employee_id: uuid.UUID, day: dt.date, window_end: dt.date) -> int:
        first = day + dt.timedelta(days=1)
        return int(any(a.bad_within(first, window_end) for a in advances.get(employee_id, [])))

    return await snapshot_set(
        session,
        trained_to=trained_to,
        horizon_months=OUTCOME_MONTHS,
        label=went_bad,
        include_offboarding=True,
    )


def train(
    data: TrainingSet, *, threshold: float, calibration: Calibration = "isotonic"
) -> TrainedModel:
    """Measure the pipeline on `data`, then fit it on all rows; refused with too few
    labelled outcomes."""
    positives, people = data.positives, data.people
    if positives < MIN_OUTCOMES or people - positives < MIN_OUTCOMES:
        raise DomainError(
            N_(
                "Too little history to train an advance-risk model: {positives} of {people} "
                "people had an advance more than {days} days overdue or written off within "
                "{months} months of a snapshot; at least {minimum} of them and {minimum} "
                "others are needed."
            ),
            field="kinds",
            positives=positives,
            people=people,
            days=OVERDUE_DAYS,
            months=OUTCOME_MONTHS,
            minimum=MIN_OUTCOMES,
        )
    return fit_tenant_model(
        data,
        kind=KIND,
        horizon_months=None,
        threshold=threshold,
        calibration=calibration,
        # One pipeline, not one per calibration fold: every event re-scores one employee,
        # and each pipeline costs a few milliseconds of scikit-learn checks per call.
        ensemble=False,
        outcome={"outcome_months": OUTCOME_MONTHS, "overdue_days": OVERDUE_DAYS},
    )


async def train_advance_model(*, as_of: dt.date | None = None) -> TrainedModel:
    """Read the current tenant's history and train its advance-risk model; stores nothing.

    As for attrition, the fit runs in a thread once the reading transaction has ended.
    """
    trained_to = as_of or clock.local_today(current_tenant().time_zone)
    async with tenant_session() as session:
        thresholds = await risk_thresholds(session)
        data = await training_set(session, trained_to=trained_to)
    return await asyncio.to_thread(train, data, threshold=float(thresholds.medium) / 100)


async def retrain_advance_model(actor: Viewer | None, *, as_of: dt.date | None = None) -> RiskModel:
    """Train the current tenant's advance-risk model and store it as the active version.

    `actor` is None when the system retrains; otherwise admin or hr.
    """
    if actor is not None:
        require_any_role(actor, *TRAINERS)
    trained = await train_advance_model(as_of=as_of)
    async with tenant_session() as session:
        return await store_trained(
            session, trained, actor_id=actor.id if actor is not None else None
        )


async def labelled_people(session: AsyncSession, trained_to: dt.date) -> int:
    """People with a bad advance between the oldest snapshot and `trained_to`: an upper
    bound of the positives a training on that day would find, from one query."""
    oldest = months_before(trained_to, OUTCOME_MONTHS + SNAPSHOTS - 1)
    first = oldest + dt.timedelta(days=1)
    advances = await bad_advances(session, trained_to)
    return sum(
        1 for found in advances.values() if any(a.bad_within(first, trained_to) for a in found)
    )


async def queue_training_if_due(today: dt.date | None = None) -> uuid.UUID | None:
    """Queue the training of the current tenant's advance-risk model when it has none,
    or its model was trained more than RETRAIN_AFTER_DAYS ago, and enough people had a
    bad advance to try. Returns the job's id; once a day at most (by its key)."""
    day = today or clock.local_today(current_tenant().time_zone)
    async with tenant_session() as session:
        model = await model_store.active_model(session, KIND, None)
        if model is not None and (day - model.trained_to).days <= RETRAIN_AFTER_DAYS:
            return None
        labelled = await labelled_people(session, day)
        if labelled < MIN_OUTCOMES:
            log.debug("Not training advance risk: %d people with a bad advance.", labelled)
            return None
        job_id = uuid.uuid4()
        key = f"{RETRAIN_ACTOR}:{KIND}:{day.isoformat()}"
        await outbox.enqueue(
            session,
            RETRAIN_ACTOR,
            {
                "job_id": str(job_id),
                "horizons": [],
                "kinds": [KIND],
                "requested_by": None,
                "idempotency_key": key,
            },
            key,
        )
    log.info(
        "Queued advance-risk training (job %s): %d people with a bad advance.", job_id, labelled
    )
    return job_id


def version_name(model: RiskModel) -> str:
    """How scores name the trained model that made them."""
    return f"{KIND}-v{model.version}"


def score_all(
    model: RiskModel, estimator: Any, features: Sequence[Features], thresholds: Thresholds
) -> list[Scored]:
    """Scores, bands and top factors of `features` under a stored model (its estimator
    loaded and hash-checked by the caller): one prediction over all rows at once."""
    if not features:
        return []
    names = list(model.features)
    matrix = np.array([feature_row(f, names) for f in features], dtype=object).reshape(
        len(features), len(names)
    )
    explained = predict_and_explain(estimator, matrix, names)
    probabilities, weights = explained.probabilities, explained.contributions
    del matrix
    # Largest first; ties in the order of the inputs, so the answer is reproducible.
    ranked = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, :TOP_FACTORS]
    scored = []
    for row, found in enumerate(features):
        probability = Decimal(f"{probabilities[row]:.4f}")
        score = (probability * 100).quantize(HUNDREDTH)
        factors = []
        for column in ranked[row]:
            contribution = Decimal(f"{weights[row, column]:.6f}").quantize(
                HUNDREDTH, rounding=ROUND_HALF_UP
            )
            if contribution == 0:
                continue
            name = names[column]
            value = getattr(found, name)
            factors.append(
                Factor(
                    name,
                    contribution,
                    SENTENCES[name],
                    {
                        "value": value
                        if value is None or isinstance(value, int | Decimal)
                        else str(value)
                    },
                )
            )
        scored.append(
            Scored(found.employee_id, score, thresholds.band(score), probability, factors)
        )
    return scored
