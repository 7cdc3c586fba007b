"""Runs always end, a dead worker's run is taken over, an accepted payload is always queued.

warehouses/ingest/lifecycle.py: bounded attempts, heartbeats, the stuck-run sweep. The broker is
made unreachable by pointing Celery at a port where nothing listens.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Retry
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery_app import app
from operations.selectors import feed_health
from shipments.models import TrackingEvent
from shipments.recording import status_rules
from tests.conftest import FeedFactory, hub_csv
from warehouses import tasks
from warehouses.api.tokens import feed_push_token_rotate
from warehouses.ingest import batches, lifecycle
from warehouses.ingest.runs import _FEED_LOCK_NAMESPACE, FeedBusy, feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun
from warehouses.sources.inbox import inbox_collect

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens there


def rows(n: int) -> bytes:
    return hub_csv(*(f"LC{i:06d},picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,," for i in range(n)))


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Point the Celery app's producers at `url` (and back)."""
    saved = app.conf.broker_url

    def reset() -> None:
        # Forget the cached pools (kombu keeps them per URL: closing one would break it for
        # every later user of that URL).
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_url = saved
        reset()


@contextmanager
def feed_locked_elsewhere(feed: Feed) -> Iterator[None]:
    """Another worker holds the feed's advisory lock (a separate database session)."""
    dsn = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"}) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [_FEED_LOCK_NAMESPACE, feed.pk])
        yield


def _failing_recompute(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both ways a batch is recorded fail, the pipelined script and the halves a batch failing
    # on a data error is retried in (docs/bad-input.md): no record of it can be stored, so the
    # batch fails whole.
    monkeypatch.setattr(status_rules, "RECOMPUTE_SQL", "SELECT 1 / 0")


# --- bounded attempts -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_attempts_raise_is_retried_then_ends_failed_with_the_last_error(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 3
    settings.INGEST_RETRY_BASE_SECONDS = 15
    feed = FeedFactory()
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(3)), enqueue=False)
    _failing_recompute(monkeypatch)

    for attempt, delay in [(1, 15), (2, 30)]:
        before = timezone.now()
        with pytest.raises(Exception, match="division by zero"):
            feed_run_execute(run_id=run.pk, log_hint="see the worker log, task T1")
        run.refresh_from_db()
        assert (run.status, run.attempts) == ("queued", attempt)
        assert run.error == (
            f"attempt {attempt} of 3 failed: DataError: division by zero — see the worker log, "
            f"task T1; retry in {delay} s"
        )
        assert run.enqueued_at is not None
        assert run.enqueued_at - before >= timedelta(seconds=delay)

    with pytest.raises(Exception, match="division by zero"):
        feed_run_execute(run_id=run.pk, log_hint="see the worker log, task T3")
    run.refresh_from_db()
    assert (run.status, run.attempts, run.events_created) == ("failed", 3, 0)
    assert run.error == (
        "failed on attempt 3 of 3: DataError: division by zero — see the worker log, task T3"
    )
    assert run.finished_at is not None
    # A later message for it (a redelivery, the sweep) finds it ended.
    assert feed_run_execute(run_id=run.pk).attempts == 3


class WorkerKilled(BaseException):
    """Stands in for SIGKILL / the hard time limit: the attempt records nothing."""


@pytest.mark.django_db
def test_a_run_whose_worker_dies_on_every_attempt_fails_after_the_last_one(
    feed: Feed, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 2
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(3)), enqueue=False)

    def dying(**kwargs: object) -> None:
        raise WorkerKilled

    monkeypatch.setattr(batches, "events_record_start", dying)
    for _ in range(2):
        with pytest.raises(WorkerKilled):
            feed_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == ("running", 2, "")

    run = feed_run_execute(run_id=run.pk)
    assert (run.status, run.attempts) == ("failed", 2)
    assert run.error.startswith("gave up after 2 attempts (INGEST_MAX_ATTEMPTS)")
    assert f"see the worker log for run {run.pk}" in run.error


