"""Tasks are thin; these prove the wiring, a real worker end to end, and retry behaviour."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Retry

from config.celery_app import app
from shipments.models import Shipment
from tests.conftest import FeedFactory, hub_csv
from warehouses import tasks
from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun
from warehouses.sources.schedules import feed_schedule_set


@pytest.mark.django_db(transaction=True)
@pytest.mark.celery_worker
def test_a_scheduled_feed_is_fetched_and_ingested_by_a_real_worker(
    tmp_path: Path, settings: Any
) -> None:
    settings.INBOX_ROOT = tmp_path
    feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location=str(tmp_path))
    schedule = feed_schedule_set(feed=feed, every_seconds=60)
    assert schedule is not None
    (tmp_path / "drop.csv").write_bytes(
        hub_csv("WRK001,departed,2026-05-01 09:00:00,,,CNSFH,CN,,,,rail,")
    )
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        # What beat does when the schedule is due: send the scheduled task with its args.
        app.send_task(schedule.task, args=json.loads(schedule.args))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if FeedRun.objects.filter(feed=feed, status=FeedRun.Status.SUCCEEDED).exists():
                break
            time.sleep(0.2)
    shipment = Shipment.objects.get(tracking_number="WRK001")
    assert (shipment.status, shipment.stage) == ("in_transit", "line_haul")


@pytest.mark.django_db
def test_a_failing_fetch_keeps_its_error_on_a_run_and_retries_with_backoff() -> None:
    feed = FeedFactory(transport=Feed.Transport.HTTP, source_location="http://127.0.0.1:9/none")
    with pytest.raises(Retry) as retry:
        tasks.fetch_feed.apply(args=[feed.pk], throw=True)
    assert retry.value.when == 30
    failed = FeedRun.objects.get(feed=feed)
    assert failed.status == FeedRun.Status.FAILED
    assert "attempt 1" in failed.error
    assert "127.0.0.1:9" in failed.error


@pytest.mark.django_db
def test_ingest_task_executes_the_run(feed: Feed) -> None:
    import io

    run = feed_run_create(
        feed=feed,
        content=io.BytesIO(hub_csv("TSK001,picked_up,2026-05-01T09:00:00Z,,,,CN,,,,,")),
        enqueue=False,
    )
    assert tasks.ingest_run.apply(args=[run.pk]).get() == "succeeded"
