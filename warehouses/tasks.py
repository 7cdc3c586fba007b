"""Thin Celery tasks: load by id, call one service. Every task is safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task, shared_task
from django.db import OperationalError
from django.utils import timezone

from warehouses import services
from warehouses.models import Feed, FeedRun

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=None)
def ingest_run(self: Task, run_id: int) -> str:
    try:
        run = services.feed_run_execute(run_id=run_id)
    except services.FeedBusy:
        # One run per feed at a time; this one waits its turn without holding a worker.
        raise self.retry(countdown=5) from None
    except OperationalError as exc:
        if self.request.retries >= 8:
            services.feed_run_fail(run_id=run_id, error=f"database unavailable: {exc}")
            raise
        raise self.retry(countdown=min(300, 2**self.request.retries * 5)) from exc
    return run.status


@shared_task(bind=True, acks_late=True, max_retries=6)
def fetch_feed(self: Task, feed_id: int) -> int:
    try:
        runs = services.feed_fetch(feed_id=feed_id)
    except services.FetchError as exc:
        attempt = self.request.retries + 1
        services.feed_fetch_failed(feed_id=feed_id, error=f"attempt {attempt}: {exc}")
        # Backoff per feed: a broken partner never blocks the other feeds' schedules.
        raise self.retry(countdown=min(3600, 30 * 2**self.request.retries)) from exc
    return len(runs)


@shared_task(acks_late=True)
def scan_inboxes() -> int:
    feeds = Feed.objects.filter(active=True, transport=Feed.Transport.DIRECTORY, schedule=None)
    for feed_id in feeds.values_list("pk", flat=True):
        fetch_feed.delay(feed_id)
    return len(feeds)


@shared_task(acks_late=True)
def requeue_stuck_runs() -> int:
    """Runs whose message was lost (broker restart) or whose worker died get another turn."""
    cutoff = timezone.now() - timedelta(minutes=10)
    stuck = FeedRun.objects.filter(
        status__in=[FeedRun.Status.QUEUED, FeedRun.Status.RUNNING], created_at__lt=cutoff
    ).values_list("pk", flat=True)[:500]
    for run_id in stuck:
        ingest_run.delay(run_id)
    return len(stuck)