@pytest.mark.django_db(transaction=True)
def test_the_ingest_task_retries_when_the_next_attempt_is_due_and_ends_with_the_run(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 2
    settings.INGEST_RETRY_BASE_SECONDS = 40
    feed = FeedFactory()
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    _failing_recompute(monkeypatch)
    with pytest.raises(Retry) as retry:
        tasks.ingest_run.apply(args=[run.pk], task_id="task-1", throw=True)
    assert retry.value.when in (39, 40)
    assert "task task-1" in FeedRun.objects.get(pk=run.pk).error
    assert tasks.ingest_run.apply(args=[run.pk], task_id="task-2").get() == "failed"
    assert "task task-2" in FeedRun.objects.get(pk=run.pk).error


# --- heartbeats -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_long_batch_beats_every_few_seconds_and_never_per_record(settings: Any) -> None:
    settings.INGEST_BATCH_SIZE = 10_000  # one batch: only the parse-time heartbeat can beat
    feed = FeedFactory()
    beats = 'UPDATE "warehouses_feedrun" SET "heartbeat_at"'

    quiet = feed_run_create(feed=feed, content=io.BytesIO(rows(600)), enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        quiet = feed_run_execute(run_id=quiet.pk)
    # The default interval (seconds) is never reached here: no extra statement at all.
    assert sum(q["sql"].startswith(beats) for q in queries.captured_queries) == 0
    assert quiet.heartbeat_at is not None and quiet.heartbeat_at >= quiet.started_at

    settings.INGEST_HEARTBEAT_SECONDS = 0  # due at every check: every 256 records
    busy = feed_run_create(feed=feed, content=io.BytesIO(rows(600)), enqueue=False, reprocess=True)
    with CaptureQueriesContext(connection) as queries:
        feed_run_execute(run_id=busy.pk)
    assert sum(q["sql"].startswith(beats) for q in queries.captured_queries) == 2  # 256, 512


@pytest.mark.django_db(transaction=True)
def test_a_repeat_message_for_a_running_run_waits_for_the_lock_and_never_claims_it_twice() -> None:
    feed = FeedFactory()
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    FeedRun.objects.filter(pk=run.pk).update(
        status=FeedRun.Status.RUNNING, attempts=1, heartbeat_at=timezone.now()
    )
    with feed_locked_elsewhere(feed), pytest.raises(FeedBusy):
        feed_run_execute(run_id=run.pk)
    assert FeedRun.objects.get(pk=run.pk).attempts == 1
    # The lock is free: the holder is gone (a worker killed a moment ago), this message resumes.
    run = feed_run_execute(run_id=run.pk)
    assert (run.status, run.attempts, run.events_created) == ("succeeded", 2, 2)
    assert feed_run_execute(run_id=run.pk).attempts == 2  # ended: nothing to do


# --- the sweep --------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The broker is the outside world here: record what the sweep publishes."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.ingest_run, "delay", lambda run_id: calls.append(run_id))
    return calls


@pytest.mark.django_db
def test_the_sweep_sends_runs_that_lost_their_worker_or_their_message_and_no_others(
    feed: Feed, sent: list[int], settings: Any
) -> None:
    settings.INGEST_STALE_AFTER_SECONDS = 60
    settings.INGEST_UNSENT_GRACE_SECONDS = 30
    settings.INGEST_LOST_AFTER_SECONDS = 600
    now = timezone.now()
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    running, queued = FeedRun.Status.RUNNING, FeedRun.Status.QUEUED

    def make(status: str, **fields: Any) -> int:
        fields.setdefault("created_at", ago(3600))
        return FeedRun.objects.create(feed=feed, status=status, **fields).pk

    dead_worker = make(running, heartbeat_at=ago(90), enqueued_at=ago(3000))
    live_worker = make(running, heartbeat_at=ago(5), enqueued_at=ago(3000))
    just_resent = make(running, heartbeat_at=ago(300), enqueued_at=ago(20))
    never_sent = make(queued, enqueued_at=None, created_at=ago(45))
    being_sent = make(queued, enqueued_at=None, created_at=ago(5))
    on_its_way = make(queued, enqueued_at=ago(20))
    retry_due_later = make(queued, enqueued_at=now + timedelta(seconds=60))
    lost = make(queued, enqueued_at=ago(900))
    # A worker held its retry (a busy feed's wait) and stopped touching it: that worker died.
    retry_held_by_dead_worker = make(queued, enqueued_at=ago(90), heartbeat_at=ago(95))
    retry_held_by_live_worker = make(queued, enqueued_at=now, heartbeat_at=ago(5))
    make(FeedRun.Status.SUCCEEDED, heartbeat_at=ago(900), enqueued_at=ago(3000))
    make(FeedRun.Status.FAILED, enqueued_at=None)
    assert {live_worker, just_resent, being_sent, on_its_way, retry_due_later}
    assert retry_held_by_live_worker

    assert tasks.requeue_stuck_runs.apply().get() == 4
    assert sent == [dead_worker, never_sent, lost, retry_held_by_dead_worker]
    # Marked as sent: the next sweep (or a second beat's) does not send them again.
    assert lifecycle.runs_resend_stuck() == []
    assert len(sent) == 4


@pytest.mark.django_db
def test_the_sweep_is_bounded(feed: Feed, sent: list[int], settings: Any) -> None:
    settings.INGEST_SWEEP_LIMIT = 2
    old = timezone.now() - timedelta(hours=1)
    ids = [FeedRun.objects.create(feed=feed, created_at=old).pk for _ in range(3)]
    assert lifecycle.runs_resend_stuck() == ids[:2]
    assert lifecycle.runs_resend_stuck() == ids[2:]


# --- the broker down --------------------------------------------------------------------------


def _push(feed: Feed, body: bytes, **extra: Any) -> Any:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {feed_push_token_rotate(feed=feed)}")
    return client.generic(
        "POST", reverse("api-feed-payloads", args=[feed.code]), body, content_type="text/csv"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_a_push_while_the_broker_is_down_is_accepted_and_ingested_once_it_is_back(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.INGEST_UNSENT_GRACE_SECONDS = 0
    feed = FeedFactory()
    with broker(NOWHERE):
        response = _push(feed, rows(4))
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    run = FeedRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.enqueued_at) == ("queued", None)
    assert "the stuck-run sweep sends it once the broker is back" in caplog.text

    # The broker is back: the next sweep sends it, a real worker ingests it.
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        assert lifecycle.runs_resend_stuck() == [run.pk]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status not in lifecycle.UNFINISHED:
                break
            time.sleep(0.2)
    assert (run.status, run.events_created) == ("succeeded", 4)
    assert TrackingEvent.objects.filter(run=run).count() == 4


@pytest.mark.django_db
def test_a_busy_feeds_run_retries_in_five_seconds_and_says_a_worker_holds_it(
    feed: Feed, settings: Any
) -> None:
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    with feed_locked_elsewhere(feed), pytest.raises(Retry) as retry:
        tasks.ingest_run.apply(args=[run.pk], throw=True)
    assert retry.value.when == 5
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("queued", 0)  # waiting is not an attempt
    assert run.enqueued_at is not None and run.heartbeat_at is not None
    assert timedelta(seconds=4) < run.enqueued_at - run.heartbeat_at <= timedelta(seconds=6)


@pytest.mark.django_db
def test_a_busy_feeds_retry_that_cannot_be_published_leaves_the_run_to_the_sweep(
    feed: Feed, sent: list[int], settings: Any
) -> None:
    settings.INGEST_UNSENT_GRACE_SECONDS = 0
    run = feed_run_create(feed=feed, content=io.BytesIO(rows(2)), enqueue=False)
    FeedRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now())
    # As a worker runs it (not eagerly): the retry is published to the broker.
    tasks.ingest_run.push_request(id="busy-1", retries=0, called_directly=False, is_eager=False)
    try:
        with feed_locked_elsewhere(feed), broker(NOWHERE):
            assert tasks.ingest_run.run(run.pk) == "unsent"
    finally:
        tasks.ingest_run.pop_request()
    run.refresh_from_db()
    assert (run.status, run.enqueued_at, run.attempts) == ("queued", None, 0)
    assert lifecycle.runs_resend_stuck() == [run.pk]
    assert sent == [run.pk]


@pytest.mark.django_db(transaction=True)
def test_a_push_while_the_database_is_down_answers_json_503_with_retry_after() -> None:
    feed = FeedFactory()
    token = feed_push_token_rotate(feed=feed)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        response = client.generic(
            "POST", reverse("api-feed-payloads", args=[feed.code]), rows(1), content_type="text/csv"
        )
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert not FeedRun.objects.exists()


@pytest.mark.django_db
def test_an_unexpected_error_in_the_push_view_answers_json_not_an_html_page(
    feed: Feed, settings: Any, tmp_path: Any
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker / "media")  # the payload cannot be stored
    response = _push(feed, rows(1), raise_request_exception=False)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"


@pytest.mark.django_db(transaction=True)
def test_an_inbox_file_taken_while_the_broker_is_down_is_kept_for_the_sweep(
    tmp_path: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_UNSENT_GRACE_SECONDS = 0
    settings.INBOX_ROOT = tmp_path
    feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location=str(tmp_path))
    (tmp_path / "drop.csv").write_bytes(rows(2))
    with broker(NOWHERE):
        (run,) = inbox_collect(feed=feed)
    # The file was taken (not left in processing/ for a retry ten minutes later).
    assert list((tmp_path / "processing").iterdir()) == []
    run.refresh_from_db()
    assert (run.status, run.enqueued_at) == ("queued", None)

    sent: list[int] = []
    monkeypatch.setattr(tasks.ingest_run, "delay", lambda run_id: sent.append(run_id))
    assert lifecycle.runs_resend_stuck() == [run.pk]
    assert sent == [run.pk]


@pytest.mark.django_db
def test_the_ingest_command_ends_a_run_that_raises_failed_and_says_why(
    feed: Feed, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(rows(2))

    def broken(**kwargs: object) -> None:
        raise RuntimeError("recorder exploded")

    monkeypatch.setattr(batches, "events_record_start", broken)
    out = io.StringIO()
    with pytest.raises(CommandError, match="RuntimeError: recorder exploded"):
        call_command(
            "ingest",
            str(path),
            "--warehouse",
            feed.warehouse.code,
            "--feed",
            feed.code,
            "--json",
            stdout=out,
        )
    result = json.loads(out.getvalue().splitlines()[-1])
    assert result["status"] == "failed"
    assert result["error"] == (
        "failed on attempt 1 of 5: RuntimeError: recorder exploded — see the ingest command's "
        "output"
    )
    run = FeedRun.objects.get(pk=result["run_id"])
    assert (run.status, run.attempts) == ("failed", 1)


@pytest.mark.django_db(transaction=True)
def test_an_operator_re_runs_a_failed_run_from_the_admin_and_it_is_ingested(
    client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 1
    feed = FeedFactory()
    failed = feed_run_create(feed=feed, content=io.BytesIO(rows(3)), enqueue=False)
    real = status_rules.RECOMPUTE_SQL
    _failing_recompute(monkeypatch)
    with pytest.raises(Exception, match="division by zero"):
        feed_run_execute(run_id=failed.pk)
    assert FeedRun.objects.get(pk=failed.pk).status == "failed"
    monkeypatch.setattr(status_rules, "RECOMPUTE_SQL", real)  # the cause is fixed

    sent: list[int] = []
    monkeypatch.setattr(tasks.ingest_run, "delay", lambda run_id: sent.append(run_id))
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    changelist = reverse("admin:warehouses_feedrun_changelist")
    page = client.get(changelist + "?status__exact=failed")
    assert b"division by zero" in page.content  # the error column
    response = client.post(
        changelist, {"action": "rerun", "_selected_action": [failed.pk]}, follow=True
    )
    (new,) = FeedRun.objects.exclude(pk=failed.pk)
    assert f"Run {failed.pk} re-run as run {new.pk}" in response.content.decode()
    assert sent == [new.pk]
    assert feed_run_execute(run_id=new.pk).status == "succeeded"
    assert TrackingEvent.objects.count() == 3


@pytest.mark.django_db
def test_the_dashboards_feed_health_shows_failed_runs_and_the_latest_error(feed: Feed) -> None:
    now = timezone.now()
    FeedRun.objects.create(feed=feed, status="failed", error="old", created_at=now - timedelta(8))
    FeedRun.objects.create(feed=feed, status="failed", error="first", created_at=now - timedelta(2))
    latest = FeedRun.objects.create(
        feed=feed, status="failed", error="gave up after 5 attempts", created_at=now
    )
    FeedRun.objects.create(feed=feed, status="succeeded", created_at=now)
    (row,) = [r for r in feed_health(now=now) if r.feed_id == feed.pk]
    assert (row.failed_7d, row.last_failure_id, row.last_failure_error) == (
        2,
        latest.pk,
        "gave up after 5 attempts",
    )


@pytest.mark.django_db
def test_after_a_broker_restart_the_sweep_resends_runs_published_before_it_once(
    feed: Feed, sent: list[int], settings: Any
) -> None:
    """A message a worker had received when Redis died stays in Redis's unacked set for the
    visibility timeout (an hour); a new Redis server id tells the sweep to send those runs."""
    settings.INGEST_LOST_AFTER_SECONDS = 600
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    published = FeedRun.objects.create(
        feed=feed, enqueued_at=timezone.now() - timedelta(seconds=20)
    ).pk
    lifecycle.runs_resend_stuck()  # records the server id as it is now
    assert sent == []  # 20 s after publishing: on its way, as long as the broker did not restart

    client.set(lifecycle.BROKER_SERVER_KEY, "the id of the server before the restart")
    assert lifecycle.runs_resend_stuck() == [published]
    assert lifecycle.runs_resend_stuck() == []  # noticed once
    assert sent == [published]
