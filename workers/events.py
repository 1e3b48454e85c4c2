"""Consumers of the domain events that actions record in the outbox.

Each handles a message once per idempotency key (`workers.idempotency`), so the
duplicates the relay may send change nothing.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain import notifications
from tenants.binding import tenant_session
from workers.actors import actor
from workers.idempotency import first_time

log = logging.getLogger(__name__)

EVENTS_QUEUE = "events"


@actor("advance.changed", queue_name=EVENTS_QUEUE)
async def advance_changed(
    advance_id: str, employee_id: str, status: str, change: str, idempotency_key: str
) -> None:
    """Money moved on an advance (disbursed, settled, written off...)."""
    async with tenant_session() as session:
        if not await _first_time(session, idempotency_key, "advance.changed"):
            return
        # TODO(#6): re-score the employee's risk here; analytics consumes this event.
        log.debug("Advance %s is now %s (%s).", advance_id, status, change)


@actor("employee.offboarding", queue_name=EVENTS_QUEUE)
async def employee_offboarding(
    employee_id: str,
    case_id: str,
    kind: str,
    status: str,
    last_working_day: str,
    idempotency_key: str,
) -> None:
    """An exit opened or completed."""
    async with tenant_session() as session:
        if not await _first_time(session, idempotency_key, "employee.offboarding"):
            return
        # TODO(#6): re-score the employee's risk on resignation; analytics consumes this.
        log.debug("Offboarding case %s of %s is %s.", case_id, employee_id, status)


@actor("approval.requested", queue_name=EVENTS_QUEUE)
async def approval_requested(step_id: str, advance_id: str, idempotency_key: str) -> None:
    """An approval step's turn has come: its approvers are told (once each, by key)."""
    written = await notifications.notify_approval_requested(uuid.UUID(step_id))
    log.debug("Told %d approver(s) of step %s of advance %s.", len(written), step_id, advance_id)


async def _first_time(session: AsyncSession, key: str, actor_name: str) -> bool:
    if await first_time(session, key, actor_name):
        return True
    log.debug("Skipping %s: already handled.", key)
    return False
