"""The nested org chart, built in three queries whatever its size."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

from sqlalchemy import func, select

from domain.organisation.models import OrgUnit as OrgUnitRow
from domain.organisation.models import OrgUnitVersion
from domain.organisation.queries import HOLDING_STATUSES, in_force
from domain.people.models import EmployeePeriod
from schema.context import RequestContext
from schema.organisation import OrgChartNode, OrgUnit
from tenants.binding import tenant_session


async def build_chart(
    context: RequestContext, root: uuid.UUID | None, depth: int, day: dt.date
) -> list[OrgChartNode]:
    async with tenant_session() as session:
        rows = list(
            await session.execute(
                select(OrgUnitVersion, OrgUnitRow.kind, OrgUnitRow.code)
                .join(OrgUnitRow, OrgUnitRow.id == OrgUnitVersion.org_unit_id)
                .where(in_force(OrgUnitVersion, day))
            )
        )
        staffed = await session.execute(
            select(EmployeePeriod.org_unit_id, func.count())
            .where(in_force(EmployeePeriod, day), EmployeePeriod.status.in_(HOLDING_STATUSES))
            .group_by(EmployeePeriod.org_unit_id)
        )
        counts = {unit_id: int(n) for unit_id, n in staffed}
    units = {
        version.org_unit_id: OrgUnit.from_version(version, kind, code, day, context)
        for version, kind, code in rows
    }
    children: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
    for unit in units.values():
        parent = unit.parent_pk if unit.parent_pk in units else None
        children[parent].append(unit.pk)

    totals: dict[uuid.UUID, int] = {}

    def total(unit_id: uuid.UUID) -> int:
        if unit_id not in totals:
            totals[unit_id] = counts.get(unit_id, 0) + sum(total(c) for c in children[unit_id])
        return totals[unit_id]

    def node(unit_id: uuid.UUID, remaining: int) -> OrgChartNode:
        below = sorted(children[unit_id], key=lambda c: (units[c].name, str(c)))
        return OrgChartNode(
            unit=units[unit_id],
            headcount=total(unit_id),
            children=[node(c, remaining - 1) for c in below] if remaining > 0 else [],
        )

    if root is not None:
        return [node(root, depth)] if root in units else []
    tops = sorted(children[None], key=lambda c: (units[c].name, str(c)))
    return [node(unit_id, depth) for unit_id in tops]
