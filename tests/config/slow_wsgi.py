"""A WSGI app that streams for longer than gunicorn's timeout (tests/config/test_gunicorn.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

CHUNKS = 16
PAUSE = 0.5


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    for n in range(CHUNKS):
        time.sleep(PAUSE)
        yield f"chunk {n}\n".encode()
