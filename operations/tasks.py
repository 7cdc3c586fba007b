"""Scheduled refresh of the operations dashboard (CELERY_BEAT_SCHEDULE["refresh-operations"])."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from operations import services


# Safe twice: a second refresh waits for nothing (advisory lock) and rebuilds the same figures.
# Scheduled, it rebuilds the statistics only when due; "Refresh now" asks for everything.
@shared_task(acks_late=True)
def refresh_dashboard(everything: bool = False) -> float:
    stats = everything or services.dashboard_stats_due(now=timezone.now())
    return services.dashboard_refresh(stats=stats).seconds
