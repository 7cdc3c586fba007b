"""A real webhook receiver in the test process, one scripted behaviour per path.

/ok          200 at once
/flaky       500 to its first 3 requests, then 200
/hang        holds each request until `hang_seconds` after its first request, then 200s
/gone        410 Gone
/slow        200 after 1 s
/deleted     200 after 0.5 s (the scenario deletes the endpoint mid-pass)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.faults.services import free_port


@dataclass(frozen=True)
class Hit:
    path: str
    webhook_id: str
    tracking_number: str
    event_type: str
    created_at: str
    received_at: float  # time.time()
    answered: int


class Receiver:
    def __init__(self, *, hang_seconds: float = 30.0) -> None:
        self.port = free_port()
        self.hang_seconds = hang_seconds
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.first_hit: dict[str, float] = {}
        self.arrivals: dict[str, int] = {}
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def hang_ends_at(self) -> float | None:
        first = self.first_hit.get("/hang")
        return None if first is None else first + self.hang_seconds

    def _answer(self, path: str) -> int:
        """Decide (and wait out) this request's answer; called without the lock held."""
        with self.lock:
            seen = self.arrivals.get(path, 0)
            self.arrivals[path] = seen + 1
            self.first_hit.setdefault(path, time.time())
        if path == "/flaky":
            return 500 if seen < 3 else 200
        if path == "/hang":
            ends = self.hang_ends_at
            assert ends is not None
            while time.time() < ends and not self.stopping.is_set():
                time.sleep(0.1)
            return 200
        if path == "/gone":
            return 410
        if path == "/slow":
            time.sleep(1.0)
        if path == "/deleted":
            time.sleep(0.5)
        return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                status = receiver._answer(self.path)
                hit = Hit(
                    path=self.path,
                    webhook_id=self.headers.get("webhook-id", ""),
                    tracking_number=str(body.get("data", {}).get("tracking_number", "")),
                    event_type=str(body.get("type", "")),
                    created_at=str(body.get("created_at", "")),
                    received_at=time.time(),
                    answered=status,
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    return  # the hub gave up waiting (its timeout): not a delivery
                with receiver.lock:
                    receiver.hits.append(hit)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    # --- what arrived ------------------------------------------------------------------------

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def delivered(self, path: str) -> dict[str, Hit]:
        """Notification (tracking number, type) -> its first 2xx hit."""
        out: dict[str, Hit] = {}
        for hit in self.hits_for(path):
            if 200 <= hit.answered < 300:
                out.setdefault(f"{hit.tracking_number}|{hit.event_type}", hit)
        return out

    def ids_per_notification(self, path: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for hit in self.hits_for(path):
            out.setdefault(f"{hit.tracking_number}|{hit.event_type}", set()).add(hit.webhook_id)
        return out

    def duplicated(self, path: str) -> int:
        """Notifications that arrived under more than one message id (must be 0)."""
        return sum(len(ids) - 1 for ids in self.ids_per_notification(path).values())
