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
from collections.abc import Callable, Sequence
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
from domain.analytics.features import SENTENCES, Features, features_as_of
from domain.analytics.models import RISK_MODEL_KINDS, RiskModel
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
    "claim_lines_12m",
    "missing_receipts_12m",
    "late_receipts_12m",
)
CATEGORICAL = ("org_unit_id", "status")
FEATURES = NUMERIC + SKEWED + CATEGORICAL
# What each input says about one employee, for the factors of a forecast.
FEATURE_SENTENCES = SENTENCES


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
    # The share of the tenant's people kept (1.0 unless the rows would exceed
    # MAX_TRAINING_ROWS).
    sampled_share: float = 1.0

    @property
    def positives(self) -> int:
        """Distinct people with at least one positive row."""
        return len({e for e, y in zip(self.employees, self.outcomes, strict=True) if y})

    @property
    def leavers(self) -> int:
        """For attrition, the people with a positive row are the leavers."""
        return self.positives

    @property
    def people(self) -> int:
        return len(set(self.employees))


# One snapshot row is a few hundred bytes of Python objects; a tenant of 100,000 people
# would give 1.2 million rows. Beyond this many, a fixed share of the people is kept
# (chosen by their id, so the same people each time), which leaves the rates, and so the
# calibration, as they are.
MAX_TRAINING_ROWS = 240_000
# Labels one person's snapshot: (employee, snapshot day S, window end) -> 0 or 1.
Labeller = Callable[[uuid.UUID, dt.date, dt.date], int]


async def snapshot_set(
    session: AsyncSession,
    *,
    trained_to: dt.date,
    horizon_months: int,
    label: Labeller,
    include_offboarding: bool,
    snapshots: int = SNAPSHOTS,
    max_rows: int = MAX_TRAINING_ROWS,
) -> TrainingSet:
    """Features as of each monthly snapshot S = T - H, T - H - 1, ... and their labels
    over (S, S + H months]: the rows every tenant model is trained on."""
    births = dict((await session.execute(select(Employee.id, Employee.birth_date))).all())
    days = [months_before(trained_to, horizon_months + k) for k in range(snapshots)]

    rows: list[list[object]] = []
    outcomes: list[int] = []
    employees: list[uuid.UUID] = []
    ages: list[int | None] = []
    keep: int | None = None
    for back, day in enumerate(days):
        window_end = months_before(trained_to, back)
        found = await features_as_of(session, day)
        if keep is None:
            keep = _kept_per_10000(len(found) * snapshots, max_rows)
        for employee_id, features in sorted(found.items()):
            if features.status == "offboarding" and not include_offboarding:
                continue  # already leaving: nothing left to forecast
            if employee_id.int % 10_000 >= keep:
                continue
            rows.append(feature_row(features))
            outcomes.append(label(employee_id, day, window_end))
            employees.append(employee_id)
            ages.append(age_on(births.get(employee_id), day))
    return TrainingSet(
        trained_to=trained_to,
        horizon_months=horizon_months,
        snapshots=days,
        features=np.array(rows, dtype=object).reshape(len(rows), len(FEATURES)),
        outcomes=np.array(outcomes, dtype=np.int_),
        employees=employees,
        ages=ages,
        sampled_share=(keep or 10_000) / 10_000,
    )


