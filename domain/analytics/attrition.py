"""A tenant's attrition models: who leaves within 3, 6 or 12 months, learnt from its own past.

Training data are snapshots of the tenant's own employees. For a horizon of H months and
a training day T, the snapshots fall monthly at T - H, T - H - 1, ... (`SNAPSHOTS` of
them). At each snapshot day S everyone employed (not terminated, not already in
offboarding) contributes one row: their features as of S (`domain.analytics.features`,
which sees nothing after S), labelled 1 when a termination takes effect in (S, S + H
months], else 0. Every label window ends by T, so every label is known.

One person appears in several snapshots, so the cross-validation keeps all rows of a
person in one fold (`StratifiedGroupKFold`): otherwise a leaver's other snapshots would
teach the model the very person it is tested on. The pipeline is the one of
`domain.analytics.attrition_model`, measured exactly as on IBM's table, then fitted on all
rows and stored as the line's next version (`domain.analytics.model_store`) with its
data window, features, metrics and fairness report.

Age bands come from birth dates as of each snapshot; the tenant's records hold no gender,
so the gender part of the fairness report has one group, "unknown", and no ratio.
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import datetime as dt
import logging
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from babel.numbers import format_decimal
from sklearn.model_selection import StratifiedGroupKFold
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, clock, outbox
from domain.analytics import model_store
from domain.analytics.attrition_model import (
    MODEL_DESCRIPTION,
    Calibration,
    Contribution,
    attrition_pipeline,
    calibration_error,
    contributions,
    cross_validate,
    fit_explainable,
    largest_calibration_gap,
)
from domain.analytics.fairness import age_band, fairness_report
from domain.analytics.features import Features, features_as_of
from domain.analytics.models import RiskModel
from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.people.models import Employee, EmploymentEvent
from domain.permissions import require_any_role
from i18n import N_, translate
from tenants.binding import tenant_session
from tenants.context import current_tenant

log = logging.getLogger(__name__)

KIND = "attrition"
HORIZONS = (3, 6, 12)
SNAPSHOTS = 12
FOLDS = 5
# Fewer distinct leavers than this and the measured figures mean little: refuse.
MIN_LEAVERS = 20
# Probability at or above which the fairness report counts someone as flagged.
# TODO(#6): a tenant setting; with a 3-month horizon few people reach 0.5, and a ratio
# of selection rates near zero says little.
THRESHOLD = 0.5
TRAINERS = ("admin", "hr")
RETRAIN_ACTOR = "risk.retrain_models"

NUMERIC = (
    "job_level_rank",
    "pay_band_position",
    "salary_changes_24m",
    "last_rating",
    "rating_trend",
    "rewards_12m",
    "penalties_12m",
    "transfers_24m",
    "manager_changes_12m",
    "advances_12m",
    "rejections_12m",
    "write_offs_12m",
)
SKEWED = (
    "tenure_years",
    "years_since_promotion",
    "leave_days_12m",
    "advances_total",
    "outstanding_to_salary",
    "max_overdue_days",
    "average_settlement_days",
)
CATEGORICAL = ("org_unit_id", "status")
FEATURES = NUMERIC + SKEWED + CATEGORICAL
# What each input says about one employee, for the factors of a forecast.
FEATURE_SENTENCES = {
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
    "org_unit_id": N_("The org unit they work in."),
    "status": N_("Their status ({value})."),
}


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier (the month's last day if it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Snapshot rows of one tenant for one horizon: features, labels, who and how old."""

    trained_to: dt.date
    horizon_months: int
    snapshots: list[dt.date]  # newest first
    features: npt.NDArray[np.object_]  # columns in FEATURES order
    outcomes: npt.NDArray[np.int_]
    employees: list[uuid.UUID]
    ages: list[int | None]

    @property
    def leavers(self) -> int:
        """Distinct people with at least one positive row."""
        return len({e for e, y in zip(self.employees, self.outcomes, strict=True) if y})

    @property
    def people(self) -> int:
        return len(set(self.employees))


