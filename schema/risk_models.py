"""GraphQL for trained risk models: riskModels, retrainRiskModels, employee.attritionRisk (#6).

A tenant has attrition models (one per horizon) and an advance-risk model, which scores
`employee.riskScore` once it exists (`schema.analytics`).

Only admin and hr see models and forecasts. `Employee.attritionRisk` is null for anyone
else, like every Employee field a viewer may not read; the other fields answer FORBIDDEN.
Every read of an individual's forecast is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

import strawberry

from domain.analytics import attrition, model_store
from domain.analytics.models import RiskModel as ModelRow
from i18n import translate
from schema.common import attempt
from schema.context import RequestContext
from schema.errors import UserError
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from tenants.binding import tenant_session


@strawberry.enum(description="What a trained model predicts.")
class TrainedModelKind(enum.Enum):
    ATTRITION = "attrition"
    ADVANCE_RISK = "advance_risk"


@strawberry.type(description="Mean and standard deviation of a metric over the folds.")
class MetricSpread:
    mean: float = strawberry.field(description="Mean over the cross-validation folds.")
    std: float = strawberry.field(description="Standard deviation over the folds.")


@strawberry.type(description="One decile of predicted probability, out of fold.")
class CalibrationDecile:
    decile: int = strawberry.field(description="1 (lowest predictions) to 10.")
    count: int = strawberry.field(description="Predictions in the decile.")
    mean_predicted: float = strawberry.field(description="Their mean predicted probability.")
    observed_rate: float = strawberry.field(
        description="The share that actually had the outcome (left, or an advance gone bad)."
    )


@strawberry.type(description="How well a model did in cross-validation before it was stored.")
class ModelMetrics:
    rows: int = strawberry.field(description="Training rows (one per person and snapshot).")
    people: int = strawberry.field(description="Distinct people in the rows.")
    positives: int = strawberry.field(
        description="People with the outcome in a row: left within the horizon (attrition), "
        "had an advance more than 60 days overdue or written off (advance risk)."
    )
    leavers: int | None = strawberry.field(
        description="Attrition: people who left within the horizon; null for advance risk."
    )
    roc_auc: MetricSpread = strawberry.field(description="Ranking quality (0.5 is chance).")
    pr_auc: MetricSpread = strawberry.field(description="Average precision.")
    brier: MetricSpread = strawberry.field(description="Mean squared probability error.")
    expected_calibration_error: float = strawberry.field(
        description="Mean gap between predicted and observed rates, weighted by count."
    )
    calibration: list[CalibrationDecile] = strawberry.field(
        description="Predicted against observed, by decile."
    )


@strawberry.type(description="Decisions for one group at the report's threshold.")
class FairnessGroup:
    group: str = strawberry.field(description="E.g. <30, 30-39, 40-49, 50+, or unknown.")
    count: int = strawberry.field(description="Predictions for the group.")
    selection_rate: float = strawberry.field(description="Share flagged.")
    true_positive_rate: float | None = strawberry.field(
        description="Share of the group's leavers flagged; null when it has none."
    )


@strawberry.type(description="The groups of one attribute and how unevenly they are flagged.")
class FairnessAttribute:
    attribute: str = strawberry.field(description="gender or age band.")
    selection_rate_ratio: float | None = strawberry.field(
        description="Lowest selection rate over the highest among known groups; null when "
        "there is nothing to compare."
    )
    groups: list[FairnessGroup]


@strawberry.type(description="Selection rates per gender and age band; warns below 0.8.")
class FairnessReport:
    threshold: float = strawberry.field(description="Probability from which one is flagged.")
    attributes: list[FairnessAttribute]
    warnings: list[str] = strawberry.field(
        description="A sentence per attribute whose ratio is below 0.8, in the reader's language."
    )


@strawberry.type(description="A model trained on this tenant's own data, versioned per line.")
class TrainedRiskModel(Node):
    kind: TrainedModelKind = strawberry.field(description="What the model predicts.")
    horizon_months: int | None = strawberry.field(
        description="Attrition: leaving within this many months (3, 6 or 12); null for "
        "advance risk (an advance going bad within 6 months)."
    )
    version: int = strawberry.field(description="1, 2, ... within its kind and horizon.")
    active: bool = strawberry.field(description="Whether it is the one serving its line.")
    created_at: dt.datetime = strawberry.field(description="When it was stored.")
    trained_from: dt.date = strawberry.field(description="The oldest snapshot trained on.")
    trained_to: dt.date = strawberry.field(description="The day every label was known by.")
    features: list[str] = strawberry.field(description="Its inputs, by name.")
    metrics: ModelMetrics = strawberry.field(description="Cross-validated figures.")
    fairness: FairnessReport = strawberry.field(description="Its fairness report.")

    @classmethod
    def from_row(cls, row: ModelRow, context: RequestContext) -> TrainedRiskModel:
        return cls(
            id=to_global_id("TrainedRiskModel", context.require_tenant().id, row.id),
            kind=TrainedModelKind(row.kind),
            horizon_months=row.horizon_months,
            version=row.version,
            active=row.active,
            created_at=row.created_at,
            trained_from=row.trained_from,
            trained_to=row.trained_to,
            features=list(row.features),
            metrics=_metrics(row.metrics),
            fairness=_fairness(row.fairness, context.locale),
        )


def _spread(found: dict[str, Any]) -> MetricSpread:
    return MetricSpread(mean=found["mean"], std=found["std"])


def _metrics(found: dict[str, Any]) -> ModelMetrics:
    calibration = found["calibration"]
    return ModelMetrics(
        rows=found["rows"],
        people=found["people"],
        # Models stored before `positives` was recorded are attrition models.
        positives=found.get("positives", found.get("leavers", 0)),
        leavers=found.get("leavers"),
        roc_auc=_spread(found["roc_auc"]),
        pr_auc=_spread(found["pr_auc"]),
        brier=_spread(found["brier"]),
        expected_calibration_error=calibration["expected_calibration_error"],
        calibration=[
            CalibrationDecile(
                decile=d["decile"],
                count=d["count"],
                mean_predicted=d["mean_predicted"],
                observed_rate=d["observed_rate"],
            )
            for d in calibration["deciles"]
        ],
    )


def _fairness(found: dict[str, Any], locale: str) -> FairnessReport:
    return FairnessReport(
        threshold=found["threshold"],
        attributes=[
            FairnessAttribute(
                attribute=a["attribute"],
                selection_rate_ratio=a["selection_rate_ratio"],
                groups=[
                    FairnessGroup(
                        group=g["group"],
                        count=g["count"],
                        selection_rate=g["selection_rate"],
                        true_positive_rate=g["true_positive_rate"],
                    )
                    for g in a["groups"]
                ],
            )
            for a in found["attributes"]
        ],
        warnings=[translate(w["template"], locale, **w["params"]) for w in found["warnings"]],
    )


async def _fetch(context: RequestContext, pk: uuid.UUID) -> TrainedRiskModel | None:
    """`node(id:)` for trained models: admin and hr only."""
    viewer = context.viewer
    if viewer is None or not viewer.has_any_role(*attrition.TRAINERS):
        return None
    async with tenant_session() as session:
        row = await session.get(ModelRow, pk)
    return TrainedRiskModel.from_row(row, context) if row else None


register_node("TrainedRiskModel", _fetch)


@strawberry.type(description="One input that moved a forecast, with its signed weight.")
class AttritionFactor:
    name: str = strawberry.field(description="The input's stable name, e.g. tenure_years.")
    contribution: float = strawberry.field(
        description="Its weight in the log-odds of leaving: positive raises the risk. Numbers "
        "count from the training average, a category by its own weight."
    )
    description: str = strawberry.field(
        description="What it is for this employee, in the viewer's language."
    )


@strawberry.type(description="An employee's probability of leaving within a horizon.")
class AttritionRisk:
    probability: float = strawberry.field(description="Calibrated, 0 to 1.")
    horizon_months: int = strawberry.field(description="The horizon, in months.")
    as_of: dt.date = strawberry.field(description="The day the features were read as of.")
    model_version: int = strawberry.field(description="The version of the model that answered.")
    trained_to: dt.date = strawberry.field(description="The model's training data end.")
    factors: list[AttritionFactor] = strawberry.field(
        description="The five inputs that moved this forecast most, largest first."
    )


async def attrition_risk_of(
    context: RequestContext, employee_id: uuid.UUID, horizon_months: int, as_of: dt.date
) -> AttritionRisk | None:
    """The forecast for admin and hr (the read is audited); null for anyone else."""
    viewer = context.viewer
    if viewer is None or not viewer.has_any_role(*attrition.TRAINERS):
        return None
    found = await attrition.read_attrition_risk(viewer, employee_id, horizon_months, as_of)
    if found is None:
        return None
    return AttritionRisk(
        probability=found.probability,
        horizon_months=horizon_months,
        as_of=as_of,
        model_version=found.model.version,
        trained_to=found.model.trained_to,
        factors=[
            AttritionFactor(
                name=factor.feature,
                contribution=factor.contribution,
                description=attrition.describe_factor(
                    factor, found.values[factor.feature], context.locale, context.format_locale
                ),
            )
            for factor in found.factors
        ],
    )


@strawberry.type
class RiskModelQueries:
    @strawberry.field(description="Trained models of the tenant, newest first per line.")
    async def risk_models(self, info: Ctx) -> list[TrainedRiskModel]:
        context = info.context
        context.require_role(*attrition.TRAINERS)
        async with tenant_session() as session:
            rows = await model_store.list_models(session)
        return [TrainedRiskModel.from_row(row, context) for row in rows]


@strawberry.input(description="Which models to retrain.")
class RetrainRiskModelsInput:
    kinds: list[TrainedModelKind] | None = strawberry.field(
        default=None, description="Attrition, advance risk, or both (when left out)."
    )
    horizon_months: list[int] | None = strawberry.field(
        default=None, description="Attrition horizons: any of 3, 6 and 12; all three when left out."
    )


@strawberry.type(description="The queued training, or why nothing was queued.")
class RetrainRiskModelsPayload:
    job_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Names the job in the audit log; each model it stores is audited with it.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RiskModelMutations:
    @strawberry.mutation(
        description="Queue the training of the tenant's models on its own history (admin "
        "and hr). A model with too little history is skipped; the advance-risk model, once "
        "stored, scores instead of the points model."
    )
    async def retrain_risk_models(
        self,
        info: Ctx,
        input: Annotated[
            RetrainRiskModelsInput | None, strawberry.argument(description="Horizons.")
        ] = None,
    ) -> RetrainRiskModelsPayload:
        context = info.context
        horizons = list(input.horizon_months or []) if input else []
        kinds = [kind.value for kind in input.kinds or []] if input else []

        async def run() -> uuid.UUID:
            return await attrition.request_retraining(context.require_viewer(), horizons, kinds)

        job_id, errors = await attempt(context, run)
        return RetrainRiskModelsPayload(
            job_id=strawberry.ID(str(job_id)) if job_id else None, user_errors=errors
        )
