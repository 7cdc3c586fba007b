"""Fixtures for the shops' API and webhooks: two shops with keys, and a real HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rest_framework.test import APIClient

from shipments.models import Shop, ShopAPIKey
from shipments.services import shop_api_key_create
from tests.conftest import ShopFactory


@dataclass
class ShopClient:
    shop: Shop
    key: str
    api_key: ShopAPIKey
    client: APIClient


def _shop_client(name: str) -> ShopClient:
    shop = ShopFactory(name=name)
    api_key, key = shop_api_key_create(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return ShopClient(shop, key, api_key, client)


@pytest.fixture
def shop_a(db: None) -> ShopClient:
    return _shop_client("Shop A")


@pytest.fixture
def shop_b(db: None) -> ShopClient:
    return _shop_client("Shop B")


@pytest.fixture(autouse=True)
def _webhook_settings(settings: Any) -> None:
    # Tests deliver to 127.0.0.1; production refuses loopback unless this is set.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.API_RATE_PER_KEY = "100000/min"
    settings.API_EXPORT_RATE_PER_KEY = "100000/min"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # wall-clock arrival

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server in a thread; `behaviour` decides the answer to each request:
    an int status code, or "hang" (sleeps `hang_seconds`, past the client's timeout).
    `on_request` runs before answering."""

    url: str
    received: list[Received] = field(default_factory=list)
    behaviour: list[int | str] = field(default_factory=list)
    default: int | str = 200
    hang_seconds: float = 3.0
    on_request: Callable[[Received], None] | None = None


@contextmanager
def serve(state: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            got = Received(self.path, headers, body, at)
            state.received.append(got)
            if state.on_request is not None:
                state.on_request(got)
            action = state.behaviour.pop(0) if state.behaviour else state.default
            if action == "hang":
                time.sleep(state.hang_seconds)
                action = 200
            if action == "redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.end_headers()
                return
            try:
                self.send_response(int(action))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if int(action) < 300 else b"nope")
            except OSError:
                return  # the client gave up waiting (a hanging receiver's usual end)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve(Receiver(url="")) as state:
        yield state


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """More receivers: `receivers(default="hang", hang_seconds=30)`."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> Receiver:
            return stack.enter_context(serve(Receiver(url="", **kwargs)))

        yield make
