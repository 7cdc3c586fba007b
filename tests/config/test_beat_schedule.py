"""The beat schedule (config/settings/celery.py) names tasks that exist, on the queues meant."""

from __future__ import annotations

from django.conf import settings

from config import celery_app, queues


def test_every_scheduled_task_is_a_registered_celery_task() -> None:
    celery_app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in celery_app.tasks, f"{name}: {entry['task']} is not a task"


def test_every_routed_task_is_a_registered_celery_task() -> None:
    celery_app.loader.import_default_modules()
    for task in queues.task_routes():
        assert task in celery_app.tasks, f"{task} is routed but is not a task"
