"""GraphQL for branches, job levels, org units, positions and the org chart."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy import select

from domain.organisation import actions
from domain.organisation import queries as org
from domain.organisation.models import Branch as BranchRow
from domain.organisation.models import JobLevel as JobLevelRow
from domain.organisation.models import OrgUnit as OrgUnitRow
from domain.organisation.models import OrgUnitVersion
from domain.organisation.models import Position as PositionRow
from schema import loaders
from schema.common import Money, attempt, decode_id, decode_optional, today
from schema.context import RequestContext
from schema.errors import UserError
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from tenants.binding import tenant_session

if TYPE_CHECKING:
    from schema.people import Employee

EmployeeRef = Annotated["Employee", strawberry.lazy("schema.people")]


@strawberry.type(description="An office or legal entity with its own currency and time zone.")
class Branch(Node):
    code: str = strawberry.field(description="Short unique code.")
    name: str = strawberry.field(description="Display name.")
    country: str = strawberry.field(description="ISO 3166 country code.")
    currency: str = strawberry.field(description="ISO 4217 currency of amounts here.")
    time_zone: str = strawberry.field(description="IANA time zone of local dates here.")
    locale: str = strawberry.field(description="Locale of documents here.")
    address: str | None = strawberry.field(description="Postal address.")
    parent_pk: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: BranchRow, context: RequestContext) -> Branch:
        return cls(
            id=to_global_id("Branch", context.require_tenant().id, row.id),
            code=row.code,
            name=row.name,
            country=row.country,
            currency=row.currency,
            time_zone=row.time_zone,
            locale=row.locale,
            address=row.address,
            parent_pk=row.parent_id,
        )

    @strawberry.field(description="The group entity this branch belongs to.")
    async def parent(self, info: Ctx) -> Branch | None:
        return await load_branch(info.context, self.parent_pk)


@strawberry.type(description="A pay band's bounds.")
class PayBand:
    min: Money | None = strawberry.field(description="Lowest pay in the band.")
    max: Money | None = strawberry.field(description="Highest pay in the band.")


@strawberry.type(description="A rank with a pay band; approval authority is keyed on it.")
class JobLevel(Node):
    code: str = strawberry.field(description="Short unique code.")
    rank: int = strawberry.field(description="Higher ranks sit higher in the organisation.")
    title: str = strawberry.field(description="Name of the level.")
    pay_band: PayBand | None = strawberry.field(description="Pay band, if defined.")

    @classmethod
    def from_row(cls, row: JobLevelRow, context: RequestContext) -> JobLevel:
        band = None
        if row.pay_currency:
            band = PayBand(
                min=Money.of(row.pay_min, row.pay_currency, context.format_locale),
                max=Money.of(row.pay_max, row.pay_currency, context.format_locale),
            )
        return cls(
            id=to_global_id("JobLevel", context.require_tenant().id, row.id),
            code=row.code,
            rank=row.rank,
            title=row.title,
            pay_band=band,
        )


@strawberry.type(description="A node of the organisation tree, as it stood on `asOf`.")
class OrgUnit(Node):
    code: str | None = strawberry.field(description="Optional unique code.")
    kind: str = strawberry.field(description="company, division, department, team or unit.")
    name: str = strawberry.field(description="Name on `asOf`.")
    cost_centre: str | None = strawberry.field(description="Cost centre on `asOf`.")
    valid_from: dt.date = strawberry.field(description="Start of the version shown.")
    valid_to: dt.date | None = strawberry.field(description="End of the version shown, if any.")
    as_of: dt.date = strawberry.field(description="The date the unit is shown as of.")
    pk: strawberry.Private[uuid.UUID]
    parent_pk: strawberry.Private[uuid.UUID | None]
    branch_pk: strawberry.Private[uuid.UUID]
    head_position_pk: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_version(
        cls,
        version: OrgUnitVersion,
        kind: str,
        code: str | None,
        day: dt.date,
        context: RequestContext,
    ) -> OrgUnit:
        return cls(
            id=to_global_id("OrgUnit", context.require_tenant().id, version.org_unit_id),
            code=code,
            kind=kind,
            name=version.name,
            cost_centre=version.cost_centre,
            valid_from=version.valid_from,
            valid_to=version.valid_to,
            as_of=day,
            pk=version.org_unit_id,
            parent_pk=version.parent_id,
            branch_pk=version.branch_id,
            head_position_pk=version.head_position_id,
        )

    @strawberry.field(description="The parent unit on `asOf`.")
    async def parent(self, info: Ctx) -> OrgUnit | None:
        return await load_unit(info.context, self.parent_pk, self.as_of)

    @strawberry.field(description="The branch the unit belongs to.")
    async def branch(self, info: Ctx) -> Branch | None:
        return await load_branch(info.context, self.branch_pk)

    @strawberry.field(description="The unit's head position.")
    async def head_position(self, info: Ctx) -> Position | None:
        return await load_position(info.context, self.head_position_pk)

    @strawberry.field(description="Who holds the head position on `asOf`.")
    async def head(self, info: Ctx) -> EmployeeRef | None:
        from schema.people import load_employee

        if self.head_position_pk is None:
            return None
        holders = await loaders.incumbents(info.context, self.as_of).load(self.head_position_pk)
        return await load_employee(info.context, holders[0], self.as_of) if holders else None


@strawberry.type(description="A seat in an org unit; reporting lines run between positions.")
class Position(Node):
    code: str | None = strawberry.field(description="Optional unique code.")
    title: str = strawberry.field(description="Job title.")
    headcount: int = strawberry.field(description="How many people the position is for.")
    opened_on: dt.date = strawberry.field(description="First day the position exists.")
    closed_on: dt.date | None = strawberry.field(description="First day it no longer exists.")
    pk: strawberry.Private[uuid.UUID]
    org_unit_pk: strawberry.Private[uuid.UUID]
    job_level_pk: strawberry.Private[uuid.UUID | None]
    reports_to_pk: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: PositionRow, context: RequestContext) -> Position:
        return cls(
            id=to_global_id("Position", context.require_tenant().id, row.id),
            code=row.code,
            title=row.title,
            headcount=row.headcount,
            opened_on=row.opened_on,
            closed_on=row.closed_on,
            pk=row.id,
            org_unit_pk=row.org_unit_id,
            job_level_pk=row.job_level_id,
            reports_to_pk=row.reports_to_id,
        )

    @strawberry.field(description="The unit the position sits in, as of `asOf` (default today).")
    async def org_unit(self, info: Ctx, as_of: dt.date | None = None) -> OrgUnit | None:
        return await load_unit(info.context, self.org_unit_pk, as_of or today(info.context))

    @strawberry.field(description="The position's job level.")
    async def job_level(self, info: Ctx) -> JobLevel | None:
        return await load_job_level(info.context, self.job_level_pk)

    @strawberry.field(description="The position this one reports to.")
    async def reports_to(self, info: Ctx) -> Position | None:
        return await load_position(info.context, self.reports_to_pk)

    @strawberry.field(description="Who holds the position on `asOf` (default today).")
    async def incumbents(self, info: Ctx, as_of: dt.date | None = None) -> list[EmployeeRef]:
        from schema.people import load_employee

        day = as_of or today(info.context)
        holders = await loaders.incumbents(info.context, day).load(self.pk)
        found = [await load_employee(info.context, h, day) for h in holders]
        return [e for e in found if e is not None]


@strawberry.type(description="A unit in the org chart with its head, headcount and sub-units.")
class OrgChartNode:
    unit: OrgUnit = strawberry.field(description="The unit.")
    headcount: int = strawberry.field(description="People in the unit and all its sub-units.")
    children: list[OrgChartNode] = strawberry.field(description="Sub-units, by name.")


# --- loading -------------------------------------------------------------------------------


async def load_branch(context: RequestContext, pk: uuid.UUID | None) -> Branch | None:
    if pk is None:
        return None
    row = await loaders.branches(context).load(pk)
    return Branch.from_row(row, context) if row else None


async def load_job_level(context: RequestContext, pk: uuid.UUID | None) -> JobLevel | None:
    if pk is None:
        return None
    row = await loaders.job_levels(context).load(pk)
    return JobLevel.from_row(row, context) if row else None


async def load_position(context: RequestContext, pk: uuid.UUID | None) -> Position | None:
    if pk is None:
        return None
    row = await loaders.positions(context).load(pk)
    return Position.from_row(row, context) if row else None


async def load_unit(context: RequestContext, pk: uuid.UUID | None, day: dt.date) -> OrgUnit | None:
    if pk is None:
        return None
    version = await loaders.org_units(context, day).load(pk)
    if version is None:
        return None
    unit = await _unit_identity(context, pk)
    return OrgUnit.from_version(version, unit.kind, unit.code, day, context)


async def _unit_identity(context: RequestContext, pk: uuid.UUID) -> OrgUnitRow:
    async def load(ids: list[uuid.UUID]) -> list[OrgUnitRow | None]:
        async with tenant_session() as session:
            rows = await session.scalars(select(OrgUnitRow).where(OrgUnitRow.id.in_(ids)))
            found = {r.id: r for r in rows}
        return [found.get(i) for i in ids]

    row = await context.loader("org_unit_rows", load).load(pk)
    assert row is not None  # a version always has its unit
    return row


def _signed_in(context: RequestContext) -> bool:
    return context.viewer is not None and context.tenant is not None


async def _fetch_branch(context: RequestContext, pk: uuid.UUID) -> Branch | None:
    return await load_branch(context, pk) if _signed_in(context) else None


async def _fetch_job_level(context: RequestContext, pk: uuid.UUID) -> JobLevel | None:
    return await load_job_level(context, pk) if _signed_in(context) else None


async def _fetch_position(context: RequestContext, pk: uuid.UUID) -> Position | None:
    return await load_position(context, pk) if _signed_in(context) else None


async def _fetch_unit(context: RequestContext, pk: uuid.UUID) -> OrgUnit | None:
    return await load_unit(context, pk, today(context)) if _signed_in(context) else None


register_node("Branch", _fetch_branch)
register_node("JobLevel", _fetch_job_level)
register_node("Position", _fetch_position)
register_node("OrgUnit", _fetch_unit)


# --- queries -------------------------------------------------------------------------------


@strawberry.type
class OrganisationQueries:
    @strawberry.field(description="All branches, by code.")
    async def branches(self, info: Ctx) -> list[Branch]:
        info.context.require_viewer()
        async with tenant_session() as session:
            rows = await session.scalars(select(BranchRow).order_by(BranchRow.code))
            return [Branch.from_row(r, info.context) for r in rows]

    @strawberry.field(description="All job levels, by rank.")
    async def job_levels(self, info: Ctx) -> list[JobLevel]:
        info.context.require_viewer()
        async with tenant_session() as session:
            rows = await session.scalars(
                select(JobLevelRow).order_by(JobLevelRow.rank, JobLevelRow.code)
            )
            return [JobLevel.from_row(r, info.context) for r in rows]

    @strawberry.field(description="Org units open on `asOf` (default today), by name.")
    async def org_units(
        self, info: Ctx, as_of: dt.date | None = None, branch_id: strawberry.ID | None = None
    ) -> list[OrgUnit]:
        context = info.context
        context.require_viewer()
        day = as_of or today(context)
        branch = decode_optional(branch_id, "Branch", context, "branchId")
        async with tenant_session() as session:
            query = (
                select(OrgUnitVersion, OrgUnitRow.kind, OrgUnitRow.code)
                .join(OrgUnitRow, OrgUnitRow.id == OrgUnitVersion.org_unit_id)
                .where(org.in_force(OrgUnitVersion, day))
                .order_by(OrgUnitVersion.name, OrgUnitVersion.org_unit_id)
            )
            if branch is not None:
                query = query.where(OrgUnitVersion.branch_id == branch)
            rows = await session.execute(query)
            return [OrgUnit.from_version(v, kind, code, day, context) for v, kind, code in rows]

    @strawberry.field(description="Positions, optionally of one unit, by title.")
    async def positions(
        self, info: Ctx, org_unit_id: strawberry.ID | None = None
    ) -> list[Position]:
        context = info.context
        context.require_viewer()
        unit = decode_optional(org_unit_id, "OrgUnit", context, "orgUnitId")
        async with tenant_session() as session:
            query = select(PositionRow).order_by(PositionRow.title, PositionRow.id)
            if unit is not None:
                query = query.where(PositionRow.org_unit_id == unit)
            return [Position.from_row(r, context) for r in await session.scalars(query)]

    @strawberry.field(description="The org tree from `rootId` (default: every top unit).")
    async def org_chart(
        self,
        info: Ctx,
        root_id: strawberry.ID | None = None,
        depth: Annotated[int, strawberry.argument(description="Levels below the root.")] = 3,
        as_of: dt.date | None = None,
    ) -> list[OrgChartNode]:
        from schema.org_chart import build_chart

        context = info.context
        context.require_viewer()
        root = decode_optional(root_id, "OrgUnit", context, "rootId")
        return await build_chart(context, root, max(0, min(depth, 20)), as_of or today(context))


# --- mutations -----------------------------------------------------------------------------


@strawberry.input(description="A new branch.")
class CreateBranchInput:
    code: str
    name: str
    country: str = strawberry.field(description="ISO 3166 alpha-2 code, e.g. CN.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. CNY.")
    time_zone: str = strawberry.field(description="IANA time zone, e.g. Asia/Shanghai.")
    locale: str = strawberry.field(description="Locale, e.g. zh_CN.")
    address: str | None = None
    parent_id: strawberry.ID | None = None


@strawberry.type(description="Result of `createBranch`.")
class BranchPayload:
    branch: Branch | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A new job level.")
class CreateJobLevelInput:
    code: str
    rank: int
    title: str
    pay_min: Decimal | None = None
    pay_max: Decimal | None = None
    pay_currency: str | None = None


@strawberry.type(description="Result of `createJobLevel`.")
class JobLevelPayload:
    job_level: JobLevel | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A new org unit.")
class CreateOrgUnitInput:
    name: str
    kind: str = strawberry.field(description="company, division, department, team or unit.")
    branch_id: strawberry.ID
    effective_date: dt.date
    parent_id: strawberry.ID | None = None
    cost_centre: str | None = None
    code: str | None = None


@strawberry.input(description="Rename a unit or change its cost centre or head from a date.")
class UpdateOrgUnitInput:
    id: strawberry.ID
    effective_date: dt.date
    name: str | None = None
    cost_centre: str | None = None
    head_position_id: strawberry.ID | None = None


@strawberry.input(description="Move a unit, with its subtree, under another parent from a date.")
class MoveOrgUnitInput:
    id: strawberry.ID
    new_parent_id: strawberry.ID
    effective_date: dt.date


@strawberry.input(description="Close a unit from a date.")
class CloseOrgUnitInput:
    id: strawberry.ID
    effective_date: dt.date


@strawberry.type(description="Result of an org unit mutation.")
class OrgUnitPayload:
    org_unit: OrgUnit | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A new position.")
class CreatePositionInput:
    title: str
    org_unit_id: strawberry.ID
    opened_on: dt.date
    job_level_id: strawberry.ID | None = None
    reports_to_id: strawberry.ID | None = None
    headcount: int = 1
    code: str | None = None


@strawberry.type(description="Result of `createPosition`.")
class PositionPayload:
    position: Position | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrganisationMutations:
    @strawberry.mutation(description="Create a branch (admin, hr).")
    async def create_branch(self, info: Ctx, input: CreateBranchInput) -> BranchPayload:
        context = info.context

        async def run() -> Branch:
            row = await actions.create_branch(
                context.require_viewer(),
                code=input.code,
                name=input.name,
                country=input.country,
                currency=input.currency,
                time_zone_name=input.time_zone,
                locale=input.locale,
                address=input.address,
                parent_id=decode_optional(input.parent_id, "Branch", context, "parentId"),
            )
            return Branch.from_row(row, context)

        branch, errors = await attempt(context, run)
        return BranchPayload(branch=branch, user_errors=errors)

    @strawberry.mutation(description="Create a job level (admin, hr).")
    async def create_job_level(
        self,
        info: Ctx,
        input: CreateJobLevelInput,
    ) -> JobLevelPayload:
        context = info.context

        async def run() -> JobLevel:
            row = await actions.create_job_level(
                context.require_viewer(),
                code=input.code,
                rank=input.rank,
                title=input.title,
                pay_min=input.pay_min,
                pay_max=input.pay_max,
                pay_currency=input.pay_currency,
            )
            return JobLevel.from_row(row, context)

        level, errors = await attempt(context, run)
        return JobLevelPayload(job_level=level, user_errors=errors)

    @strawberry.mutation(description="Create an org unit from a date (admin, hr).")
    async def create_org_unit(
        self,
        info: Ctx,
        input: CreateOrgUnitInput,
    ) -> OrgUnitPayload:
        context = info.context

        async def run() -> OrgUnit | None:
            row = await actions.create_org_unit(
                context.require_viewer(),
                name=input.name,
                kind=input.kind,
                branch_id=decode_id(input.branch_id, "Branch", context, "branchId"),
                effective_date=input.effective_date,
                parent_id=decode_optional(input.parent_id, "OrgUnit", context, "parentId"),
                cost_centre=input.cost_centre,
                code=input.code,
            )
            return await load_unit(context, row.id, input.effective_date)

        unit, errors = await attempt(context, run)
        return OrgUnitPayload(org_unit=unit, user_errors=errors)

    @strawberry.mutation(description="Rename a unit, or change its cost centre or head.")
    async def update_org_unit(
        self,
        info: Ctx,
        input: UpdateOrgUnitInput,
    ) -> OrgUnitPayload:
        context = info.context

        async def run() -> OrgUnit | None:
            unit_id = decode_id(input.id, "OrgUnit", context, "id")
            await actions.update_org_unit(
                context.require_viewer(),
                unit_id,
                effective_date=input.effective_date,
                name=input.name,
                cost_centre=input.cost_centre,
                head_position_id=decode_optional(
                    input.head_position_id, "Position", context, "headPositionId"
                ),
            )
            return await load_unit(context, unit_id, input.effective_date)

        unit, errors = await attempt(context, run)
        return OrgUnitPayload(org_unit=unit, user_errors=errors)

    @strawberry.mutation(description="Move a unit and its subtree under a new parent.")
    async def move_org_unit(
        self,
        info: Ctx,
        input: MoveOrgUnitInput,
    ) -> OrgUnitPayload:
        context = info.context

        async def run() -> OrgUnit | None:
            unit_id = decode_id(input.id, "OrgUnit", context, "id")
            await actions.move_org_unit(
                context.require_viewer(),
                unit_id,
                new_parent_id=decode_id(input.new_parent_id, "OrgUnit", context, "newParentId"),
                effective_date=input.effective_date,
            )
            return await load_unit(context, unit_id, input.effective_date)

        unit, errors = await attempt(context, run)
        return OrgUnitPayload(org_unit=unit, user_errors=errors)

    @strawberry.mutation(description="Close a unit from a date.")
    async def close_org_unit(
        self,
        info: Ctx,
        input: CloseOrgUnitInput,
    ) -> OrgUnitPayload:
        context = info.context

        async def run() -> OrgUnit | None:
            unit_id = decode_id(input.id, "OrgUnit", context, "id")
            await actions.close_org_unit(
                context.require_viewer(), unit_id, effective_date=input.effective_date
            )
            return await load_unit(context, unit_id, input.effective_date - dt.timedelta(days=1))

        unit, errors = await attempt(context, run)
        return OrgUnitPayload(org_unit=unit, user_errors=errors)

    @strawberry.mutation(description="Create a position (admin, hr).")
    async def create_position(
        self,
        info: Ctx,
        input: CreatePositionInput,
    ) -> PositionPayload:
        context = info.context

        async def run() -> Position:
            row = await actions.create_position(
                context.require_viewer(),
                title=input.title,
                org_unit_id=decode_id(input.org_unit_id, "OrgUnit", context, "orgUnitId"),
                opened_on=input.opened_on,
                job_level_id=decode_optional(input.job_level_id, "JobLevel", context, "jobLevelId"),
                reports_to_id=decode_optional(
                    input.reports_to_id, "Position", context, "reportsToId"
                ),
                headcount=input.headcount,
                code=input.code,
            )
            return Position.from_row(row, context)

        position, errors = await attempt(context, run)
        return PositionPayload(position=position, user_errors=errors)
