"""Who may not be terminated by anything but a completed offboarding case.

An employee who holds an open advance (requested, approved or with money out) or whose
offboarding case is open leaves only by completing that case, which checks the clearance
list. Every other writer of a termination (`record_event`, the importers) asks here first
and refuses with a clear error; the database trigger `employee_exit_gate` refuses the
same terminations for whatever forgets to ask.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advances.models import OPEN_STATUSES, Advance, OffboardingCase
from domain.errors import DomainError
from i18n import N_

OPEN_ADVANCES = "open_advances"
OFFBOARDING_OPEN = "offboarding_open"


class OwesAdvances(DomainError):
    """Raised when a termination other than offboarding meets an open advance."""

    code = "OUTSTANDING_ADVANCES"


class OffboardingInProgress(DomainError):
    """Raised when a termination other than completing the open offboarding case is tried."""

    code = "CLEARANCE_OPEN"


async def exit_blockers(
    session: AsyncSession, employee_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Of these employees, those who may leave only through offboarding, and why
    (an open advance weighs more than an open case); two queries whatever their number."""
    if not employee_ids:
        return {}
    ids = list(employee_ids)
    found: dict[uuid.UUID, str] = dict.fromkeys(
        await session.scalars(
            select(OffboardingCase.employee_id).where(
                OffboardingCase.employee_id.in_(ids), OffboardingCase.status == "open"
            )
        ),
        OFFBOARDING_OPEN,
    )
    found |= dict.fromkeys(
        await session.scalars(
            select(Advance.employee_id)
            .where(Advance.employee_id.in_(ids), Advance.status.in_(OPEN_STATUSES))
            .distinct()
        ),
        OPEN_ADVANCES,
    )
    return found


def refusal(reason: str, *, field: str | None = None) -> DomainError:
    """The error telling why a termination outside offboarding is refused."""
    if reason == OPEN_ADVANCES:
        return OwesAdvances(
            N_(
                "The employee has open advances; only a completed offboarding case can "
                "terminate them."
            ),
            field=field,
        )
    return OffboardingInProgress(
        N_("The employee's offboarding is in progress; complete it to terminate them."),
        field=field,
    )


async def require_open_exit(session: AsyncSession, employee_id: uuid.UUID) -> None:
    """Refuse a termination of `employee_id` outside offboarding when the gate holds them."""
    reason = (await exit_blockers(session, [employee_id])).get(employee_id)
    if reason is not None:
        raise refusal(reason, field="employeeId")
