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
