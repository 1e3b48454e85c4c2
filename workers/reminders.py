"""The reminder scan of one tenant, as the scheduler fans it out every hour, and the
sweep of its e-mails left unsent."""

from __future__ import annotations

import logging

from domain import notifications, reminders
from workers.actors import actor, parse_instant

log = logging.getLogger(__name__)

QUEUE = "reminders"


@actor("reminders.scan", queue_name=QUEUE, scheduled=True)
async def scan(at: str) -> None:
    """Send the reminders due at the instant `at` (ISO 8601, with its offset)."""
    report = await reminders.send_reminders(parse_instant(at, "at"))
    if report.sent:
        log.info("The reminder scan at %s wrote %d notification(s).", at, report.sent)
    # Hourly is often enough to find e-mails whose message was lost, as when it was
    # dropped while the tenant was suspended.
    requeued = await notifications.requeue_stale_emails()
    if requeued:
        log.info("Queued %d unsent e-mail(s) again.", requeued)
