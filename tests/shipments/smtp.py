"""A real SMTP server for the buyer-notification tests (aiosmtpd, on a free local port).

`received` holds each message the server accepted (answered 250 to its DATA), parsed. With
`hold_first`, the first DATA waits until the test calls `release()` and is then refused (451):
a sender killed meanwhile never had its message accepted, as with a real MTA.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        owner = self.server
        if owner.hold_first and not owner.held.is_set():
            owner.held.set()
            while not owner.released.is_set():
                await asyncio.sleep(0.05)
            return "451 Requested action aborted: try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with owner.lock:
            owner.received.append(message)
            owner.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class SMTPServer:
    def __init__(self, *, hold_first: bool = False) -> None:
        self.hold_first = hold_first
        self.held = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.received: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.controller.stop()
