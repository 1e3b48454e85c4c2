"""Reads of the organisation as of a date: trees, reporting lines and incumbents."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    Date,
    Select,
    TextualSelect,
    Uuid,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from domain.organisation.models import Branch, JobLevel, OrgUnit, OrgUnitVersion, Position
from domain.people.models import Employee, EmployeePeriod

# People who hold a position on a day: anyone not yet gone.
HOLDING_STATUSES = ("onboarding", "active", "on_leave", "offboarding")


def in_force(model: type[OrgUnitVersion] | type[EmployeePeriod], day: dt.date):  # type: ignore[no-untyped-def]
    """The condition "this interval covers `day`" for a versioned table."""
    return and_(model.valid_from <= day, or_(model.valid_to.is_(None), model.valid_to > day))


def unit_versions_on(day: dt.date) -> Select[tuple[OrgUnitVersion]]:
    return select(OrgUnitVersion).where(in_force(OrgUnitVersion, day))


async def subtree_unit_ids(
    session: AsyncSession, root_ids: Sequence[uuid.UUID], day: dt.date
) -> set[uuid.UUID]:
    """The units under `root_ids` (included) on `day`, at any depth."""
    if not root_ids:
        return set()
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE tree(id) AS (
              SELECT org_unit_id FROM org_unit_versions
               WHERE org_unit_id = ANY(:roots)
                 AND valid_from <= :day AND (valid_to IS NULL OR valid_to > :day)
              UNION
              SELECT v.org_unit_id FROM org_unit_versions v JOIN tree t ON v.parent_id = t.id
               WHERE v.valid_from <= :day AND (v.valid_to IS NULL OR v.valid_to > :day)
            )
            SELECT id FROM tree
            """
        ),
        {"roots": list(root_ids), "day": day},
    )
    return {row[0] for row in rows}


async def incumbents(
    session: AsyncSession, position_ids: Iterable[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, list[tuple[str, uuid.UUID]]]:
    """Holders of each position on `day` as (employee number, id), ordered by number."""
    ids = list(set(position_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(EmployeePeriod.position_id, Employee.employee_number, Employee.id)
        .join(Employee, Employee.id == EmployeePeriod.employee_id)
        .where(
            EmployeePeriod.position_id.in_(ids),
            in_force(EmployeePeriod, day),
            EmployeePeriod.status.in_(HOLDING_STATUSES),
        )
        .order_by(Employee.employee_number)
    )
    holders: dict[uuid.UUID, list[tuple[str, uuid.UUID]]] = defaultdict(list)
    for position_id, number, employee_id in rows:
        holders[position_id].append((number, employee_id))
    return holders


async def managers_of_positions(
    session: AsyncSession, position_ids: Iterable[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, uuid.UUID]:
    """For each position, the employee who manages its holders on `day`.

    That is the holder of the position it reports to; a vacant position passes the
    question up the line. Among several holders the lowest employee number wins, as in
    `incumbents`. One query, whatever the number of positions.
    """
    ids = list(set(position_ids))
    if not ids:
        return {}
    rows = await session.execute(managers_statement(ids, day))
    return {start_id: manager_id for start_id, manager_id in rows}


def managers_statement(position_ids: Sequence[uuid.UUID], day: dt.date) -> TextualSelect:
    """The rows (start_id, manager_id) of `managers_of_positions`, to run or to join to.

    Its values are bound under names of their own, so a statement that joins it may bind
    its own `day`.
    """
    return (
        text(_MANAGERS_SQL)
        .bindparams(
            bindparam("ids", list(position_ids), unique=True),
            bindparam("day", day, unique=True),
            bindparam("holding", list(HOLDING_STATUSES), unique=True),
        )
        .columns(column("start_id", Uuid()), column("manager_id", Uuid()))
    )


_MANAGERS_SQL = """
WITH RECURSIVE chain(start_id, position_id, depth) AS (
  SELECT id, reports_to_id, 1 FROM positions
   WHERE id = ANY(:ids) AND reports_to_id IS NOT NULL
  UNION ALL
  SELECT c.start_id, p.reports_to_id, c.depth + 1
    FROM chain c JOIN positions p ON p.id = c.position_id
   WHERE p.reports_to_id IS NOT NULL AND c.depth < 64
)
SELECT DISTINCT ON (c.start_id) c.start_id, e.id AS manager_id
  FROM chain c
  JOIN employee_periods ep ON ep.position_id = c.position_id
       AND ep.valid_from <= :day AND (ep.valid_to IS NULL OR ep.valid_to > :day)
       AND ep.status = ANY(:holding)
  JOIN employees e ON e.id = ep.employee_id
 ORDER BY c.start_id, c.depth, e.employee_number
"""


async def positions_below(
    session: AsyncSession, position_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Every position under `position_ids` at any depth, mapped to what it reports to."""
    if not position_ids:
        return {}
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE below(id, reports_to_id, depth) AS (
              SELECT id, reports_to_id, 1 FROM positions WHERE reports_to_id = ANY(:ids)
              UNION ALL
              SELECT p.id, p.reports_to_id, b.depth + 1
                FROM positions p JOIN below b ON p.reports_to_id = b.id
               WHERE b.depth < 64
            )
            SELECT id, reports_to_id FROM below
            """
        ),
        {"ids": list(position_ids)},
    )
    return {row[0]: row[1] for row in rows}


async def reporting_line(
    session: AsyncSession, employee_id: uuid.UUID, day: dt.date
) -> set[uuid.UUID]:
    """Employees anywhere below `employee_id`'s position on `day` (not the employee)."""
    own = await session.scalar(
        select(EmployeePeriod.position_id).where(
            EmployeePeriod.employee_id == employee_id, in_force(EmployeePeriod, day)
        )
    )
    if own is None:
        return set()
    below = await positions_below(session, [own])
    holders = await incumbents(session, below.keys(), day)
    return {eid for found in holders.values() for _, eid in found} - {employee_id}


async def direct_reports(
    session: AsyncSession, employee_id: uuid.UUID, day: dt.date
) -> list[uuid.UUID]:
    """Employees whose manager on `day` is `employee_id` (through vacant positions too)."""
    own = await session.scalar(
        select(EmployeePeriod.position_id).where(
            EmployeePeriod.employee_id == employee_id, in_force(EmployeePeriod, day)
        )
    )
    if own is None:
        return []
    below = await positions_below(session, [own])
    holders = await incumbents(session, below.keys(), day)
    children: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
    for position_id, parent in below.items():
        children[parent].append(position_id)
    reports: list[tuple[str, uuid.UUID]] = []
    stack = list(children[own])
    while stack:
        position_id = stack.pop()
        found = [h for h in holders.get(position_id, []) if h[1] != employee_id]
        if found:
            reports.extend(found)
        else:
            stack.extend(children[position_id])  # vacant: its reports come up to us
    return [eid for _, eid in sorted(set(reports))]


async def branches_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Branch]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {b.id: b for b in await session.scalars(select(Branch).where(Branch.id.in_(wanted)))}


async def positions_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Position]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(Position).where(Position.id.in_(wanted)))
    return {p.id: p for p in rows}


