"""The feed lock behind a pooler (DATABASE_POOLER): a lease on the run's heartbeat.

A session-level advisory lock means nothing behind PgBouncer in transaction mode, so there a
feed is busy while one of its runs is `running` with a heartbeat younger than
INGEST_STALE_AFTER_SECONDS (tests/deploy/test_pgbouncer.py runs it through a real PgBouncer).
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import FeedFactory, hub_csv
from warehouses.ingest.runs import FeedBusy, feed_run_create, feed_run_execute
from warehouses.models import FeedRun

pytestmark = pytest.mark.django_db(transaction=True)


def _run(feed: Any, number: str) -> FeedRun:
    payload = hub_csv(f"{number},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,")
    return feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)


@pytest.fixture(autouse=True)
def _pooled(settings: Any) -> None:
    settings.DATABASE_POOLER = "pgbouncer"
    settings.INGEST_STALE_AFTER_SECONDS = 60


def _running(run: FeedRun, beat_seconds_ago: int) -> None:
    FeedRun.objects.filter(pk=run.pk).update(
        status=FeedRun.Status.RUNNING,
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(seconds=beat_seconds_ago),
    )


def test_a_run_with_a_fresh_heartbeat_keeps_its_feed_busy() -> None:
    feed = FeedFactory()
    first, second = _run(feed, "LS001"), _run(feed, "LS002")
    _running(first, beat_seconds_ago=5)
    with pytest.raises(FeedBusy):
        feed_run_execute(run_id=second.pk)
    with pytest.raises(FeedBusy):  # nor may a second worker take the same run
        feed_run_execute(run_id=first.pk)
    assert FeedRun.objects.get(pk=second.pk).status == FeedRun.Status.QUEUED
    # Another feed is not held up.
    assert feed_run_execute(run_id=_run(FeedFactory(), "LS003").pk).status == "succeeded"


def test_a_run_whose_worker_died_frees_its_feed_once_its_heartbeat_is_stale() -> None:
    feed = FeedFactory()
    first, second = _run(feed, "LS001"), _run(feed, "LS002")
    _running(first, beat_seconds_ago=61)
    assert feed_run_execute(run_id=second.pk).status == "succeeded"
    resumed = feed_run_execute(run_id=first.pk)
    assert (resumed.status, resumed.attempts) == ("succeeded", 2)
