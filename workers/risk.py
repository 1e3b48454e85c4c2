"""The nightly advance-risk scoring of one tenant, as the scheduler fans it out."""

from __future__ import annotations

import logging

from domain.analytics.scoring import score_employees
from workers.actors import actor

log = logging.getLogger(__name__)

QUEUE = "risk"


@actor("risk.rescore_all", queue_name=QUEUE, scheduled=True)
async def rescore_all() -> None:
    """Score every employee of the message's tenant as of its today.

    Re-running the same night stores another row per employee and raises no second
    alert: an alert is raised only when the band rises above the previous score's.
    """
    report = await score_employees()
    log.info(
        "Nightly risk scoring: %d employees in %.1f s, %d alerts raised.",
        report.scored,
        report.seconds,
        report.alerts_raised,
    )
