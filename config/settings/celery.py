"""Celery: the broker, how workers take tasks, queues by kind of work, and the beat schedule."""

from __future__ import annotations

from celery.schedules import crontab

from config import queues
from config.env import envbool, envint
from config.settings.database import REDIS_URL

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# A killed worker's task goes back to the queue instead of being lost (tasks are idempotent).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 3600)
# Must exceed the hard time limit, or Redis re-delivers a long ingest still in progress.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3900}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Queues by kind of work (config/queues.py); a task not routed there is maintenance.
CELERY_TASK_QUEUES = queues.task_queues()
CELERY_TASK_ROUTES = queues.task_routes()
CELERY_TASK_DEFAULT_QUEUE = queues.MAINTENANCE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# Every fixed schedule, in this one place; per-feed schedules are PeriodicTask rows that the
# admin edits. Each period is an env variable (the fault suite and the benches shorten them).
CELERY_BEAT_SCHEDULE = {
    # Ingest: inbox folders are scanned this often.
    "scan-inboxes": {
        "task": "warehouses.tasks.scan_inboxes",
        "schedule": float(envint("INBOX_SCAN_EVERY_SECONDS", 30)),
    },
    # Ingest: re-sends runs that lost their message or their worker (docs/reliability.md).
    "requeue-stuck-runs": {
        "task": "warehouses.tasks.requeue_stuck_runs",
        "schedule": float(envint("INGEST_SWEEP_EVERY_SECONDS", 30)),
    },
    # Webhooks: a relay pass (settings in config/settings/webhooks.py).
    "relay-webhooks": {
        "task": "shipments.tasks.relay_webhooks",
        "schedule": float(envint("WEBHOOK_RELAY_EVERY_SECONDS", 5)),
        # Passes queued while no webhooks worker ran are worth nothing later: the next one sends.
        "options": {"expires": 60},
    },
    # Buyer emails: a sender pass (config/settings/notifications.py).
    "send-notifications": {
        "task": "shipments.tasks.send_notifications",
        "schedule": float(envint("NOTIFY_SEND_EVERY_SECONDS", 10)),
        "options": {"expires": 60},
    },
    # Buyer emails: running-late moments and the buyer-email retention sweep.
    "notification-sweeps": {
        "task": "shipments.tasks.notification_sweeps",
        "schedule": float(envint("NOTIFY_SWEEP_EVERY_SECONDS", 900)),
    },
    # API: idempotency keys past their lifetime are deleted hourly.
    "prune-idempotency-keys": {
        "task": "shipments.tasks.prune_idempotency_keys",
        "schedule": crontab(minute=17),
    },
    # Estimates: lane/stage statistics are rebuilt hourly (config/settings/estimates.py).
    "refresh-delivery-estimates": {
        "task": "shipments.tasks.refresh_delivery_estimates",
        "schedule": crontab(minute=envint("ESTIMATE_REFRESH_MINUTE", 23)),
    },
    # Events: monthly partitions are created months ahead (shipments/partitions.py); daily, so a
    # failed run (a lock not granted in time) has many chances before a month begins.
    "maintain-event-partitions": {
        "task": "shipments.tasks.maintain_event_partitions",
        "schedule": crontab(hour=3, minute=41),
    },
    # Dashboard: it reads only tables this job rebuilds, so its figures are at most this old
    # (config/settings/dashboard.py).
    "refresh-operations": {
        "task": "operations.tasks.refresh_dashboard",
        "schedule": float(envint("OPS_REFRESH_EVERY_SECONDS", 300)),
    },
    # Retention: parcels delivered or returned more than RETENTION_DAYS ago are exported and
    # removed daily (docs/retention.md); the task does nothing while RETENTION_DAYS is unset.
    "apply-retention": {
        "task": "operations.tasks.apply_retention",
        "schedule": crontab(hour=envint("RETENTION_HOUR", 4), minute=11),
    },
}
