"""Per-request DataLoaders over domain queries. Each batch is one tenant transaction.

Loaders live in the request context, so nothing cached here outlives a request or
crosses tenants; employee loaders also carry the viewer, who decides what each row shows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from domain.advances import queries as advances
from domain.organisation import queries as org
from domain.people import queries as people
from schema.context import RequestContext
from tenants.binding import tenant_session


def branches(context: RequestContext) -> DataLoader[uuid.UUID, Any]:
    async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.branches_by_id(session, ids)
        return [found.get(i) for i in ids]

    return context.loader("branches", load)


def positions(context: RequestContext) -> DataLoader[uuid.UUID, Any]:
    async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.positions_by_id(session, ids)
        return [found.get(i) for i in ids]

    return context.loader("positions", load)


def job_levels(context: RequestContext) -> DataLoader[uuid.UUID, Any]:
    async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.job_levels_by_id(session, ids)
        return [found.get(i) for i in ids]

    return context.loader("job_levels", load)


def org_units(context: RequestContext, day: dt.date) -> DataLoader[uuid.UUID, Any]:
    """Org unit versions in force on `day`, by unit id."""

    async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.unit_versions_by_id(session, ids, day)
        return [found.get(i) for i in ids]

    return context.loader(("org_units", day), load)


def employees(context: RequestContext, day: dt.date) -> DataLoader[uuid.UUID, Any]:
    """Employee records as of `day`, redacted for the request's viewer."""
    viewer = context.require_viewer()
    tenant = context.require_tenant()

    async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            return await people.employees_by_id(session, tenant, viewer, ids, day)

    return context.loader(("employees", day), load)


def managers(context: RequestContext, day: dt.date) -> DataLoader[uuid.UUID, Any]:
    """The managing employee's id for each position, as of `day`."""

    async def load(position_ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.managers_of_positions(session, position_ids, day)
        return [found.get(i) for i in position_ids]

    return context.loader(("managers", day), load)


def incumbents(context: RequestContext, day: dt.date) -> DataLoader[uuid.UUID, Any]:
    """Holders' employee ids for each position, as of `day`."""

    async def load(position_ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await org.incumbents(session, position_ids, day)
        return [[eid for _, eid in found.get(i, [])] for i in position_ids]

    return context.loader(("incumbents", day), load)


def credit_profiles(context: RequestContext) -> DataLoader[uuid.UUID, Any]:
    """Employees' credit profiles, a page's requesters in one batch. Callers decide who
    may see a profile before they ask for it."""

    async def load(employee_ids: Sequence[uuid.UUID]) -> list[Any]:
        async with tenant_session() as session:
            found = await advances.credit_profiles(session, employee_ids)
        return [found[i] for i in employee_ids]

    return context.loader("credit_profiles", load)
