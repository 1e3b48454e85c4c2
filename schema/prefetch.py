"""Look ahead at what a page of employees selects and fetch it with the page.

A page of 100 employees with branch, org unit, position, job level and manager would
otherwise resolve five relations per row through DataLoaders: correct, but each row and
field pays for a coroutine and a future. Here the page's transaction fetches the selected
branches, positions, job levels and org units in one query, the managers in two more
(who, then their records as the viewer may see them), and each related object is built
once per request.
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
        managers = await org.managers_of_positions(session, positions, day)
        manager_ids = sorted(set(managers.values()))
        viewer, tenant = context.require_viewer(), context.require_tenant()
        found = await people.employees_by_id(session, tenant, viewer, manager_ids, day)
        built_people = {
            record.id: Employee.from_record(record, context) for record in found if record
        }
        for bundle, record in zip(bundles, records, strict=True):
            manager_id = managers.get(record.position_id) if record.position_id else None
            bundle["manager"] = built_people.get(manager_id) if manager_id else None
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
