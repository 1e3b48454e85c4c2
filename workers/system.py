"""Actors that exercise the machinery itself."""

from __future__ import annotations

from workers.actors import actor


@actor("system.noop", queue_name="default")
def noop() -> None:
    """Do nothing, as a tenant: measures the cost of a message and checks a worker is alive."""
