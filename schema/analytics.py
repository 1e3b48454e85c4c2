"""GraphQL for advance risk: employee.riskScore, riskAlerts, thresholds, acknowledgement (#6).

Only admin and hr see scores, factors and alerts. For anyone else `Employee.riskScore` is
null (as the Employee type does with every field a viewer may not read) and the other
fields answer FORBIDDEN. Every read of an individual's score is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from domain.analytics import alerts, scoring
from domain.analytics.models import RiskAlert as AlertRow
from domain.analytics.models import RiskScore as ScoreRow
from domain.analytics.points import Thresholds, describe
from schema.common import attempt, decode_id, decode_optional, today
from schema.context import RequestContext
from schema.errors import UserError
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from tenants.binding import tenant_session

if TYPE_CHECKING:
    from schema.people import Employee, PageInfo


@strawberry.enum(description="Where a risk score falls against the tenant's thresholds.")
class RiskBand(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum(description="Which kind of model made a score.")
class RiskModelKind(enum.Enum):
    POINTS = "points"
    TRAINED = "trained"


@strawberry.type(description="One reason for a score, with its signed weight.")
class RiskFactor:
    name: str = strawberry.field(
        description="Stable name: a points rule (e.g. advance_outstanding) or, for a trained "
        "model, the input it reads (e.g. outstanding_to_salary)."
    )
    contribution: Decimal = strawberry.field(
        description="Points model: the points this factor adds to the score (negative: takes "
        "away). Trained model: its weight in the log-odds of an advance going bad, from the "
        "tenant's average employee (positive raises the risk)."
    )
    description: str = strawberry.field(
        description="What it means, in the viewer's language and number format."
    )


@strawberry.type(description="An employee's advance risk as last scored.")
class RiskScore:
    score: Decimal = strawberry.field(
        description="0 to 100; higher is riskier. Under a trained model, 100 x probability."
    )
    band: RiskBand = strawberry.field(description="By the tenant's thresholds at scoring.")
    probability: float | None = strawberry.field(
        description="Calibrated probability of an advance going bad; null under the points "
        "model, which ranks but is not calibrated."
    )
    factors: list[RiskFactor] = strawberry.field(
        description="The factors with a contribution, largest first."
    )
    model_kind: RiskModelKind = strawberry.field(
        description="points, or trained (the tenant's own advance-risk model)."
    )
    model_version: str = strawberry.field(
        description="The model that scored: points-2, or advance_risk-v3 for version 3 of "
        "the tenant's trained model (see riskModels)."
    )
    as_of: dt.date = strawberry.field(description="The date the features were read as of.")
    scored_at: dt.datetime = strawberry.field(description="When the score was computed.")

    @classmethod
    def from_row(cls, row: ScoreRow, context: RequestContext) -> RiskScore:
        locale, format_locale = context.locale, context.format_locale
        return cls(
            score=row.score,
            band=RiskBand(row.band),
            probability=float(row.probability) if row.probability is not None else None,
            factors=[
                RiskFactor(
                    name=f["name"],
                    contribution=Decimal(f["contribution"]),
                    description=describe(f, locale, format_locale),
                )
                for f in row.factors
            ],
            model_kind=RiskModelKind(row.model_kind),
            model_version=row.model_version,
            as_of=row.as_of,
            scored_at=row.scored_at,
        )


async def risk_score_of(context: RequestContext, employee_id: uuid.UUID) -> RiskScore | None:
    """The latest score for admin and hr (the read is audited); null for anyone else."""
    viewer = context.viewer
    if viewer is None or not viewer.has_any_role(*alerts.RISK_READERS):
        return None
    # One query and one audit insert for every employee of a page that asks.
    row = await context.loader(("risk_scores", viewer.id), _load_scores(viewer)).load(employee_id)
    return RiskScore.from_row(row, context) if row else None


def _load_scores(viewer: Any) -> Any:
    async def load(ids: Sequence[uuid.UUID]) -> list[ScoreRow | None]:
        found = await scoring.read_scores(viewer, ids)
        return [found.get(employee_id) for employee_id in ids]

    return load


@strawberry.type(description="Scores from `medium` up are medium risk, from `high` up high.")
class RiskThresholds:
    medium: Decimal = strawberry.field(description="Lowest medium score.")
    high: Decimal = strawberry.field(description="Lowest high score.")

    @classmethod
    def of(cls, thresholds: Thresholds) -> RiskThresholds:
        return cls(medium=thresholds.medium, high=thresholds.high)


@strawberry.type(description="Raised once when an employee's risk rose into a band.")
class RiskAlert(Node):
    band: RiskBand = strawberry.field(description="The band the score rose into.")
    score: Decimal = strawberry.field(description="The score that crossed.")
    threshold: Decimal = strawberry.field(description="The threshold it crossed.")
    raised_at: dt.datetime = strawberry.field(description="When it was raised.")
    closed_at: dt.datetime | None = strawberry.field(
        description="When a later score fell below the band; a new rise is a new alert."
    )
    acknowledged_at: dt.datetime | None = strawberry.field(description="When HR acknowledged it.")
    employee_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The employee, as of today.")
    async def employee(
        self, info: Ctx
    ) -> Annotated[Employee, strawberry.lazy("schema.people")] | None:
        from schema.people import load_employee

        return await load_employee(info.context, self.employee_pk, today(info.context))

    @classmethod
    def from_row(cls, row: AlertRow, context: RequestContext) -> RiskAlert:
        return cls(
            id=to_global_id("RiskAlert", context.require_tenant().id, row.id),
            band=RiskBand(row.band),
            score=row.score,
            threshold=row.threshold,
            raised_at=row.raised_at,
            closed_at=row.closed_at,
            acknowledged_at=row.acknowledged_at,
            employee_pk=row.employee_id,
        )


async def _fetch(context: RequestContext, pk: uuid.UUID) -> RiskAlert | None:
    """`node(id:)` for risk alerts: admin and hr only."""
    viewer = context.viewer
    if viewer is None or not viewer.has_any_role(*alerts.RISK_READERS):
        return None
    async with tenant_session() as session:
        row = await session.get(AlertRow, pk)
    return RiskAlert.from_row(row, context) if row else None


register_node("RiskAlert", _fetch)


@strawberry.type(description="A risk alert in a page of results.")
class RiskAlertEdge:
    cursor: str = strawberry.field(description="Pass as `after` to continue after this row.")
    node: RiskAlert


@strawberry.type(description="A page of risk alerts, newest first.")
class RiskAlertConnection:
    edges: list[RiskAlertEdge]
    page_info: Annotated[PageInfo, strawberry.lazy("schema.people")]


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(description="Risk alerts, newest first (admin and hr).")
    async def risk_alerts(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the last page.")
        ] = None,
        open: Annotated[
            bool, strawberry.argument(description="Only alerts whose crossing still holds.")
        ] = False,
        acknowledged: Annotated[
            bool | None,
            strawberry.argument(description="Only acknowledged (true) or unacknowledged (false)."),
        ] = None,
    ) -> RiskAlertConnection:
        from schema.people import PageInfo

        context = info.context
        viewer = context.require_role(*alerts.RISK_READERS)
        anchor = decode_optional(after, "RiskAlert", context, "after")  # type: ignore[arg-type]
        async with tenant_session() as session:
            rows, more = await alerts.list_alerts(
                session,
                viewer,
                first=first,
                after=anchor,
                open_only=open,
                acknowledged=acknowledged,
            )
        nodes = [RiskAlert.from_row(row, context) for row in rows]
        return RiskAlertConnection(
            edges=[RiskAlertEdge(cursor=str(node.id), node=node) for node in nodes],
            page_info=PageInfo(has_next_page=more, end_cursor=str(nodes[-1].id) if nodes else None),
        )

    @strawberry.field(description="The tenant's risk thresholds (admin and hr).")
    async def risk_thresholds(self, info: Ctx) -> RiskThresholds:
        info.context.require_role(*alerts.RISK_READERS)
        async with tenant_session() as session:
            return RiskThresholds.of(await alerts.risk_thresholds(session))


@strawberry.input(description="New risk thresholds: 0 < medium < high <= 100.")
class SetRiskThresholdsInput:
    medium: Decimal = strawberry.field(description="Lowest medium score.")
    high: Decimal = strawberry.field(description="Lowest high score.")


@strawberry.type(description="The thresholds now in force, or why nothing changed.")
class RiskThresholdsPayload:
    thresholds: RiskThresholds | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="The alert to acknowledge.")
class AcknowledgeRiskAlertInput:
    alert_id: strawberry.ID = strawberry.field(description="A RiskAlert ID.")


@strawberry.type(description="The acknowledged alert, or why nothing changed.")
class RiskAlertPayload:
    alert: RiskAlert | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AnalyticsMutations:
    @strawberry.mutation(
        description="Change the risk thresholds (admin and hr); the next scoring uses them."
    )
    async def set_risk_thresholds(
        self, info: Ctx, input: SetRiskThresholdsInput
    ) -> RiskThresholdsPayload:
        context = info.context

        async def run() -> Thresholds:
            return await alerts.set_risk_thresholds(
                context.require_viewer(), input.medium, input.high
            )

        thresholds, errors = await attempt(context, run)
        return RiskThresholdsPayload(
            thresholds=RiskThresholds.of(thresholds) if thresholds else None, user_errors=errors
        )

    @strawberry.mutation(description="Acknowledge a risk alert (admin and hr).")
    async def acknowledge_risk_alert(
        self, info: Ctx, input: AcknowledgeRiskAlertInput
    ) -> RiskAlertPayload:
        context = info.context

        async def run() -> AlertRow:
            alert_id = decode_id(input.alert_id, "RiskAlert", context, "alertId")
            return await alerts.acknowledge_risk_alert(context.require_viewer(), alert_id)

        row, errors = await attempt(context, run)
        return RiskAlertPayload(
            alert=RiskAlert.from_row(row, context) if row else None, user_errors=errors
        )
