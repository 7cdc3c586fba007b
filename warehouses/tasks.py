"""Thin Celery tasks: load by id, call one service. Every task is safe to run twice."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import Reject

from warehouses.ingest import lifecycle
from warehouses.ingest.runs import FeedBusy, feed_run_execute
from warehouses.models import Feed, FeedRun
from warehouses.sources.http_pull import FetchError
from warehouses.sources.schedules import feed_fetch, feed_fetch_failed

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=None)
def ingest_run(self: Task, run_id: int) -> str:
    hint = f"see the worker log for run {run_id}, task {self.request.id}"
    try:
        run = feed_run_execute(run_id=run_id, log_hint=hint)
    except FeedBusy:
        # One run per feed at a time; this one waits its turn without holding a worker.
        return _again(self, run_id, countdown=5)
    except Exception:
        # The attempt is recorded on the run (or the database is down): retry when it is due.
        countdown = lifecycle.next_attempt_in(run_id=run_id, retries=self.request.retries)
        if countdown is None:
            return FeedRun.Status.FAILED
        return _again(self, run_id, countdown=countdown)
    return run.status


def _again(task: Task, run_id: int, *, countdown: int) -> str:
    """Publish the retry; if the broker refuses it, the sweep sends the run instead of the
    message being dropped (Celery turns a failed retry publish into a Reject without requeue)."""
    try:
        retry = task.retry(countdown=countdown, throw=False)
    except Reject as exc:
        logger.warning(
            "run %s: its retry could not be published (%s); the stuck-run sweep sends it",
            run_id,
            exc.args[0] if exc.args else exc,
        )
        lifecycle.run_mark_unsent(run_id=run_id)
        return "unsent"
    lifecycle.run_waiting(run_id=run_id, due_in=countdown)
    raise retry


@shared_task(bind=True, acks_late=True, max_retries=6)
def fetch_feed(self: Task, feed_id: int) -> int:
    try:
        runs = feed_fetch(feed_id=feed_id)
    except FetchError as exc:
        attempt = self.request.retries + 1
        feed_fetch_failed(feed_id=feed_id, error=f"attempt {attempt}: {exc}")
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
    """Runs that lost their message (broker down, lost retry) or their worker get another turn."""
    return len(lifecycle.runs_resend_stuck())
