"""gunicorn settings for production (docker-compose, Dockerfile) and bench/api.py.

gunicorn config.wsgi -c config/gunicorn.py
"""

from __future__ import annotations

import gc
from typing import Any

# Threaded workers: the worker's main loop keeps telling the arbiter it is alive while a thread
# streams a response, so a long export (a million rows of CSV take minutes, docs/exports.md) is
# not killed at `timeout` as a sync worker would be mid-stream; `timeout` still catches a worker
# whose main loop hangs. Threads also let a worker serve other requests meanwhile.
worker_class = "gthread"
threads = 4

# Requests a worker serves before it freezes what it holds (see `post_request`).
WARM_REQUESTS = 200

_served = 0


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    # A worker holds a few hundred thousand long-lived objects (Django, DRF, the URL resolver,
    # compiled templates, the caches its first requests fill). Every full collection walks them
    # all, on whichever request triggers it: 80-110 ms measured here. Once the worker is
    # warm, one collection then `gc.freeze()` moves them out of every later collection; the
    # garbage of later requests is collected as usual.
    global _served
    _served += 1
    if _served == WARM_REQUESTS:
        gc.collect()
        gc.freeze()
