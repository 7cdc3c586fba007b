"""Run lifecycle: resume after a killed worker, concurrent deliveries, one run per feed."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from warehouses import services
from warehouses.models import Feed, FeedRun

Ingest = Callable[..., FeedRun]


def rows(n: int) -> bytes:
    return hub_csv(*(f"TN{i:06d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,," for i in range(n)))


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the pipeline may swallow it."""


@pytest.mark.django_db
def test_a_run_killed_after_some_batches_resumes_without_duplicates_or_losses(
    feed: Feed, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    run = services.feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    real = services.events_record
    calls = {"n": 0}

    def dying(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "events_record", dying)
    with pytest.raises(WorkerKilled):
        services.feed_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == FeedRun.Status.RUNNING
    assert (run.records_processed, run.events_created) == (20, 20)
    # the feed lock was released even though the worker "died"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone() == (0,)

    monkeypatch.setattr(services, "events_record", real)
    run = services.feed_run_execute(run_id=run.pk)
    assert run.status == FeedRun.Status.SUCCEEDED
    assert (run.records, run.events_created, run.duplicates, run.attempts) == (55, 55, 0, 2)
    assert TrackingEvent.objects.count() == 55


@pytest.mark.django_db
def test_executing_a_finished_run_again_does_nothing(feed: Feed, ingest: Ingest) -> None:
    run = ingest(feed, rows(3))
    again = services.feed_run_execute(run_id=run.pk)
    assert (again.status, again.events_created, again.attempts) == ("succeeded", 3, 1)
    assert TrackingEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_the_same_payload_at_once_make_one_run_and_one_duplicate() -> None:
    feed = FeedFactory()
    payload = rows(5)
    barrier = threading.Barrier(2)
    results: list[FeedRun] = []

    def deliver() -> None:
        barrier.wait()
        try:
            results.append(
                services.feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in results)
    assert statuses == ["duplicate", "queued"]
    original = next(r for r in results if r.status == "queued")
    services.feed_run_execute(run_id=original.pk)
    assert TrackingEvent.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_second_run_of_a_busy_feed_waits_for_the_first() -> None:
    feed = FeedFactory()
    first = services.feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    second = services.feed_run_create(feed=feed, content=io.BytesIO(rows(3)), enqueue=False)
    holder = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with services._feed_lock(feed.pk) as locked:
            assert locked
            holder.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    holder.wait(10)
    with pytest.raises(services.FeedBusy):
        services.feed_run_execute(run_id=second.pk)
    release.set()
    thread.join()
    assert services.feed_run_execute(run_id=first.pk).status == "succeeded"
    assert services.feed_run_execute(run_id=second.pk).status == "succeeded"
