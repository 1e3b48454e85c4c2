"""A local SMTP server for the tests (aiosmtpd), which can defer or refuse addresses."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclasses.dataclass
class Sink:
    """Accepts mail, except: `refused` addresses get 550 at RCPT, and `deferred[address]`
    DATA commands get 451 before one is accepted. Counts every attempt per address.
    `slow` seconds pass before each DATA is answered (a slow server)."""

    received: list[EmailMessage] = dataclasses.field(default_factory=list)
    attempts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    refused: set[str] = dataclasses.field(default_factory=set)
    deferred: dict[str, int] = dataclasses.field(default_factory=dict)
    slow: float = 0.0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            self.attempts[address] += 1
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.slow:
            await asyncio.sleep(self.slow)
        for address in envelope.rcpt_tos:
            self.attempts[address] += 1
        if any(self.deferred.get(a, 0) > 0 for a in envelope.rcpt_tos):
            for address in envelope.rcpt_tos:
                self.deferred[address] = max(0, self.deferred.get(address, 0) - 1)
            return "451 4.3.0 Mailbox busy, try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"] == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
