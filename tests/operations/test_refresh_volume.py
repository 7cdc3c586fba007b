"""The scheduled refresh recounts events per day only for the days recent runs touched
(operations/volume.py); the statistics rebuild recounts them all. Both must give one answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from operations import services
from operations.models import DailyVolume, StatusSnapshot
from operations.retention.policy import retention_apply
from shipments.models import Shipment
from tests.conftest import hub_csv
from tests.operations.conftest import History, row
from warehouses.models import FeedRun

pytestmark = pytest.mark.django_db

HISTORY_EVENTS = 12 * 7 + 4 + 2 + 2  # tests/operations/conftest.py's build_history


def volume() -> dict[tuple[date, int | None, str], int]:
    return {
        (v.day, v.warehouse_id, v.destination_country): v.events for v in DailyVolume.objects.all()
    }


def on(day: date) -> int:
    return sum(DailyVolume.objects.filter(day=day).values_list("events", flat=True))


def runs_finished_long_ago() -> None:
    """As if the runs so far had finished well before the last refresh began."""
    FeedRun.objects.update(finished_at=F("finished_at") - timedelta(hours=1))


def test_a_late_event_for_a_closed_day_is_counted_after_the_next_refresh(
    history: History, ingest: Callable[..., FeedRun]
) -> None:
    services.dashboard_refresh()
    runs_finished_long_ago()
    late = history.now - timedelta(days=40, hours=3)  # a closed day, before the page's 30
    day = late.date()
    assert on(day) == 0

    run = ingest(history.feed, hub_csv(row("DL0000", "departed", late, "CN")))
    assert run.events_created == 1
    services.dashboard_refresh(stats=False)

    assert on(day) == 1
    assert sum(volume().values()) == HISTORY_EVENTS + 1
    incremental = volume()
    services.dashboard_refresh(stats=True)
    assert volume() == incremental


def test_a_day_recounted_again_is_not_counted_twice(
    history: History, ingest: Callable[..., FeedRun]
) -> None:
    services.dashboard_refresh()
    day = (history.now - timedelta(days=20)).date()
    before = on(day)
    extra = history.now - timedelta(days=20) + timedelta(minutes=1)
    ingest(history.feed, hub_csv(row("XTRA0001", "warehouse_received", extra, "CN")))

    # The run finished just now: each refresh inside the margin recounts its day again.
    services.dashboard_refresh(stats=False)
    services.dashboard_refresh(stats=False)
    assert on(extra.date()) == (before if extra.date() == day else 0) + 1
    assert sum(volume().values()) == HISTORY_EVENTS + 1


def test_a_refresh_with_no_run_since_the_last_one_counts_no_event(history: History) -> None:
    services.dashboard_refresh()
    runs_finished_long_ago()
    counted = volume()

    with CaptureQueriesContext(connection) as queries:
        services.dashboard_refresh(stats=False)

    assert not [q for q in queries if "INSERT INTO operations_dailyvolume" in q["sql"]]
    assert volume() == counted


def test_days_that_left_the_window_are_dropped_as_a_full_recount_drops_them(
    history: History, settings: Any
) -> None:
    services.dashboard_refresh()
    runs_finished_long_ago()
    settings.OPS_STATS_WINDOW_DAYS = 15  # the delivered parcels' first days fall out

    services.dashboard_refresh(stats=False)
    incremental = volume()
    assert min(day for day, _, _ in incremental) == (history.now - timedelta(days=15)).date()
    services.dashboard_refresh(stats=True)
    assert volume() == incremental
    assert sum(incremental.values()) < HISTORY_EVENTS


@pytest.mark.usefixtures("empty_retention_storage")
def test_a_refresh_after_a_retention_removal_stays_right(
    history: History, ingest: Callable[..., FeedRun]
) -> None:
    old = history.now - timedelta(days=400)
    run = ingest(
        history.feed,
        hub_csv(
            row("OLD00001", "warehouse_received", old - timedelta(hours=50), "CN"),
            row("OLD00001", "delivered", old, "RU"),
        ),
    )
    assert run.status == FeedRun.Status.SUCCEEDED
    Shipment.objects.filter(tracking_number="OLD00001").update(created_at=old - timedelta(days=3))
    services.dashboard_refresh()
    counted = volume()
    delivered = StatusSnapshot.objects.filter(status="delivered")
    assert sum(delivered.values_list("shipments", flat=True)) == 13
    runs_finished_long_ago()

    assert retention_apply(days=365, now=history.now).removed == 1
    services.dashboard_refresh(stats=False)

    assert sum(delivered.values_list("shipments", flat=True)) == 12
    assert volume() == counted  # its events were older than the window
    services.dashboard_refresh(stats=True)
    assert volume() == counted
