"""Every task of the project lands on a declared queue (config/queues.py), on the kind meant, and
every queue has its own worker in docker-compose.yml and scripts/demo.sh.

Routes are resolved with Celery's own router, as `apply_async` does: a task missing from the
routes goes to the default queue, and a route to a queue no worker consumes would wait forever.
The test settings prefix every queue (config/test_settings.py); names are read without it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from django.conf import settings

from config import celery_app, queues

ROOT = Path(__file__).resolve().parents[2]
APPS = ("warehouses.", "shipments.", "operations.")

# Read from the tasks' modules: feed files go through ingest, notifications through webhooks,
# everything else (sweeps, statistics, pruning) through maintenance.
EXPECTED = {
    "warehouses.tasks.ingest_run": "ingest",
    "warehouses.tasks.fetch_feed": "ingest",
    "warehouses.tasks.scan_inboxes": "ingest",
    "shipments.tasks.relay_webhooks": "webhooks",
    "shipments.tasks.send_notifications": "webhooks",
    "shipments.tasks.notification_sweeps": "maintenance",
    "warehouses.tasks.requeue_stuck_runs": "maintenance",
    "shipments.tasks.prune_idempotency_keys": "maintenance",
    "shipments.tasks.refresh_delivery_estimates": "maintenance",
    "operations.tasks.refresh_dashboard": "maintenance",
    "operations.tasks.apply_retention": "maintenance",
    "shipments.tasks.maintain_event_partitions": "maintenance",
}


def _prefix() -> str:
    return str(settings.CELERY_TASK_DEFAULT_QUEUE).removesuffix(queues.MAINTENANCE)


def _declared() -> set[str]:
    return {queue.name.removeprefix(_prefix()) for queue in celery_app.conf.task_queues}


def _project_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if name.startswith(APPS))


def _queue_of(task: str) -> str:
    return str(celery_app.amqp.router.route({}, task)["queue"].name).removeprefix(_prefix())


def test_the_declared_queues_are_the_three_kinds() -> None:
    assert _declared() == {"ingest", "webhooks", "maintenance"}


def test_every_project_task_is_routed_to_a_declared_queue() -> None:
    declared = _declared()
    tasks = _project_tasks()
    # The list below was read from the code: a new task must be added to it, on purpose.
    assert set(tasks) == set(EXPECTED), "tasks added or removed: update EXPECTED and the routes"
    routed = {task: _queue_of(task) for task in tasks}
    assert {task: q for task, q in routed.items() if q not in declared} == {}
    assert routed == EXPECTED


def _worker_queues(command: str) -> list[str]:
    """The queues a `celery ... worker` command consumes ([] when it names none: all)."""
    words = shlex.split(command)
    if "worker" not in words:
        return []
    return words[words.index("-Q") + 1].split(",") if "-Q" in words else list(queues.KINDS)


def test_compose_runs_one_worker_service_per_queue() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    consumers: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, str) and "celery" in command:
            for queue in _worker_queues(command):
                consumers.setdefault(queue, []).append(name)
    assert {queue: len(names) for queue, names in consumers.items()} == {
        "ingest": 1,
        "webhooks": 1,
        "maintenance": 1,
    }, consumers


def test_the_demo_runs_one_worker_per_queue() -> None:
    script = (ROOT / "scripts" / "demo.sh").read_text()
    commands = [m.group(1) for m in re.finditer(r"(celery -A config worker[^&\n]*)", script)]
    consumed = sorted(queue for command in commands for queue in _worker_queues(command))
    assert consumed == ["ingest", "maintenance", "webhooks"], commands