def _kept_per_10000(rows: int, max_rows: int) -> int:
    """How many of every 10,000 people to keep so that about `max_rows` rows remain."""
    if rows <= max_rows:
        return 10_000
    return max(1, max_rows * 10_000 // rows)


async def training_set(
    session: AsyncSession,
    *,
    trained_to: dt.date,
    horizon_months: int,
    snapshots: int = SNAPSHOTS,
) -> TrainingSet:
    """Read the snapshot rows (see the module's docstring) through the tenant's session."""
    terminations = await _terminations(session, trained_to)

    def left(employee_id: uuid.UUID, day: dt.date, window_end: dt.date) -> int:
        return int(any(day < t <= window_end for t in terminations.get(employee_id, [])))

    return await snapshot_set(
        session,
        trained_to=trained_to,
        horizon_months=horizon_months,
        label=left,
        include_offboarding=False,
        snapshots=snapshots,
    )


def feature_row(features: Features, names: Sequence[str] = FEATURES) -> list[object]:
    """One matrix row in the order of `names` (a stored model's own list, or FEATURES):
    numbers as floats (NaN when unknown), categories as text."""
    values = features.as_dict()
    return [_cell(name, values[name]) for name in names]


def _cell(name: str, value: object) -> object:
    if name in CATEGORICAL:
        return str(value) if value is not None else "-"
    if name in SKEWED:
        # log1p needs values above -1; counts and durations are never negative anyway.
        return max(0.0, _float(value))
    return _float(value)


def _float(value: object) -> float:
    if value is None:
        return float("nan")
    assert isinstance(value, int | float | Decimal)
    return float(value)


def age_on(birth: dt.date | None, day: dt.date) -> int | None:
    """Age in whole years on `day` (None without a birth date)."""
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
    return fit_tenant_model(
        data,
        kind=KIND,
        horizon_months=data.horizon_months,
        threshold=THRESHOLD,
        calibration=calibration,
        outcome={"leavers": leavers},
    )


def fit_tenant_model(
    data: TrainingSet,
    *,
    kind: str,
    horizon_months: int | None,
    threshold: float,
    calibration: Calibration = "isotonic",
    ensemble: bool = True,
    outcome: dict[str, Any] | None = None,
) -> TrainedModel:
    """Cross-validate the pipeline on a tenant's snapshot rows in folds that keep each
    person's rows together, report on fairness at `threshold`, then fit it on all rows.

    `ensemble` as in `attrition_pipeline`; `outcome` adds kind-specific figures to the
    stored metrics.
    """
    template = attrition_pipeline(
        numeric=[FEATURES.index(c) for c in NUMERIC],
        skewed=[FEATURES.index(c) for c in SKEWED],
        categorical=[FEATURES.index(c) for c in CATEGORICAL],
        calibration=calibration,
        ensemble=ensemble,
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
        threshold=threshold,
    )
    table = measured.calibration
    metrics = {
        "model": MODEL_DESCRIPTION,
        "calibration_method": calibration,
        "calibration_ensemble": ensemble,
        "cross_validation": {"kind": "stratified group k-fold (by person)", "folds": FOLDS},
        "rows": int(data.outcomes.size),
        "positive_rows": int(data.outcomes.sum()),
        "people": data.people,
        "positives": data.positives,
        **(outcome or {}),
        "sampled_share": data.sampled_share,
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
        kind=kind,
        horizon_months=horizon_months,
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
        "Stored %s model v%s (horizon %s months), trained on %s rows: ROC AUC %.3f.",
        model.kind,
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


async def request_retraining(
    actor: Viewer, horizons: list[int], kinds: list[str] | None = None
) -> uuid.UUID:
    """Queue the training of the current tenant's models; returns the job's id.

    `kinds` are 'attrition' (one model per horizon in `horizons`, all three when empty)
    and 'advance_risk'; both when None or empty. The worker (`risk.retrain_models`) trains
    and stores each; one with too little history is logged and skipped. The job id is in
    each model's audit entry.
    """
    require_any_role(actor, *TRAINERS)
    wanted_kinds = check_kinds(kinds or list(RISK_MODEL_KINDS))
    wanted = check_horizons(horizons or list(HORIZONS)) if KIND in wanted_kinds else []
    job_id = uuid.uuid4()
    key = f"{RETRAIN_ACTOR}:{job_id}"
    async with tenant_session() as session:
        await outbox.enqueue(
            session,
            RETRAIN_ACTOR,
            {
                "job_id": str(job_id),
                "horizons": wanted,
                "kinds": wanted_kinds,
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
            after={"horizons": wanted, "kinds": wanted_kinds},
        )
    return job_id


def check_kinds(kinds: list[str]) -> list[str]:
    """The distinct model kinds asked for, in a fixed order."""
    unknown = set(kinds) - set(RISK_MODEL_KINDS)
    if unknown:  # GraphQL's enum lets none through: a caller's mistake
        raise ValueError(f"Unknown model kinds: {sorted(unknown)}")
    return [kind for kind in RISK_MODEL_KINDS if kind in kinds]


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
    matrix = np.array([feature_row(found[i], model.features) for i in ids], dtype=object)
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
        row = np.array(feature_row(found, model.features), dtype=object)
        probability = float(estimator.predict_proba(row.reshape(1, -1))[0, 1])
        factors = contributions(estimator, row, model.features)
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
