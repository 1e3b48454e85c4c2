"""Writing many notifications at once: the alerts of a nightly scoring.

`domain.notifications.notify_many` suits the handful of notifications an action makes:
a multi-row INSERT built for the call, and the rows back as ORM objects. A tenant's first
nightly scoring may raise tens of thousands of alerts, and there that INSERT's
compilation, one bind parameter per value, was most of the run. `notify_in_bulk` writes
the same rows in one statement whatever their number: each column goes in as one array,
the notifications whose key is new are inserted, and the same statement queues their
e-mails in the outbox with the payload and key `notify_many` gives them.

TODO(#6): this belongs beside `notify_many` in `domain.notifications`; it lives here
while that module is being reworked for the workers.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from domain import outbox
from domain.notifications import SEND_EMAIL, Draft

_COLUMNS = (
    "id",
    "recipient_id",
    "kind",
    "subject",
    "body",
    "locale",
    "data",
    "email_status",
    "idempotency_key",
)
_UUID_COLUMNS = ("id", "recipient_id")

# The notification and its e-mail, as `notify_many` and `outbox.enqueue_many` write them:
# the payload {"notification_id": "<uuid>"} under the key "email:<uuid>".
_NOTIFY_SQL = f"""
    WITH drafts AS (
      SELECT * FROM unnest({", ".join(f":{c}" for c in _COLUMNS)})
          AS d({", ".join(_COLUMNS)})
    ),
    created AS (
      INSERT INTO notifications ({", ".join(_COLUMNS)})
      SELECT id, recipient_id, kind, subject, body, locale, data::jsonb, email_status,
             idempotency_key
        FROM drafts
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING id, email_status
    ),
    queued AS (
      INSERT INTO outbox (actor_name, payload, idempotency_key)
      SELECT :actor, jsonb_build_object('notification_id', id::text), 'email:' || id::text
        FROM created WHERE email_status = 'pending'
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM created) AS created, (SELECT count(*) FROM queued) AS queued
"""
_NOTIFY = text(_NOTIFY_SQL).bindparams(
    *(
        bindparam(c, type_=ARRAY(UUID(as_uuid=True)) if c in _UUID_COLUMNS else ARRAY(Text))
        for c in _COLUMNS
    )
)


async def notify_in_bulk(session: AsyncSession, drafts: list[Draft]) -> tuple[int, int]:
    """Write the drafts whose keys are new and queue their e-mails, inside the caller's
    transaction: one statement. Returns how many notifications and e-mails were written."""
    if not drafts:
        return 0, 0
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    for draft in drafts:
        # The draft renders itself, exactly as for `notify_many`.
        values = draft.values()
        values["data"] = json.dumps(values["data"])
        for column, found in columns.items():
            found.append(values[column])
    row = (await session.execute(_NOTIFY, {**columns, "actor": SEND_EMAIL})).one()
    if row.queued:
        await outbox.wake_relay(session)
    return int(row.created), int(row.queued)
