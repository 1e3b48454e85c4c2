"""GraphQL for department patterns: each org unit against the rest of the tenant (#6)."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from typing import Annotated

import strawberry

from domain.analytics import patterns
from schema.common import Money
from schema.identity import Ctx
from schema.organisation import OrgUnit, load_unit
from tenants.binding import tenant_session


@strawberry.enum(description="A metric of department patterns.")
class PatternMetric(enum.Enum):
    OVERDUE_RATE = "overdue_rate"
    SETTLEMENT_LAG = "settlement_lag"
    WRITE_OFF_RATE = "write_off_rate"
    ATTRITION_RATE = "attrition_rate"


@strawberry.type(description="A unit's figures (its whole subtree), or the tenant's, as of a date.")
class PatternMetrics:
    headcount: int = strawberry.field(description="People employed on the as-of date.")
    borrowers: int = strawberry.field(
        description="Of them, people with an advance paid out and not yet settled."
    )
    overdue_borrowers: int = strawberry.field(
        description="Of the borrowers, people with at least one advance overdue on its "
        "branch's calendar."
    )
    overdue_rate: float | None = strawberry.field(
        description="overdueBorrowers / borrowers; null without borrowers."
    )
    settled_advances: int = strawberry.field(
        description="Advances settled in the twelve months up to the as-of date."
    )
    average_settlement_days: float | None = strawberry.field(
        description="Mean days from disbursement to settlement of those advances."
    )
    closed_advances: int = strawberry.field(
        description="Advances settled, written off or waived in the twelve months."
    )
    written_off_advances: int = strawberry.field(
        description="Of them, advances closed by a write-off or waiver."
    )
    write_off_rate: float | None = strawberry.field(
        description="writtenOffAdvances / closedAdvances; null when none closed."
    )
    write_off_amount: Money = strawberry.field(
        description="Written off or waived in the twelve months, in the tenant's currency "
        "at the rate of the as-of date."
    )
    leavers: int = strawberry.field(
        description="Terminations effective in the twelve months up to the as-of date."
    )
    average_headcount: float = strawberry.field(
        description="Person-days employed in the twelve months divided by their days."
    )
    attrition_rate: float | None = strawberry.field(
        description="leavers / averageHeadcount; null without anyone employed."
    )

    @classmethod
    def of(cls, found: patterns.Metrics, locale: str) -> PatternMetrics:
        amount = found.write_off_amount
        return cls(
            headcount=found.headcount,
            borrowers=found.borrowers,
            overdue_borrowers=found.overdue_borrowers,
            overdue_rate=found.overdue_rate,
            settled_advances=found.settled_advances,
            average_settlement_days=found.average_settlement_days,
            closed_advances=found.closed_advances,
            written_off_advances=found.written_off_advances,
            write_off_rate=found.write_off_rate,
            write_off_amount=Money.of(amount.amount, amount.currency, locale),  # type: ignore[arg-type]
            leavers=found.leavers,
            average_headcount=found.average_headcount,
            attrition_rate=found.attrition_rate,
        )


@strawberry.type(description="One metric of a unit tested against the rest of the tenant.")
class PatternComparison:
    metric: PatternMetric = strawberry.field(description="The metric compared.")
    test: str = strawberry.field(
        description="fisher_exact (overdue and write-off rates), poisson_e_test "
        "(attrition) or welch_t (settlement lag); all one-sided: is the unit worse?"
    )
    unit_value: float = strawberry.field(description="The unit's value (days for the lag).")
    rest_value: float = strawberry.field(
        description="The value of the tenant outside the unit's subtree."
    )
    ratio: float | None = strawberry.field(
        description="Effect size: unitValue / restValue; null when restValue is 0."
    )
    difference: float = strawberry.field(description="unitValue - restValue.")
    p_value: float = strawberry.field(description="The test's one-sided p-value.")
    adjusted_p_value: float = strawberry.field(
        description="Benjamini-Hochberg adjusted over the units tested on this metric."
    )
    flagged: bool = strawberry.field(
        description="ratio at least minRatio (or the rest at 0), adjustedPValue at most "
        "alpha, and at least minCases cases behind the unit's value."
    )


@strawberry.type(description="An org unit's patterns, its whole subtree included.")
class UnitRiskPattern:
    org_unit: OrgUnit | None = strawberry.field(description="The unit, as of the date.")
    metrics: PatternMetrics = strawberry.field(description="The subtree's figures.")
    comparisons: list[PatternComparison] = strawberry.field(
        description="Each metric with data on both sides, against the rest of the tenant."
    )
    flagged: bool = strawberry.field(description="Whether any comparison is flagged.")
    flagged_metrics: list[PatternMetric] = strawberry.field(
        description="The metrics the unit is flagged on."
    )


@strawberry.type(description="Department patterns of the tenant as of a date.")
class RiskPatterns:
    as_of: dt.date = strawberry.field(description="The date the figures are as of.")
    window_start: dt.date = strawberry.field(
        description="First day of the twelve months the flows (settlements, write-offs, "
        "leavers) are counted in; they end on asOf."
    )
    min_ratio: float = strawberry.field(description="The smallest effect size flagged.")
    alpha: float = strawberry.field(description="The largest adjusted p-value flagged.")
    min_cases: int = strawberry.field(
        description="The fewest cases (people overdue, leavers, ...) a flag stands on."
    )
    tenant: PatternMetrics = strawberry.field(description="The whole tenant's figures.")
    units: list[UnitRiskPattern] = strawberry.field(
        description="Every unit in force on asOf, flagged ones first, then by name."
    )


@strawberry.type
class RiskPatternQueries:
    @strawberry.field(
        description="Overdue, settlement, write-off and attrition patterns per org unit, "
        "each compared with the rest of the tenant (admin and hr only)."
    )
    async def risk_patterns(
        self,
        info: Ctx,
        as_of: Annotated[
            dt.date | None,
            strawberry.argument(
                description="Read everything as of the end of this day (default: today); "
                "later events are ignored."
            ),
        ] = None,
    ) -> RiskPatterns:
        context = info.context
        viewer = context.require_viewer()
        tenant = context.require_tenant()
        async with tenant_session() as session:
            found = await patterns.department_patterns(
                session,
                viewer,
                tenant_currency=tenant.currency,
                time_zone=tenant.time_zone,
                as_of=as_of,
            )
        units = await asyncio.gather(
            *(load_unit(context, unit.org_unit_id, found.as_of) for unit in found.units)
        )
        locale = context.format_locale
        rows = [
            UnitRiskPattern(
                org_unit=unit,
                metrics=PatternMetrics.of(pattern.metrics, locale),
                comparisons=[_comparison(c) for c in pattern.comparisons],
                flagged=bool(pattern.flagged_metrics),
                flagged_metrics=[PatternMetric(m) for m in pattern.flagged_metrics],
            )
            for unit, pattern in zip(units, found.units, strict=True)
        ]
        rows.sort(key=lambda r: (not r.flagged, r.org_unit.name if r.org_unit else ""))
        return RiskPatterns(
            as_of=found.as_of,
            window_start=found.window_start,
            min_ratio=patterns.MIN_RATIO,
            alpha=patterns.ALPHA,
            min_cases=patterns.MIN_CASES,
            tenant=PatternMetrics.of(found.tenant, locale),
            units=rows,
        )


def _comparison(found: patterns.Comparison) -> PatternComparison:
    return PatternComparison(
        metric=PatternMetric(found.metric),
        test=found.test,
        unit_value=found.unit_value,
        rest_value=found.rest_value,
        ratio=found.ratio,
        difference=found.difference,
        p_value=found.p_value,
        adjusted_p_value=found.adjusted_p_value,
        flagged=found.flagged,
    )
