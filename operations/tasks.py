"""Scheduled refresh of the operations dashboard (CELERY_BEAT_SCHEDULE["refresh-operations"])."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from operations import services
from operations.retention.policy import retention_apply


# Safe twice: a second refresh waits for nothing (advisory lock) and rebuilds the same figures.
# Scheduled, it rebuilds the statistics only when due; "Refresh now" asks for everything.
@shared_task(acks_late=True)
def refresh_dashboard(everything: bool = False) -> float:
    stats = everything or services.dashboard_stats_due(now=timezone.now())
    return services.dashboard_refresh(stats=stats).seconds


# Daily (CELERY_BEAT_SCHEDULE["apply-retention"]); nothing while RETENTION_DAYS is unset. Safe
# twice: a second run finds the lock taken, and a run after a crash finishes the work.
@shared_task(acks_late=True, soft_time_limit=3300, time_limit=3600)
def apply_retention() -> int:
    return retention_apply(seconds=settings.RETENTION_RUN_SECONDS).removed