async def training_set(
    session: AsyncSession,
    *,
    trained_to: dt.date,
    horizon_months: int,
    snapshots: int = SNAPSHOTS,
) -> TrainingSet:
    """Read the snapshot rows (see the module's docstring) through the tenant's session."""
    terminations = await _terminations(session, trained_to)
    births = dict((await session.execute(select(Employee.id, Employee.birth_date))).all())
    days = [months_before(trained_to, horizon_months + k) for k in range(snapshots)]

    rows: list[list[object]] = []
    outcomes: list[int] = []
    employees: list[uuid.UUID] = []
    ages: list[int | None] = []
    for back, day in enumerate(days):
        window_end = months_before(trained_to, back)
        found = await features_as_of(session, day)
        for employee_id, features in sorted(found.items()):
            if features.status == "offboarding":
                continue  # already leaving: nothing left to forecast
            rows.append(feature_row(features))
            left = terminations.get(employee_id, [])
            outcomes.append(int(any(day < t <= window_end for t in left)))
            employees.append(employee_id)
            ages.append(_age(births.get(employee_id), day))
    return TrainingSet(
        trained_to=trained_to,
        horizon_months=horizon_months,
        snapshots=days,
        features=np.array(rows, dtype=object).reshape(len(rows), len(FEATURES)),
        outcomes=np.array(outcomes, dtype=np.int_),
        employees=employees,
        ages=ages,
    )


def feature_row(features: Features) -> list[object]:
    """One matrix row: numbers as floats (NaN when unknown), categories as text."""
    values = features.as_dict()
    numbers = [_float(values[name]) for name in NUMERIC]
    # log1p needs values above -1; counts and durations are never negative anyway.
    skewed = [max(0.0, _float(values[name])) for name in SKEWED]
    categories = [str(values[name]) if values[name] is not None else "-" for name in CATEGORICAL]
    return [*numbers, *skewed, *categories]


def _float(value: object) -> float:
    if value is None:
        return float("nan")
    assert isinstance(value, int | float | Decimal)
    return float(value)


