"""Look ahead at what a page of employees selects and fetch it with the page.

A page of 100 employees with branch, org unit, position, job level and manager would
otherwise resolve five relations per row through DataLoaders: correct, but each row and
field pays for a coroutine and a future. Here the page's transaction fetches the selected
branches, positions, job levels and org units in one query, the managers with their
records as the viewer may see them in one more, and each related object is built once
per request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from domain.organisation import queries as org
from domain.people import queries as people
from domain.people.queries import EmployeeRecord
from schema.context import RequestContext
from schema.organisation import Branch, JobLevel, OrgUnit, Position

RELATIONS = ("branch", "orgUnit", "position", "jobLevel", "manager")


def fields_at(selections: Iterable[Selection], path: Sequence[str]) -> set[str]:
    """Names of the fields selected at `path` below `selections`, through fragments."""
    found: set[str] = set()
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            found |= fields_at(selection.selections, path)
        elif isinstance(selection, SelectedField):
            if not path:
                found.add(selection.name)
            elif selection.name == path[0]:
                found |= fields_at(selection.selections, path[1:])
    return found


async def prefetch(
    context: RequestContext,
    session: AsyncSession,
    records: Sequence[EmployeeRecord],
    wanted: set[str],
    day: dt.date,
) -> list[dict[str, object]]:
    """For each record, the selected relations as ready GraphQL objects."""
    from schema.people import Employee

    wanted = wanted & set(RELATIONS)
    bundles: list[dict[str, object]] = [{} for _ in records]
    if not wanted or not records:
        return bundles

    related = await org.referenced(
        session,
        (org.Refs(r.branch_id, r.position_id, r.job_level_id, r.org_unit_id) for r in records),
        day,
        branches="branch" in wanted,
        positions="position" in wanted,
        job_levels="jobLevel" in wanted,
        units="orgUnit" in wanted,
    )
    if "branch" in wanted:
        built = {pk: Branch.from_row(row, context) for pk, row in related.branches.items()}
        _fill(bundles, records, "branch", "branch_id", built)
    if "position" in wanted:
        built = {pk: Position.from_row(row, context) for pk, row in related.positions.items()}
        _fill(bundles, records, "position", "position_id", built)
    if "jobLevel" in wanted:
        built = {pk: JobLevel.from_row(row, context) for pk, row in related.job_levels.items()}
        _fill(bundles, records, "job_level", "job_level_id", built)
    if "orgUnit" in wanted:
        built = {
            pk: OrgUnit.from_version(version, kind, code, day, context)
            for pk, (version, kind, code) in related.units.items()
        }
        _fill(bundles, records, "org_unit", "org_unit_id", built)
    if "manager" in wanted:
        positions = {r.position_id for r in records if r.position_id is not None}
        viewer, tenant = context.require_viewer(), context.require_tenant()
        managers = await people.managers_by_position(session, tenant, viewer, positions, day)
        built_people: dict[uuid.UUID, Employee] = {}  # one object per manager
        for bundle, record in zip(bundles, records, strict=True):
            manager = managers.get(record.position_id) if record.position_id else None
            if manager is not None and manager.id not in built_people:
                built_people[manager.id] = Employee.from_record(manager, context)
            bundle["manager"] = built_people[manager.id] if manager else None
    return bundles


def _fill(
    bundles: list[dict[str, object]],
    records: Sequence[EmployeeRecord],
    key: str,
    attribute: str,
    built: dict[uuid.UUID, Any],
) -> None:
    for bundle, record in zip(bundles, records, strict=True):
        pk = getattr(record, attribute)
        bundle[key] = built.get(pk) if pk is not None else None
