"""Celery queues by kind of work, so one kind never waits behind another.

A hanging webhook receiver holds only a `webhooks` worker; an hour of statistics holds only a
`maintenance` worker; feed files go through `ingest` whatever the rest is doing. Workers name
the queues they consume (`celery -A config worker -Q ingest`); a worker started without -Q
consumes all of them (a laptop's single worker).
"""

from __future__ import annotations

from kombu import Queue

INGEST = "ingest"
WEBHOOKS = "webhooks"
# Statistics, sweeps, estimates, the dashboard refresh, pruning: every task not named below.
MAINTENANCE = "maintenance"
KINDS = (INGEST, WEBHOOKS, MAINTENANCE)

_ROUTES = {
    "warehouses.tasks.ingest_run": INGEST,
    "warehouses.tasks.fetch_feed": INGEST,
    "warehouses.tasks.scan_inboxes": INGEST,
    "shipments.tasks.relay_webhooks": WEBHOOKS,
    # Buyer emails: outbound like webhooks, and as liable to wait on a slow server.
    "shipments.tasks.send_notifications": WEBHOOKS,
}


def task_queues(prefix: str = "") -> list[Queue]:
    return [Queue(prefix + kind, routing_key=prefix + kind) for kind in KINDS]


def task_routes(prefix: str = "") -> dict[str, dict[str, str]]:
    return {task: {"queue": prefix + kind} for task, kind in _ROUTES.items()}
