"""E-mail for notifications, through SMTP.

Transient failures (no connection, a timeout, a 4xx reply) are retried by Dramatiq's
Retries middleware, with a doubling wait; permanent ones (a 5xx reply: unknown mailbox,
refused sender) are recorded on the notification and not retried. After
`smtp_max_attempts` transient failures the e-mail is recorded as failed too.

NOTE: SMTP has no idempotency: a worker that dies after the server accepted a message and
before recording it sends that e-mail again when the message is redelivered. Everything
else (a duplicate message, a replay) finds the e-mail marked sent and sends nothing.
"""

from __future__ import annotations

import logging
import uuid
from email.message import EmailMessage

import aiosmtplib
from dramatiq.errors import Retry

from domain import notifications
from renshi.settings import Settings, get_settings
from workers.actors import actor
from workers.middleware import should_retry

log = logging.getLogger(__name__)

QUEUE = "notifications"


class TransientEmailError(Retry):
    """Raised when an e-mail may go through later; Retries waits `delay` ms, then retries."""


def retry_when(retries: int, exception: BaseException) -> bool:
    """Transient SMTP failures are retried (their count is kept on the notification), and
    other failures (the database) as any actor's are."""
    return isinstance(exception, TransientEmailError) or should_retry(retries, exception)


@actor(notifications.SEND_EMAIL, queue_name=QUEUE, retry_when=retry_when)
async def send_email(notification_id: str, idempotency_key: str) -> None:
    settings = get_settings()
    email = await notifications.email_to_send(uuid.UUID(notification_id))
    if email is None:
        return  # sent, given up, or nobody to send it to
    try:
        await aiosmtplib.send(
            compose(email, settings),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        permanent = is_permanent(exc)
        again = await notifications.email_failed(
            email.notification_id,
            f"{type(exc).__name__}: {exc}",
            permanent=permanent,
            max_attempts=settings.smtp_max_attempts,
        )
        if again:
            delay = int(settings.smtp_retry_seconds * 1000 * 2**email.attempts)
            log.info("E-mail of notification %s failed for now; retrying.", notification_id)
            raise TransientEmailError(str(exc), delay=min(delay, 3_600_000)) from exc
        log.warning(
            "E-mail of notification %s failed for good (%s).",
            notification_id,
            "refused" if permanent else "too many attempts",
        )
        return
    await notifications.email_sent(email.notification_id)


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
