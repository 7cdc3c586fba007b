"""Run lifecycle: resume after a killed worker, concurrent deliveries, one run per feed."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DataError, connection, connections
from psycopg import pq

from shipments import recording
from shipments.models import Shipment, StatusChange, TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from warehouses import services
from warehouses.models import Feed, FeedRun

Ingest = Callable[..., FeedRun]


def rows(n: int) -> bytes:
    return hub_csv(*(f"TN{i:06d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,," for i in range(n)))


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the pipeline may swallow it."""


def _die_on_third_batch(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Makes the worker "die" as it records its third batch; returns the real recorder."""
    real = services.events_record_start
    calls = {"n": 0}

    def dying(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "events_record_start", dying)
    return real


@pytest.mark.django_db
def test_a_run_killed_after_some_batches_resumes_without_duplicates_or_losses(
    feed: Feed, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    run = services.feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    real = _die_on_third_batch(monkeypatch)
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

    monkeypatch.setattr(services, "events_record_start", real)
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


# Outside a caller's transaction (a worker), each batch's COPY end, recompute and COMMIT are sent
# without waiting and taken before the connection is used again: the tests below run that path.


def _status_of_every_shipment() -> set[str]:
    return set(Shipment.objects.values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_worker_run_commits_every_batch_with_its_statuses_and_history(
    settings: object, debug: bool
) -> None:
    # DEBUG (as `make demo` runs) wraps cursors in Django's debug wrapper and logs queries.
    settings.DEBUG = debug  # type: ignore[attr-defined]
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    feed = FeedFactory()
    run = services.feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    run = services.feed_run_execute(run_id=run.pk)
    assert run.status == FeedRun.Status.SUCCEEDED
    assert (run.records_processed, run.events_created, run.shipments_touched) == (55, 55, 55)
    assert TrackingEvent.objects.count() == 55
    assert _status_of_every_shipment() == {"in_transit"}
    assert StatusChange.objects.count() == 55
    assert connection.get_autocommit()
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_a_batch_commits_keeps_that_batch_and_resumes(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    feed = FeedFactory()
    run = services.feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    real = _die_on_third_batch(monkeypatch)
    with pytest.raises(WorkerKilled):
        services.feed_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.records_processed, run.events_created) == ("running", 20, 20)
    assert TrackingEvent.objects.count() == 20
    assert StatusChange.objects.count() == 20

    monkeypatch.setattr(services, "events_record_start", real)
    run = services.feed_run_execute(run_id=run.pk)
    assert (run.status, run.records, run.events_created, run.duplicates) == (
        "succeeded",
        55,
        55,
        0,
    )
    assert TrackingEvent.objects.count() == 55
    assert _status_of_every_shipment() == {"in_transit"}


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_recompute_fails_is_rolled_back_whole_and_the_error_raised(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    feed = FeedFactory()
    run = services.feed_run_create(feed=feed, content=io.BytesIO(rows(25)), enqueue=False)
    real = recording.recompute_script
    calls = {"n": 0}

    def failing() -> str:
        calls["n"] += 1
        return "SELECT 1 / 0;" if calls["n"] == 2 else real()

    monkeypatch.setattr(recording, "recompute_script", failing)
    with pytest.raises(DataError, match="division by zero"):
        services.feed_run_execute(run_id=run.pk)
    # Batch 1 committed; batch 2 (events, checkpoint) rolled back together; the feed lock and
    # the connection are usable again.
    run.refresh_from_db()
    assert (run.records_processed, run.events_created) == (10, 10)
    assert TrackingEvent.objects.count() == 10
    assert connection.get_autocommit()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone() == (0,)

    monkeypatch.setattr(recording, "recompute_script", real)
    run = services.feed_run_execute(run_id=run.pk)
    assert (run.status, run.events_created, run.duplicates) == ("succeeded", 25, 0)
    assert TrackingEvent.objects.count() == 25
    assert StatusChange.objects.count() == 25
