"""E-mail for notifications, through SMTP.

Transient failures (no connection, a timeout, a 4xx reply) are retried by Dramatiq's
Retries middleware, with a doubling wait; permanent ones (a 5xx reply: unknown mailbox,
refused sender) are recorded on the notification and not retried. After
`smtp_max_attempts` transient failures the e-mail is recorded as failed too.

Before the SMTP conversation the worker takes a lease on the notification's e-mail
(`domain.notifications.claim_email`), committed at once: a copy of the message that runs
meanwhile (a duplicate, a redelivery) finds the lease and looks again once it has ended,
by when the e-mail is marked sent. The send is cut off before the lease ends.

NOTE: SMTP has no idempotency: a worker that dies after the server accepted a message and
before recording it sends that e-mail again once its lease has expired and the message is
redelivered. Everything else (a duplicate message, a replay) sends nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from email.message import EmailMessage

import aiosmtplib
from dramatiq.errors import Retry

from domain import notifications
from renshi.settings import Settings, get_settings
from workers.actors import actor, parse_uuid
from workers.middleware import should_retry

log = logging.getLogger(__name__)

QUEUE = "notifications"


# An SMTP conversation has a few round trips, each allowed `smtp_timeout` seconds; the whole
# send is cut off after SEND_BUDGET of them, and the lease outlives that by a margin.
SEND_BUDGET = 4
LEASE_MARGIN = dt.timedelta(seconds=30)
MAX_RETRY_WAIT = dt.timedelta(hours=1)


class TransientEmailError(Retry):
    """Raised when an e-mail may go through later; Retries waits `delay` ms, then retries."""


class EmailBeingSent(Retry):
    """Raised when another worker holds the e-mail's lease: look again once it ends."""


def retry_when(retries: int, exception: BaseException) -> bool:
    """Transient SMTP failures are retried (their count is kept on the notification), as is
    a message that found its e-mail being sent; other failures as any actor's are."""
    if isinstance(exception, TransientEmailError | EmailBeingSent):
        return True
    return should_retry(retries, exception)


@actor(notifications.SEND_EMAIL, queue_name=QUEUE, retry_when=retry_when)
async def send_email(notification_id: str, idempotency_key: str) -> None:
    settings = get_settings()
    budget = SEND_BUDGET * settings.smtp_timeout
    lease = dt.timedelta(seconds=budget) + LEASE_MARGIN
    email = await notifications.claim_email(parse_uuid(notification_id, "notification_id"), lease)
    if email is None:
        return  # sent, given up, or nobody to send it to
    if isinstance(email, notifications.Claimed):
        # A copy of this message (a duplicate, a redelivery) is sending it right now.
        wait = max(email.until - dt.datetime.now(dt.UTC), dt.timedelta()) + dt.timedelta(seconds=1)
        log.info(
            "E-mail of notification %s is being sent elsewhere; looking again later.",
            notification_id,
        )
        raise EmailBeingSent(f"e-mail of {notification_id} is being sent", delay=_ms(wait))
    try:
        async with asyncio.timeout(budget):
            await aiosmtplib.send(
                compose(email, settings),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_user,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
    except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
        permanent = is_permanent(exc)
        retry_in = min(
            dt.timedelta(seconds=settings.smtp_retry_seconds * 2**email.attempts), MAX_RETRY_WAIT
        )
        again = await notifications.email_failed(
            email.notification_id,
            f"{type(exc).__name__}: {exc}",
            permanent=permanent,
            max_attempts=settings.smtp_max_attempts,
            retry_in=retry_in,
        )
        if again:
            log.info("E-mail of notification %s failed for now; retrying.", notification_id)
            raise TransientEmailError(str(exc), delay=_ms(retry_in)) from exc
        log.warning(
            "E-mail of notification %s failed for good (%s).",
            notification_id,
            "refused" if permanent else "too many attempts",
        )
        return
    await notifications.email_sent(email.notification_id)


def _ms(wait: dt.timedelta) -> int:
    return int(wait.total_seconds() * 1000)


def compose(email: notifications.Email, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = f"<{email.notification_id}@renshi>"
    message.set_content(email.body)
    return message


def is_permanent(exc: BaseException) -> bool:
    """A 5xx reply is final; anything else (4xx, no answer, no connection) may pass later."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    return False
