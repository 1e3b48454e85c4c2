"""The nightly advance-risk scoring of one tenant, as the scheduler fans it out."""

from __future__ import annotations

import logging

from domain.analytics.advance_model import queue_training_if_due
from domain.analytics.scoring import score_employees
from workers.actors import actor

log = logging.getLogger(__name__)

QUEUE = "risk"


@actor("risk.rescore_all", queue_name=QUEUE, scheduled=True)
async def rescore_all() -> None:
    """Score every employee of the message's tenant as of its today, then queue the
    training of its advance-risk model if one is due (none yet, or a month old, and enough
    advances gone bad to learn from): the next night scores with it.

    Re-running the same night stores another row per employee and raises no second
    alert: an alert is raised only when the band rises above the previous score's.
    """
    report = await score_employees()
    await queue_training_if_due(report.as_of)
    log.info(
        "Nightly risk scoring: %d employees in %.1f s, %d alerts raised.",
        report.scored,
        report.seconds,
        report.alerts_raised,
    )
