"""Reads of the identity area, filtered by what the viewer may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from domain.identity.actions import Viewer
from domain.identity.models import User
from tenants.binding import tenant_session

# Roles that may look up any user of their tenant.
USER_DIRECTORY_ROLES = ("admin", "hr", "auditor")


async def users_by_id(viewer: Viewer, ids: Sequence[uuid.UUID]) -> list[User | None]:
    """Users in the order of `ids`; None for missing ones and for ones the viewer may not see."""
    visible = set(ids) if viewer.has_any_role(*USER_DIRECTORY_ROLES) else {viewer.id} & set(ids)
    if not visible:
        return [None] * len(ids)
    async with tenant_session() as session:
        rows = await session.scalars(select(User).where(User.id.in_(visible)))
        found = {user.id: user for user in rows}
    return [found.get(user_id) for user_id in ids]
