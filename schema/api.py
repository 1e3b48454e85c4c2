"""The assembled GraphQL schema."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types

from renshi.settings import Settings
from schema.advances import Advance, AdvanceMutations, AdvanceQueries, ApprovalStep
from schema.analytics import AnalyticsMutations, AnalyticsQueries, RiskAlert
from schema.errors import ErrorCodes, RenshiSchema
from schema.execution import PlainFieldExecution
from schema.identity import Ctx, IdentityMutations, User, Viewer, resolve_viewer
from schema.node import Node, resolve_node
from schema.notifications import NotificationMutations, NotificationQueries
from schema.organisation import (
    Branch,
    JobLevel,
    OrganisationMutations,
    OrganisationQueries,
    OrgUnit,
    Position,
)
from schema.people import Employee, PeopleMutations, PeopleQueries
from schema.risk_models import RiskModelMutations, RiskModelQueries, TrainedRiskModel
from schema.risk_patterns import RiskPatternQueries


@strawberry.type(description="Entry points for reading.")
class RootQuery:
    viewer: Viewer | None = strawberry.field(
        resolver=resolve_viewer,
        description="The signed-in user and their tenant; null when not signed in.",
    )

    @strawberry.field(description="Any object by its global ID; null when not visible.")
    async def node(
        self,
        info: Ctx,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")],
    ) -> Node | None:
        return await resolve_node(info.context, id)


Query = merge_types(
    "Query",
    (
        RootQuery,
        OrganisationQueries,
        PeopleQueries,
        AdvanceQueries,
        NotificationQueries,
        RiskPatternQueries,
        AnalyticsQueries,
        RiskModelQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        IdentityMutations,
        OrganisationMutations,
        PeopleMutations,
        AdvanceMutations,
        NotificationMutations,
        AnalyticsMutations,
        RiskModelMutations,
    ),
)


def build_schema(settings: Settings) -> strawberry.Schema:
    # The limiters' validation rules are built once: each limiter builds new rule classes,
    # and the validation cache is keyed by the rules, so per-request rules never hit it.
    limits = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_query_aliases).validation_rules,
    ]
    return RenshiSchema(
        query=Query,
        mutation=Mutation,
        execution_context_class=PlainFieldExecution,
        types=[
            User,
            Branch,
            JobLevel,
            OrgUnit,
            Position,
            Employee,
            Advance,
            ApprovalStep,
            RiskAlert,
            TrainedRiskModel,
        ],
        # Factories, so each request gets fresh extension instances. The parser and
        # validation caches are module-level in strawberry and keyed by document text
        # and rules only: safe across tenants, since no tenant data is cached there.
        extensions=[
            ErrorCodes,
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: AddValidationRules(limits),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )
