from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from operations import services
from operations.models import (
    DailyShipments,
    DailyVolume,
    DashboardRefresh,
    ExceptionAck,
    ExceptionItem,
    FeedHealth,
    LaneStageStat,
    StatusSnapshot,
    WarehouseDwellStat,
)
from operations.selectors import dashboard_get, feed_health
from operations.tasks import refresh_dashboard
from tests.conftest import FeedFactory, ShipmentFactory, hub_csv
from tests.operations.conftest import DELIVERED_PATH, History, row
from warehouses.models import CustomsMatch, FeedRun
from warehouses.sources.schedules import feed_schedule_set

pytestmark = pytest.mark.django_db


def lane(stage: str, week_null: bool = True) -> LaneStageStat:
    return LaneStageStat.objects.get(
        origin_country="CN",
        destination_country="RU",
        transport_mode="rail",
        stage=stage,
        week__isnull=week_null,
    )


def test_lane_percentiles_come_from_the_stage_history(history: History) -> None:
    services.dashboard_refresh()

    line_haul = lane("line_haul")
    assert line_haul.samples == 12
    assert line_haul.p50_hours == pytest.approx(30.0)
    assert 30.0 < line_haul.p90_hours <= 60.0
    total = lane("")
    assert total.samples == 12
    assert total.p50_hours == pytest.approx(80.0)
    assert lane("first_mile").p50_hours == pytest.approx(20.0)
    # every lane together, per week too: the trend chart's series
    assert LaneStageStat.objects.filter(origin_country="*", stage="", week__isnull=False).exists()


def test_warehouse_dwell_is_received_to_dispatched(history: History) -> None:
    services.dashboard_refresh()

    dwell = WarehouseDwellStat.objects.get(warehouse=history.feed.warehouse, week__isnull=True)
    assert dwell.samples == 13  # 12 delivered + the stuck one
    assert dwell.p50_hours == pytest.approx(10.0)
    assert WarehouseDwellStat.objects.filter(warehouse__isnull=True, week__isnull=True).exists()


def test_volume_and_status_tables_count_events_and_shipments(history: History) -> None:
    services.dashboard_refresh()

    assert sum(DailyVolume.objects.values_list("events", flat=True)) == 12 * 7 + 4 + 2 + 2
    assert sum(DailyShipments.objects.values_list("shipments", flat=True)) == 15
    delivered = StatusSnapshot.objects.filter(status="delivered", destination_country="RU")
    assert sum(delivered.values_list("shipments", flat=True)) == 12


def test_exceptions_queue_holds_stale_customs_failed_and_document_mismatches(
    history: History,
) -> None:
    CustomsMatch.objects.create(
        order_no="ORD-1",
        result=CustomsMatch.Result.MISMATCH,
        mismatched=["amount"],
        shipment=history.failed,
    )
    services.dashboard_refresh()

    items = {(i.shipment_id, i.kind): i for i in ExceptionItem.objects.all()}
    assert set(items) == {
        (history.stale.pk, "stale"),
        (history.held.pk, "customs"),
        (history.failed.pk, "failed_attempt"),
        (history.failed.pk, "documents"),
    }
    stale = items[(history.stale.pk, "stale")]
    assert stale.stage == "line_haul"
    assert "p90" in stale.detail
    assert "customs_held" in items[(history.held.pk, "customs")].detail
    assert "amount" in items[(history.failed.pk, "documents")].detail


def test_a_parcel_within_its_lanes_p90_is_not_stale(history: History, ingest) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import hub_csv
    from tests.operations.conftest import row

    ingest(history.feed, hub_csv(row("FRESH0001", "departed", timezone.now(), "CN")))
    services.dashboard_refresh()

    assert not ExceptionItem.objects.filter(shipment__tracking_number="FRESH0001").exists()


def test_an_acknowledged_exception_stays_hidden_until_a_new_situation_starts(
    history: History, ingest, admin_user
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import hub_csv
    from tests.operations.conftest import row

    services.dashboard_refresh()
    item = ExceptionItem.objects.get(shipment=history.held, kind="customs")
    services.exceptions_acknowledge(items=[item], by=admin_user, note="broker called")
    # as if the operator had acknowledged it three hours ago
    ExceptionAck.objects.update(at=timezone.now() - timedelta(hours=3))
    services.dashboard_refresh()

    item = ExceptionItem.objects.get(shipment=history.held, kind="customs")
    assert item.acknowledged_at is not None
    assert item.note == "broker called"
    # Released, then held again: a new situation, back in the queue (the note stays).
    ingest(
        history.feed,
        hub_csv(
            row("HELD00001", "customs_import_cleared", timezone.now() - timedelta(hours=2), "RU"),
            row("HELD00001", "customs_held", timezone.now() - timedelta(minutes=1), "RU"),
        ),
    )
    services.dashboard_refresh()
    item = ExceptionItem.objects.get(shipment=history.held, kind="customs")
    assert item.acknowledged_at is None
    assert item.note == "broker called"


def test_exception_ids_survive_a_refresh(history: History) -> None:
    services.dashboard_refresh()
    before = dict(ExceptionItem.objects.values_list("kind", "pk"))
    services.dashboard_refresh()
    assert dict(ExceptionItem.objects.values_list("kind", "pk")) == before


def test_a_feed_quiet_for_three_schedule_intervals_is_red(history: History) -> None:
    scheduled = FeedFactory()
    feed_schedule_set(feed=scheduled, every_seconds=60)
    old = timezone.now() - timedelta(minutes=10)
    FeedRun.objects.create(
        feed=scheduled, status=FeedRun.Status.SUCCEEDED, created_at=old, finished_at=old
    )
    unscheduled_quiet = FeedFactory()
    long_ago = timezone.now() - timedelta(days=2)
    FeedRun.objects.create(
        feed=unscheduled_quiet,
        status=FeedRun.Status.SUCCEEDED,
        created_at=long_ago,
        finished_at=long_ago,
        records=10,
        rejected=0,
    )
    failing = FeedFactory()
    FeedRun.objects.create(feed=failing, status=FeedRun.Status.SUCCEEDED, finished_at=old)
    FeedRun.objects.create(feed=failing, status=FeedRun.Status.FAILED)
    services.dashboard_refresh()

    states = {row.code: row for row in feed_health(now=timezone.now())}
    assert states[history.feed.code].state == "ok"
    assert states[scheduled.code].state == "quiet"
    assert states[scheduled.code].every_seconds == 60
    assert states[unscheduled_quiet.code].state == "quiet"
    assert states[failing.code].state == "failing"
    assert FeedHealth.objects.get(feed=history.feed).rejected_7d == 0


def test_a_feed_added_after_the_refresh_is_listed_as_never_run(history: History) -> None:
    services.dashboard_refresh()
    new = FeedFactory()
    row = {r.code: r for r in feed_health(now=timezone.now())}[new.code]
    assert row.state == "quiet"
    assert row.last_run_id is None


def test_the_rejected_rate_counts_the_last_seven_days(history: History, ingest) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import hub_csv

    ingest(history.feed, hub_csv("BAD1,departed,not-a-time,,,,CN,,,,rail,"))
    services.dashboard_refresh()
    health = FeedHealth.objects.get(feed=history.feed)
    assert health.rejected_7d == 1
    assert health.records_7d == 12 * 7 + 4 + 4 + 1


def test_shipments_with_nothing_wrong_never_enter_the_queue(history: History) -> None:
    ShipmentFactory()
    services.dashboard_refresh()
    assert not ExceptionItem.objects.filter(
        Q(shipment__status="delivered") | Q(shipment__status="pending")
    ).exists()


def test_the_selector_builds_lanes_and_trend(history: History) -> None:
    services.dashboard_refresh()
    data = dashboard_get(now=timezone.now())
    (cn_ru,) = [x for x in data.lanes if (x.origin, x.destination) == ("CN", "RU")]
    assert cn_ru.total is not None and cn_ru.total.samples == 12
    assert cn_ru.stages["line_haul"].p50 == 30.0
    assert data.transit_trend
    assert sum(n for _, n in data.events_per_day) > 0
    assert data.exception_counts["stale"] == 1


def test_the_refresh_task_runs_the_refresh(history: History) -> None:
    seconds = refresh_dashboard.apply().get()
    assert seconds > 0
    assert LaneStageStat.objects.exists()


def test_a_refresh_without_statistics_keeps_them_and_still_moves_status_and_exceptions(
    history: History, ingest: Callable[..., FeedRun]
) -> None:
    services.dashboard_refresh()
    assert lane("").samples == 12
    stale_before = ExceptionItem.objects.get(kind="stale").shipment_id

    # A thirteenth delivered parcel, and the stuck one moves on (no longer stale).
    start = history.now - timedelta(days=15)
    rows = [row("DL0013", code, start + timedelta(hours=h), c) for code, h, c in DELIVERED_PATH]
    rows.append(row("STUCK0001", "customs_import_cleared", history.now - timedelta(hours=1), "RU"))
    assert ingest(history.feed, hub_csv(*rows)).status == FeedRun.Status.SUCCEEDED

    services.dashboard_refresh(stats=False)
    assert lane("").samples == 12  # kept from the last statistics
    assert not ExceptionItem.objects.filter(kind="stale", shipment_id=stale_before).exists()
    delivered = StatusSnapshot.objects.filter(status="delivered")
    assert sum(delivered.values_list("shipments", flat=True)) == 13
    data = dashboard_get(now=timezone.now())
    assert data.stats_at is not None and data.refreshed_at is not None
    assert data.stats_at < data.refreshed_at

    services.dashboard_refresh(stats=True)
    assert lane("").samples == 13
    data = dashboard_get(now=timezone.now())
    assert data.stats_at == data.refreshed_at


def test_the_scheduled_refresh_rebuilds_statistics_only_when_due(
    history: History, settings: Any
) -> None:
    settings.OPS_STATS_REFRESH_EVERY_SECONDS = 3600
    refresh_dashboard.apply()  # none yet: due
    refresh_dashboard.apply()  # built a moment ago: kept
    assert list(DashboardRefresh.objects.order_by("id").values_list("stats", flat=True)) == [
        True,
        False,
    ]
    DashboardRefresh.objects.update(finished_at=F("finished_at") - timedelta(hours=2))
    refresh_dashboard.apply()  # the last statistics are two hours old: due again
    refresh_dashboard.apply(kwargs={"everything": True})  # asked for: rebuilt anyway
    assert list(DashboardRefresh.objects.order_by("id").values_list("stats", flat=True)) == [
        True,
        False,
        True,
        True,
    ]


def test_the_refresh_leaves_the_queue_with_fresh_planner_statistics(history: History) -> None:
    # The page's queue query is planned from these; autovacuum would only catch up later.
    services.dashboard_refresh(stats=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'operations_exceptionitem'")
        (estimated,) = cursor.fetchone()
    assert estimated == ExceptionItem.objects.count() > 0


def test_a_refresh_with_no_completed_warehouse_stay_stores_no_dwell_and_does_not_fail(
    ingest: Callable[..., FeedRun],
) -> None:
    # Ordinary traffic before any parcel has left a warehouse: received, never dispatched, and
    # one dispatch scanned before its receipt. No received-to-dispatched span exists, so there
    # is no dwell to report: no rows, rather than a total row with empty percentiles.
    now = timezone.now()
    feed = FeedFactory()
    ingest(
        feed,
        hub_csv(
            row("DW0001", "warehouse_received", now - timedelta(hours=5), "CN"),
            row("DW0002", "warehouse_dispatched", now - timedelta(hours=9), "CN"),
            row("DW0002", "warehouse_received", now - timedelta(hours=4), "CN"),
        ),
    )
    services.dashboard_refresh()
    assert not WarehouseDwellStat.objects.exists()
    assert DashboardRefresh.objects.exists()