def _age(birth: dt.date | None, day: dt.date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


async def _terminations(session: AsyncSession, until: dt.date) -> dict[uuid.UUID, list[dt.date]]:
    rows = await session.execute(
        select(EmploymentEvent.employee_id, EmploymentEvent.effective_date).where(
            EmploymentEvent.kind == "termination", EmploymentEvent.effective_date <= until
        )
    )
    found: dict[uuid.UUID, list[dt.date]] = defaultdict(list)
    for employee_id, day in rows:
        found[employee_id].append(day)
    return found


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A fitted estimator and what is stored with it."""

    record: model_store.ModelRecord
    estimator: Any


def train(data: TrainingSet, *, calibration: Calibration = "isotonic") -> TrainedModel:
    """Measure the pipeline on `data` with person-grouped folds, then fit it on all rows."""
    leavers, people = data.leavers, data.people
    if leavers < MIN_LEAVERS or people - leavers < MIN_LEAVERS:
        raise DomainError(
            N_(
                "Too little history to train an attrition model: {leavers} of {people} "
                "people left within {horizon} months of a snapshot; at least {minimum} "
                "leavers and {minimum} stayers are needed."
            ),
            field="horizonMonths",
            leavers=leavers,
            people=people,
            horizon=data.horizon_months,
            minimum=MIN_LEAVERS,
        )
    template = attrition_pipeline(
        numeric=[FEATURES.index(c) for c in NUMERIC],
        skewed=[FEATURES.index(c) for c in SKEWED],
        categorical=[FEATURES.index(c) for c in CATEGORICAL],
        calibration=calibration,
    )
    groups = np.array([str(e) for e in data.employees])
    folds = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    measured = cross_validate(
        template, data.features, data.outcomes, folds.split(data.features, data.outcomes, groups)
    )
    fairness = fairness_report(
        measured.probabilities,
        measured.outcomes,
        {
            "gender": [None] * len(measured.rows),
            "age band": [age_band(data.ages[i]) for i in measured.rows],
        },
        threshold=THRESHOLD,
    )
    table = measured.calibration
    metrics = {
        "model": MODEL_DESCRIPTION,
        "calibration_method": calibration,
        "cross_validation": {"kind": "stratified group k-fold (by person)", "folds": FOLDS},
        "rows": int(data.outcomes.size),
        "positive_rows": int(data.outcomes.sum()),
        "people": people,
        "leavers": leavers,
        "snapshots": [day.isoformat() for day in data.snapshots],
        "scored_folds": measured.scored_folds,
        "roc_auc": dataclasses.asdict(measured.roc_auc),
        "pr_auc": dataclasses.asdict(measured.pr_auc),
        "brier": dataclasses.asdict(measured.brier),
        "calibration": {
            "expected_calibration_error": calibration_error(table),
            "largest_gap": largest_calibration_gap(table),
            "deciles": [dataclasses.asdict(b) for b in table],
        },
    }
    estimator = fit_explainable(template, data.features, data.outcomes)
    record = model_store.ModelRecord(
        kind=KIND,
        horizon_months=data.horizon_months,
        trained_from=data.snapshots[-1],
        trained_to=data.trained_to,
        features=list(FEATURES),
        metrics=metrics,
        fairness=fairness.as_dict(),
    )
    return TrainedModel(record=record, estimator=estimator)


def check_horizons(horizons: list[int]) -> list[int]:
    """The distinct horizons asked for, in order; each must be 3, 6 or 12 months."""
    for horizon in horizons:
        if horizon not in HORIZONS:
            raise DomainError(
                N_("The horizon is 3, 6 or 12 months."), field="horizonMonths", value=horizon
            )
    return sorted(set(horizons))


async def train_attrition_model(
    horizon_months: int, *, as_of: dt.date | None = None
) -> TrainedModel:
    """Read the current tenant's history and train a model for the horizon; stores nothing.

    The CPU-heavy fit runs in a thread after the reading transaction has ended, so it
    holds no connection and blocks no event loop.
    """
    check_horizons([horizon_months])
    trained_to = as_of or clock.local_today(current_tenant().time_zone)
    async with tenant_session() as session:
        data = await training_set(session, trained_to=trained_to, horizon_months=horizon_months)
    return await asyncio.to_thread(train, data)


async def store_trained(
    session: AsyncSession,
    trained: TrainedModel,
    *,
    actor_id: uuid.UUID | None,
    job_id: uuid.UUID | None = None,
) -> RiskModel:
    """Store a trained model as its line's active version, with an audit entry."""
    model = await model_store.store(session, trained.record, trained.estimator)
    metrics = trained.record.metrics
    audit.record(
        session,
        actor_id=actor_id,
        action="risk_model.train",
        entity_type="risk_model",
        entity_id=model.id,
        after={
            "kind": model.kind,
            "horizon_months": model.horizon_months,
            "version": model.version,
            "trained_from": model.trained_from.isoformat(),
            "trained_to": model.trained_to.isoformat(),
            "roc_auc": metrics["roc_auc"]["mean"],
            "artifact_sha256": model.artifact_sha256,
            "job_id": str(job_id) if job_id else None,
        },
    )
    log.info(
        "Stored attrition model v%s (%s months), trained on %s rows: ROC AUC %.3f.",
        model.version,
        model.horizon_months,
        metrics["rows"],
        metrics["roc_auc"]["mean"],
    )
    return model


async def retrain_attrition_model(
    actor: Viewer | None, horizon_months: int, *, as_of: dt.date | None = None
) -> RiskModel:
    """Train the current tenant's model for a horizon on its own history and store it active.

    `actor` is None when the system retrains; otherwise admin or hr.
    """
    if actor is not None:
        require_any_role(actor, *TRAINERS)
    trained = await train_attrition_model(horizon_months, as_of=as_of)
    async with tenant_session() as session:
        return await store_trained(
            session, trained, actor_id=actor.id if actor is not None else None
        )


async def request_retraining(actor: Viewer, horizons: list[int]) -> uuid.UUID:
    """Queue the training of the current tenant's attrition models; returns the job's id.

    The worker (`risk.retrain_models`) trains each horizon and stores it; a horizon with
    too little history is logged and skipped. The job id is in each model's audit entry.
    """
    require_any_role(actor, *TRAINERS)
    wanted = check_horizons(horizons or list(HORIZONS))
    job_id = uuid.uuid4()
    key = f"risk.retrain_models:{job_id}"
    async with tenant_session() as session:
        await outbox.enqueue(
            session,
            RETRAIN_ACTOR,
            {
                "job_id": str(job_id),
                "horizons": wanted,
                "requested_by": str(actor.id),
                "idempotency_key": key,
            },
            key,
        )
        audit.record(
            session,
            actor_id=actor.id,
            action="risk_model.retrain_requested",
            entity_type="risk_model_job",
            entity_id=job_id,
            after={"horizons": wanted},
        )
    return job_id


async def predict_attrition(
    session: AsyncSession,
    horizon_months: int,
    as_of: dt.date,
    employee_ids: list[uuid.UUID] | None = None,
) -> tuple[RiskModel, dict[uuid.UUID, float]] | None:
    """Probabilities of leaving within the horizon from the active model (None: no model),
    for everyone employed on `as_of` and not in offboarding.

    The stored bytes are hash-checked before loading (`model_store.load`).
    """
    model = await model_store.active_model(session, KIND, horizon_months)
    if model is None:
        return None
    estimator = model_store.load(model)
    found = await features_as_of(session, as_of, employee_ids)
    # As in training: someone already in offboarding is leaving, not at risk of it.
    ids = sorted(i for i, f in found.items() if f.status != "offboarding")
    if not ids:
        return model, {}
    matrix = np.array([feature_row(found[i]) for i in ids], dtype=object)
    probabilities = estimator.predict_proba(matrix)[:, 1]
    return model, {i: float(p) for i, p in zip(ids, probabilities, strict=True)}


@dataclasses.dataclass(frozen=True)
class AttritionForecast:
    """One employee's forecast, the model that made it and its top factors."""

    model: RiskModel
    probability: float
    factors: list[Contribution]
    values: dict[str, object]  # the employee's input values, by feature name


def describe_factor(
    factor: Contribution, value: object, locale: str | None, format_locale: str
) -> str:
    """A factor's sentence in the reader's language, its number in their format."""
    if value is None:
        shown = translate(N_("unknown"), locale)
    elif isinstance(value, int | float | Decimal):
        shown = format_decimal(Decimal(str(value)), locale=format_locale)
    else:
        shown = str(value)
    return translate(FEATURE_SENTENCES[factor.feature], locale, value=shown)


async def read_attrition_risk(
    viewer: Viewer, employee_id: uuid.UUID, horizon_months: int, as_of: dt.date
) -> AttritionForecast | None:
    """One employee's probability of leaving within the horizon, with its top factors
    (admin and hr).

    None when the tenant has no model for the horizon or the employee is not employed on
    `as_of` (or already in offboarding). Every read is written to the audit log.
    """
    require_any_role(viewer, *TRAINERS)
    check_horizons([horizon_months])
    async with tenant_session() as session:
        model = await model_store.active_model(session, KIND, horizon_months)
        if model is None:
            return None
        found = (await features_as_of(session, as_of, [employee_id])).get(employee_id)
        if found is None or found.status == "offboarding":
            return None
        estimator = model_store.load(model)
        row = np.array(feature_row(found), dtype=object)
        probability = float(estimator.predict_proba(row.reshape(1, -1))[0, 1])
        factors = contributions(estimator, row, FEATURES)
        audit.record(
            session,
            actor_id=viewer.id,
            action="risk.attrition_read",
            entity_type="employee",
            entity_id=employee_id,
            after={"horizon_months": horizon_months, "model_version": model.version},
        )
    values = found.as_dict()
    return AttritionForecast(
        model=model,
        probability=probability,
        factors=factors,
        values={f.feature: values[f.feature] for f in factors},
    )
