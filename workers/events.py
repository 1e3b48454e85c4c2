"""Consumers of the domain events that actions record in the outbox.

Each handles a message once per idempotency key (`workers.idempotency`), so the
duplicates the relay may send change nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from domain import clock, notifications
from domain.analytics.scoring import score_in
from tenants.binding import tenant_session
from tenants.context import current_tenant
from workers.actors import actor, parse_uuid
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
        log.debug("Advance %s is now %s (%s).", advance_id, status, change)
        await _rescore(session, employee_id)


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
        log.debug("Offboarding case %s of %s is %s.", case_id, employee_id, status)
        await _rescore(session, employee_id)


@actor("employee.reviewed", queue_name=EVENTS_QUEUE)
async def employee_reviewed(employee_id: str, review_id: str, idempotency_key: str) -> None:
    """A performance review was recorded."""
    async with tenant_session() as session:
        if not await _first_time(session, idempotency_key, "employee.reviewed"):
            return
        await _rescore(session, employee_id)


@actor("approval.requested", queue_name=EVENTS_QUEUE)
async def approval_requested(step_id: str, advance_id: str, idempotency_key: str) -> None:
    """An approval step's turn has come: its approvers are told (once each, by key)."""
    written = await notifications.notify_approval_requested(parse_uuid(step_id, "step_id"))
    log.debug("Told %d approver(s) of step %s of advance %s.", len(written), step_id, advance_id)


async def _rescore(session: AsyncSession, employee_id: str) -> None:
    """Re-score the employee's advance risk as of the tenant's today, in the transaction
    that marks the message handled: a redelivery neither scores twice nor loses a score."""
    day = clock.local_today(current_tenant().time_zone)
    await score_in(session, day, [parse_uuid(employee_id, "employee_id")])


async def _first_time(session: AsyncSession, key: str, actor_name: str) -> bool:
    if await first_time(session, key, actor_name):
        return True
    log.debug("Skipping %s: already handled.", key)
    return False
