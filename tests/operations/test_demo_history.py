"""The demo history (`demo_history`): a small load through the real pipeline fills the dashboard.

One load of 28 days at 8 orders a day (seed 3) is shared by the checks below: the lanes'
medians add up to about 5 days by air, 12 by road and rail to Moscow and 19 by rail to Europe
(docs/demo-history.md), so each lane has delivered parcels well inside 28 days.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from operations.models import ExceptionItem, LaneStageStat
from operations.services import dashboard_refresh
from shipments.models import Shipment, TrackingEvent, UnitMembership
from warehouses.models import CustomsDocument, CustomsMatch, FeedRun, RejectedRecord

pytestmark = pytest.mark.django_db

UNTIL = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _load() -> dict[str, Any]:
    out = io.StringIO()
    call_command(
        "demo_history", days=28, per_day=8, seed=3, until=UNTIL.isoformat(), json=True, stdout=out
    )
    return dict(json.loads(out.getvalue().strip().splitlines()[-1]))


@pytest.fixture
def history(settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.INBOX_ROOT = tmp_path
    call_command("demo_seed", stdout=io.StringIO())
    return _load()


def test_the_history_fills_the_three_lanes_and_the_dashboard(history: dict[str, Any]) -> None:
    delivered = Shipment.objects.filter(status="delivered")
    lanes = set(delivered.values_list("origin_country", "destination_country", "transport_mode"))
    assert {("CN", "RU", "road"), ("CN", "US", "air")} <= lanes
    assert lanes & {("CN", "DE", "rail"), ("CN", "PL", "rail")}

    assert dashboard_refresh(stats=True).refreshed
    overall = LaneStageStat.objects.filter(week__isnull=True, stage="")
    air = overall.get(origin_country="CN", destination_country="US", transport_mode="air")
    # Medians of the air lane's steps add up to about 120 h door to door.
    assert 60 < air.p50_hours <= air.p90_hours < 400
    road = overall.get(origin_country="CN", destination_country="RU", transport_mode="road")
    assert air.p50_hours < road.p50_hours <= road.p90_hours


def test_the_history_has_units_documents_failures_and_rejects(history: dict[str, Any]) -> None:
    assert UnitMembership.objects.filter(unloaded_at__isnull=False).exists()
    assert UnitMembership.objects.values("unit_id").distinct().count() >= 2
    assert CustomsDocument.objects.filter(doc_type="waybill").exists()
    assert CustomsMatch.objects.filter(result="matched").exists()
    assert TrackingEvent.objects.filter(code="delivery_failed").exists()
    assert TrackingEvent.objects.filter(code__in=["customs_held", "customs_export_held"]).exists()
    rejects = RejectedRecord.objects.all()
    assert rejects.exists()
    assert all(reason for reason in rejects.values_list("reason", flat=True))
    assert history["rejected"] == rejects.count()
    # Runs are dated when their files arrived: before the last 3 days, a file per 7 days (the
    # last of those 25 days closing one), so the first 4 days' rows arrive together at the end
    # of day 4 of 28, 24 days before UNTIL.
    first = FeedRun.objects.order_by("created_at").first()
    assert first is not None and first.created_at == UNTIL - timedelta(days=24)
    dashboard_refresh(stats=True)
    assert ExceptionItem.objects.filter(kind="failed_attempt").exists()


def test_loading_the_same_history_again_adds_nothing(history: dict[str, Any]) -> None:
    events = TrackingEvent.objects.count()
    assert events == history["events"] > 0
    again = _load()
    assert again["events"] == 0
    assert again["duplicate_runs"] == again["runs"] == history["runs"]
    assert TrackingEvent.objects.count() == events


def _stored() -> dict[str, list[tuple[Any, ...]]]:
    """What a load leaves, by natural keys (run and row ids differ between loads)."""
    return {
        # A parcel the customs documents name before any event keeps the time of its load.
        "shipments": sorted(
            (*row, created if row[3] else None)
            for *row, created in Shipment.objects.values_list(
                "tracking_number", "status", "stage", "last_event_at", "order_number",
                "declared_value", "transport_mode", "created_at",
            )
        ),
        "events": sorted(
            TrackingEvent.objects.values_list(
                "shipment__tracking_number", "unit__number", "code", "occurred_at", "feed__code"
            ),
            key=repr,
        ),
        "memberships": sorted(
            UnitMembership.objects.values_list(
                "unit__number", "shipment__tracking_number", "loaded_at", "unloaded_at"
            )
        ),
        "matches": sorted(CustomsMatch.objects.values_list("order_no", "result", "missing")),
        "runs": sorted(
            FeedRun.objects.values_list(
                "original_name", "status", "created_at", "events_created", "rejected"
            )
        ),
        "rejects": sorted(
            RejectedRecord.objects.values_list("run__original_name", "line", "reason")
        ),
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_lanes_loaded_side_by_side_give_what_one_load_in_order_gives(
    settings: Any, tmp_path: Path
) -> None:
    """`--jobs 2` (what `make demo` uses) loads each lane's feeds in a process of its own."""
    settings.INBOX_ROOT = tmp_path

    def load(jobs: int) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
        call_command("flush", interactive=False, verbosity=0)
        call_command("demo_seed", stdout=io.StringIO())
        out = io.StringIO()
        call_command(
            "demo_history", days=20, per_day=4, seed=4, until=UNTIL.isoformat(), jobs=jobs,
            json=True, stdout=out,
        )  # fmt: skip
        return dict(json.loads(out.getvalue().strip().splitlines()[-1])), _stored()

    in_order, stored_in_order = load(1)
    side_by_side, stored_side_by_side = load(2)
    # Every lane is in the load, with containers, documents and a reject or more.
    assert {n[:3] for n, *_ in stored_in_order["shipments"]} >= {"HHE", "HRA", "SFH"}
    assert stored_in_order["memberships"] and stored_in_order["matches"]
    assert in_order["events"] == len(stored_in_order["events"]) > 0
    for figures in (in_order, side_by_side):
        figures.pop("seconds")
    assert side_by_side == in_order
    for name, rows in stored_in_order.items():
        assert stored_side_by_side[name] == rows, name
