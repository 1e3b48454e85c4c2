"""Local dates: "today" is always someone's today, in an IANA time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_today(time_zone: str, at: dt.datetime | None = None) -> dt.date:
    """The calendar date in `time_zone` at the instant `at` (default: now)."""
    return (at or now()).astimezone(ZoneInfo(time_zone)).date()