async def job_levels_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, JobLevel]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(JobLevel).where(JobLevel.id.in_(wanted)))
    return {j.id: j for j in rows}


async def unit_versions_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, OrgUnitVersion]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(
        unit_versions_on(day).where(OrgUnitVersion.org_unit_id.in_(wanted))
    )
    return {v.org_unit_id: v for v in rows}


class Refs(NamedTuple):
    """What one record (an employee on a day, an event) points at in the organisation."""

    branch_id: uuid.UUID | None
    position_id: uuid.UUID | None
    job_level_id: uuid.UUID | None
    org_unit_id: uuid.UUID | None


@dataclasses.dataclass
class Referenced:
    """The rows a list of `Refs` names, by id; units as (version on the day, kind, code)."""

    branches: dict[uuid.UUID, Branch] = dataclasses.field(default_factory=dict)
    positions: dict[uuid.UUID, Position] = dataclasses.field(default_factory=dict)
    job_levels: dict[uuid.UUID, JobLevel] = dataclasses.field(default_factory=dict)
    units: dict[uuid.UUID, tuple[OrgUnitVersion, str, str | None]] = dataclasses.field(
        default_factory=dict
    )


async def referenced(
    session: AsyncSession,
    refs: Iterable[Refs],
    day: dt.date,
    *,
    branches: bool = True,
    positions: bool = True,
    job_levels: bool = True,
    units: bool = True,
) -> Referenced:
    """Branches, positions, job levels and unit versions on `day` named by `refs`.

    One query for all four (the `*_by_id` functions take one each): the distinct refs are
    unnested into rows and each kind is outer-joined to them, so a page of 100 records
    pointing at a handful of teams reads a handful of rows.
    """
    distinct = list(set(refs))
    found = Referenced()
    asked = (branches, positions, job_levels, units)
    if not any(any(ref[i] for ref in distinct) for i, on in enumerate(asked) if on):
        return found
    bound: dict[str, Any] = {name: [ref[i] for ref in distinct] for i, name in _REFS}
    if units:
        bound["day"] = day
    for row in await session.execute(_referenced_query(*asked), bound):
        values = iter(row)
        if branches and (branch := next(values)) is not None:
            found.branches[branch.id] = branch
        if positions and (position := next(values)) is not None:
            found.positions[position.id] = position
        if job_levels and (level := next(values)) is not None:
            found.job_levels[level.id] = level
        if units:
            version, kind, code = next(values), next(values), next(values)
            if version is not None:
                found.units[version.org_unit_id] = (version, kind, code)
    return found


@functools.cache
def _referenced_query(
    branches: bool, positions: bool, job_levels: bool, units: bool
) -> Select[Any]:
    """The statement of `referenced` for the kinds asked, with the refs and the day bound
    when it runs; built once per combination, as building it cost more than running it
    through SQLAlchemy's compiled cache."""
    uuids = ARRAY(Uuid())
    table = (
        func.unnest(*(bindparam(name, type_=uuids) for _, name in _REFS))
        .table_valued(*(column(name, Uuid()) for _, name in _REFS))
        .render_derived(name="refs")
    )
    entities: list[Any] = []
    joins: list[tuple[Any, Any]] = []
    if branches:
        entities.append(Branch)
        joins.append((Branch, Branch.id == table.c.branch_id))
    if positions:
        entities.append(Position)
        joins.append((Position, Position.id == table.c.position_id))
    if job_levels:
        entities.append(JobLevel)
        joins.append((JobLevel, JobLevel.id == table.c.job_level_id))
    if units:
        entities += [OrgUnitVersion, OrgUnit.kind, OrgUnit.code]
        day = bindparam("day", type_=Date())
        version_on_day = and_(
            OrgUnitVersion.org_unit_id == table.c.org_unit_id, in_force(OrgUnitVersion, day)
        )
        joins.append((OrgUnitVersion, version_on_day))
        joins.append((OrgUnit, OrgUnit.id == OrgUnitVersion.org_unit_id))
    query = select(*entities).select_from(table)
    for target, condition in joins:
        query = query.outerjoin(target, condition)
    return query


_REFS = tuple(enumerate(Refs._fields))
