"""Scheduled refresh of the operations dashboard (CELERY_BEAT_SCHEDULE["refresh-operations"])."""

from __future__ import annotations

from celery import shared_task

from operations import services


# Safe twice: a second refresh waits for nothing (advisory lock) and rebuilds the same figures.
@shared_task(acks_late=True)
def refresh_dashboard() -> float:
    return services.dashboard_refresh().seconds
