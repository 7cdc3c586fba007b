"""Run lifecycle: resume after a killed worker, concurrent deliveries, one run per feed."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import ProgrammingError, connection, connections, transaction
from psycopg import pq

from shipments.models import Shipment, StatusChange, TrackingEvent
from shipments.recording import status_rules
from tests.conftest import FeedFactory, hub_csv
from warehouses.ingest import batches
from warehouses.ingest.runs import FeedBusy, _feed_lock, feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun

Ingest = Callable[..., FeedRun]


def rows(n: int) -> bytes:
    return hub_csv(*(f"TN{i:06d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,," for i in range(n)))


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the pipeline may swallow it."""


def _die_on_third_batch(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Makes the worker "die" as it records its third batch; returns the real recorder."""
    real = batches.events_record_start
    calls = {"n": 0}

    def dying(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batches, "events_record_start", dying)
    return real


@pytest.mark.django_db
def test_a_run_killed_after_some_batches_resumes_without_duplicates_or_losses(
    feed: Feed, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    real = _die_on_third_batch(monkeypatch)
    with pytest.raises(WorkerKilled):
        feed_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == FeedRun.Status.RUNNING
    assert (run.records_processed, run.events_created) == (20, 20)
    # the feed lock was released even though the worker "died"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone() == (0,)

    monkeypatch.setattr(batches, "events_record_start", real)
    run = feed_run_execute(run_id=run.pk)
    assert run.status == FeedRun.Status.SUCCEEDED
    assert (run.records, run.events_created, run.duplicates, run.attempts) == (55, 55, 0, 2)
    assert TrackingEvent.objects.count() == 55


@pytest.mark.django_db
def test_executing_a_finished_run_again_does_nothing(feed: Feed, ingest: Ingest) -> None:
    run = ingest(feed, rows(3))
    again = feed_run_execute(run_id=run.pk)
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
            results.append(feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False))
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
    feed_run_execute(run_id=original.pk)
    assert TrackingEvent.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_second_run_of_a_busy_feed_waits_for_the_first() -> None:
    feed = FeedFactory()
    first = feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    second = feed_run_create(feed=feed, content=io.BytesIO(rows(3)), enqueue=False)
    holder = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with _feed_lock(feed.pk) as locked:
            assert locked
            holder.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    holder.wait(10)
    with pytest.raises(FeedBusy):
        feed_run_execute(run_id=second.pk)
    release.set()
    thread.join()
    assert feed_run_execute(run_id=first.pk).status == "succeeded"
    assert feed_run_execute(run_id=second.pk).status == "succeeded"


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
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    run = feed_run_execute(run_id=run.pk)
    assert run.status == FeedRun.Status.SUCCEEDED
    assert (run.records_processed, run.events_created, run.shipments_touched) == (55, 55, 55)
    assert TrackingEvent.objects.count() == 55
    assert _status_of_every_shipment() == {"in_transit"}
    assert StatusChange.objects.count() == 55
    assert connection.get_autocommit()
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_worker_batches_bigger_than_the_socket_buffers_are_sent_while_the_next_one_parses(
    settings: object,
) -> None:
    # Each batch's COPY text (about 20 MB here: every row stores its 1 kB line twice) waits in
    # libpq's buffer and goes out piecemeal while the next batch is parsed; all of it must
    # arrive, in order, batch after batch.
    settings.INGEST_BATCH_SIZE = 10_000  # type: ignore[attr-defined]
    feed = FeedFactory()
    note = "x" * 1000
    payload = hub_csv(
        *(f"TN{i:06d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,{note},,,," for i in range(25_000))
    )
    run = feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)
    run = feed_run_execute(run_id=run.pk)
    assert (run.status, run.records, run.events_created, run.rejected) == (
        "succeeded",
        25_000,
        25_000,
        0,
    )
    assert TrackingEvent.objects.count() == 25_000
    assert TrackingEvent.objects.filter(description=note).count() == 25_000
    assert _status_of_every_shipment() == {"in_transit"}
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_a_batch_commits_keeps_that_batch_and_resumes(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    feed = FeedFactory()
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(55)), enqueue=False)
    real = _die_on_third_batch(monkeypatch)
    with pytest.raises(WorkerKilled):
        feed_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.records_processed, run.events_created) == ("running", 20, 20)
    assert TrackingEvent.objects.count() == 20
    assert StatusChange.objects.count() == 20

    monkeypatch.setattr(batches, "events_record_start", real)
    run = feed_run_execute(run_id=run.pk)
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
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(25)), enqueue=False)
    real = status_rules.recompute_script
    calls = {"n": 0}

    def failing() -> str:
        calls["n"] += 1
        # Not a data error: one of those is a record's fault, and the batch is recorded in
        # halves to find it (tests/warehouses/test_poison.py).
        return "SELECT 1 FROM hub_no_such_table;" if calls["n"] == 2 else real()

    monkeypatch.setattr(status_rules, "recompute_script", failing)
    with pytest.raises(ProgrammingError, match="hub_no_such_table"):
        feed_run_execute(run_id=run.pk)
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

    monkeypatch.setattr(status_rules, "recompute_script", real)
    run = feed_run_execute(run_id=run.pk)
    assert (run.status, run.events_created, run.duplicates) == ("succeeded", 25, 0)
    assert TrackingEvent.objects.count() == 25
    assert StatusChange.objects.count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_shipment_created_by_another_transaction_mid_batch_costs_a_retry_not_an_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The worker finds RACE0001 unknown and draws its id while another transaction, not yet
    # committed, creates it; the batch's shipment insert waits for that transaction, which
    # commits only once the worker is seen waiting. The batch then fails its foreign key at
    # commit, and the run resumes from its checkpoint and finds the shipment.
    feed = FeedFactory()
    payload = hub_csv(
        "RACE0001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,ORD-9,,,",
        "RACE0001,departed,2026-05-02T09:00:00+08:00,,,,CN,,,,,",
        "OTHER0001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,",
    )
    run = feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)
    created = threading.Event()
    waited: list[bool] = []

    def another_transaction() -> None:
        try:
            with transaction.atomic():
                Shipment.objects.create(tracking_number="RACE0001", carrier="Shop carrier")
                created.set()
                waited.append(_until_a_backend_waits_on_a_lock())
        finally:
            connections.close_all()

    thread = threading.Thread(target=another_transaction)
    thread.start()
    assert created.wait(10)
    with caplog.at_level(logging.INFO, logger="warehouses.ingest.runs"):
        run = feed_run_execute(run_id=run.pk)
    thread.join()
    assert waited == [True]
    assert "created concurrently" in caplog.text
    assert (run.status, run.records, run.events_created, run.duplicates) == (
        "succeeded",
        3,
        3,
        0,
    )
    race = Shipment.objects.get(tracking_number="RACE0001")
    assert race.events.count() == 2
    assert (race.status, race.carrier, race.order_number) == ("in_transit", "Shop carrier", "ORD-9")
    assert TrackingEvent.objects.filter(shipment__tracking_number="OTHER0001").count() == 1
    assert TrackingEvent.objects.count() == 3


def _until_a_backend_waits_on_a_lock(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def _scenario(prefix: str, *, in_transaction: bool) -> dict[str, object]:
    """Runs of parcel events, a manifest and unit events; what they leave, by parcel suffix."""
    events_feed = FeedFactory()
    manifest_feed = FeedFactory(format=Feed.Format.MANIFEST_CSV, warehouse=events_feed.warehouse)
    a, b, c, unit = f"{prefix}A", f"{prefix}B", f"{prefix}C", f"{prefix}-UNIT"
    payloads = [
        (
            events_feed,
            hub_csv(
                f"{a},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,ORD-{prefix},,,",
                f"{a},departed,2026-05-02T09:00:00+08:00,,,,CN,,,,rail,",
                f"{b},picked_up,2026-05-01T10:00:00+08:00,,,,CN,,,,,",
                f"{b},picked_up,2026-05-01T10:00:00+08:00,,,,CN,,,,,",
            ),
        ),
        (
            manifest_feed,
            b"unit_id,unit_kind,tracking_number,loaded_at,unloaded_at\n"
            + f"{unit},container,{a},2026-05-02T10:00:00+08:00,\n".encode()
            + f"{unit},container,{b},2026-05-02T10:00:00+08:00,\n".encode(),
        ),
        (
            events_feed,
            hub_csv(
                # a unit event, a late report of an earlier event, a known event with a new
                # fact, a delivery and a parcel seen for the first time
                f",arrived,2026-05-04T09:00:00+03:00,,Moscow,RUMOW,RU,,,,,{unit}",
                f"{b},warehouse_received,2026-05-01T12:00:00+08:00,,,,CN,,,,,",
                f"{a},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,HLJ Rail,,",
                f"{b},delivered,2026-05-05T09:00:00+03:00,,Moscow,RUMOW,RU,,,,,",
                f"{c},picked_up,2026-05-03T09:00:00+08:00,,,,CN,,,,,",
            ),
        ),
    ]
    runs = []
    for feed, payload in payloads:
        run = feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)
        if in_transaction:
            with transaction.atomic():
                run = feed_run_execute(run_id=run.pk)
        else:
            run = feed_run_execute(run_id=run.pk)
        runs.append((run.status, run.events_created, run.duplicates, run.rejected))
    outcome: dict[str, object] = {"runs": runs}
    for shipment in Shipment.objects.filter(tracking_number__startswith=prefix):
        status_event = shipment.status_event
        outcome[shipment.tracking_number.removeprefix(prefix)] = (
            shipment.status,
            shipment.stage,
            status_event.code if status_event else None,
            shipment.last_event_at,
            shipment.order_number.removesuffix(prefix),
            shipment.carrier,
            shipment.transport_mode,
            shipment.events.count(),
            list(
                StatusChange.objects.filter(shipment=shipment)
                .order_by("id")
                .values_list("from_status", "to_status", "event__code")
            ),
        )
    return outcome


@pytest.mark.django_db(transaction=True)
def test_the_worker_path_leaves_what_the_in_transaction_path_leaves() -> None:
    # The worker finds and draws shipment ids before its COPY and writes the shipments after
    # it; a caller's transaction records them before. Both must leave the same shipments.
    worker = _scenario("WKR", in_transaction=False)
    in_transaction = _scenario("TXN", in_transaction=True)
    assert worker == in_transaction
    # The first file repeats a row: a duplicate only, not a reject (issue 13 item 7).
    assert worker["runs"] == [
        ("succeeded", 3, 1, 0),
        ("succeeded", 0, 0, 0),
        ("succeeded", 4, 1, 0),
    ]
    assert set(worker) == {"runs", "A", "B", "C"}
