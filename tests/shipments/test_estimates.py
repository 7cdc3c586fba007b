"""Delivery estimates: lane/stage statistics, fallback bases, recompute on status change and by
the scheduled job, the webhook outbox, and the API field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from shipments.models import (
    DeliveryEstimateStat,
    Shipment,
    ShipmentEstimate,
    WebhookDelivery,
    WebhookEndpoint,
)
from shipments.recording import EventInput, estimates, events_record
from shipments.tasks import refresh_delivery_estimates
from shipments.webhooks import secret_generate
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
ESTIMATE = "shipment.estimate_changed"


@pytest.fixture(autouse=True)
def _small_thresholds(settings: Any) -> None:
    # The production thresholds (30 / 200) need hundreds of parcels; the rules are the same.
    settings.ESTIMATE_MIN_SAMPLES = 5
    settings.ESTIMATE_CONFIDENCE_MEDIUM = 5
    settings.ESTIMATE_CONFIDENCE_HIGH = 12


def ev(tn: str, code: str, at: datetime, country: str, mode: str = "rail") -> EventInput:
    return EventInput(
        line=1,
        code=code,
        occurred_at=at,
        utc_offset_minutes=480 if country == "CN" else 180,
        tz_source="explicit",
        tracking_number=tn,
        country=country,
        location_name="Heihe" if country == "CN" else "Moscow",
        transport_mode=mode,
    )


def record(*events: EventInput) -> None:
    events_record(events=list(events), feed_id=None, run_id=None, warehouse_id=None, source="t")


def delivered_history(
    prefix: str,
    n: int,
    *,
    line_haul_days: float,
    origin: str = "CN",
    destination: str = "RU",
    mode: str = "rail",
    spread: float = 0.0,
) -> None:
    """n parcels delivered recently: first mile, then line haul for `line_haul_days` (+ i * spread),
    then one day of import customs and last mile."""
    batch: list[EventInput] = []
    for i in range(n):
        tn = f"{prefix}{i:04d}"
        start = NOW - timedelta(days=40, hours=i)
        haul = start + timedelta(days=1)
        customs = haul + timedelta(days=line_haul_days + i * spread)
        batch += [
            ev(tn, "warehouse_received", start, origin, mode),
            ev(tn, "departed", haul, origin, mode),
            ev(tn, "customs_import_cleared", customs, destination, mode),
            ev(tn, "delivered", customs + timedelta(days=1), destination, mode),
        ]
    record(*batch)


def start_line_haul(tn: str, at: datetime, *, origin: str = "CN", destination: str = "RU") -> None:
    """A parcel that is now in line haul on the lane (origin known from its first mile, the
    destination from the shop's registration)."""
    Shipment.objects.get_or_create(
        tracking_number=tn, defaults={"destination_country": destination}
    )
    record(
        ev(tn, "warehouse_received", at - timedelta(days=1), origin),
        ev(tn, "departed", at, origin),
    )


def stat(basis: str, stage: str, **key: str) -> DeliveryEstimateStat:
    return DeliveryEstimateStat.objects.get(basis=basis, stage=stage, **key)


def test_statistics_hold_the_remaining_time_from_each_stage_per_lane_destination_and_globally() -> (
    None
):
    delivered_history("A", 10, line_haul_days=6)
    written = estimates.estimate_stats_refresh()
    lane = stat("lane", "line_haul", origin_country="CN", destination_country="RU")
    # departed -> customs (6 d) -> delivered (+1 d)
    assert lane.samples == 10
    assert lane.p50_hours == pytest.approx(7 * 24)
    assert lane.transport_mode == "rail"
    assert stat("lane", "first_mile", origin_country="CN").p50_hours == pytest.approx(8 * 24)
    assert stat("lane", "last_mile", origin_country="CN").p50_hours == pytest.approx(0)
    assert stat("destination", "line_haul", destination_country="RU").samples == 10
    assert stat("global", "import_customs").p80_hours == pytest.approx(24)
    # 4 stages x 3 bases (no export customs events in this history)
    assert written == 12


def test_old_deliveries_outside_the_window_are_not_used(settings: Any) -> None:
    delivered_history("A", 6, line_haul_days=6)
    settings.ESTIMATE_WINDOW_DAYS = 20
    assert estimates.estimate_stats_refresh() == 0


def test_a_status_change_gives_a_lane_estimate_anchored_at_the_stage_entry() -> None:
    delivered_history("A", 10, line_haul_days=4, spread=0.5)
    estimates.estimate_stats_refresh()
    lane = stat("lane", "line_haul", origin_country="CN", destination_country="RU")
    entered = NOW - timedelta(hours=2)
    start_line_haul("NEW1", entered)
    est = ShipmentEstimate.objects.get(shipment__tracking_number="NEW1")
    assert est.stage == "line_haul"
    assert est.stage_entered_at == entered
    assert est.basis == "lane"
    assert est.samples == 10
    assert est.confidence == "medium"
    assert est.earliest == pytest.approx(
        entered + timedelta(hours=lane.p50_hours), abs=timedelta(seconds=1)
    )
    assert est.latest is not None and est.earliest is not None
    assert est.latest > est.earliest


def test_a_thin_lane_falls_back_to_its_destination_then_to_all_lanes() -> None:
    delivered_history("A", 10, line_haul_days=4)  # CN -> RU rail: enough
    delivered_history("B", 3, line_haul_days=9, origin="KZ")  # KZ -> RU rail: too few
    delivered_history("C", 3, line_haul_days=2, origin="CN", destination="US", mode="air")
    estimates.estimate_stats_refresh()
    start_line_haul("KZ1", NOW, origin="KZ")
    start_line_haul("PL1", NOW, origin="CN", destination="PL")
    kz = ShipmentEstimate.objects.get(shipment__tracking_number="KZ1")
    pl = ShipmentEstimate.objects.get(shipment__tracking_number="PL1")
    assert (kz.basis, kz.samples, kz.confidence) == ("destination", 13, "high")
    assert (pl.basis, pl.samples, pl.confidence) == ("global", 16, "high")


def test_confidence_is_low_when_few_deliveries_support_the_estimate() -> None:
    delivered_history("A", 3, line_haul_days=4)
    estimates.estimate_stats_refresh()
    start_line_haul("NEW1", NOW)
    est = ShipmentEstimate.objects.get(shipment__tracking_number="NEW1")
    assert (est.basis, est.samples, est.confidence) == ("global", 3, "low")


def test_without_any_history_the_anchor_is_kept_and_no_dates_are_invented() -> None:
    start_line_haul("NEW1", NOW)
    est = ShipmentEstimate.objects.get(shipment__tracking_number="NEW1")
    assert est.earliest is None and est.latest is None and est.basis == ""


def test_an_overdue_parcel_is_expected_from_now_not_in_the_past() -> None:
    delivered_history("A", 10, line_haul_days=2)
    estimates.estimate_stats_refresh()
    start_line_haul("LATE1", NOW - timedelta(days=30))
    est = ShipmentEstimate.objects.get(shipment__tracking_number="LATE1")
    assert est.earliest is not None and est.earliest >= NOW


def test_delivery_removes_the_estimate() -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    start_line_haul("NEW1", NOW - timedelta(days=1))
    assert ShipmentEstimate.objects.filter(shipment__tracking_number="NEW1").exists()
    record(ev("NEW1", "delivered", NOW, "RU"))
    assert not ShipmentEstimate.objects.filter(shipment__tracking_number="NEW1").exists()


def test_a_new_stage_moves_the_anchor_and_uses_that_stages_statistics() -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    start_line_haul("NEW1", NOW - timedelta(days=5))
    customs_at = NOW - timedelta(hours=1)
    record(ev("NEW1", "customs_import_submitted", customs_at, "RU"))
    est = ShipmentEstimate.objects.get(shipment__tracking_number="NEW1")
    assert est.stage == "import_customs"
    assert est.stage_entered_at == customs_at
    assert est.earliest == pytest.approx(customs_at + timedelta(days=1), abs=timedelta(seconds=1))


@pytest.fixture
def endpoint(shop_a: ShopClient) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        shop=shop_a.shop,
        url="http://127.0.0.1:9/hooks",
        event_types=[ESTIMATE, "shipment.status_changed"],
        secret=secret_generate(),
    )


def test_an_estimate_change_writes_an_estimate_changed_notice_with_the_status_change(
    shop_a: ShopClient, endpoint: WebhookEndpoint
) -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    Shipment.objects.create(tracking_number="NEW1", shop=shop_a.shop, destination_country="RU")
    start_line_haul("NEW1", NOW)
    notices = list(WebhookDelivery.objects.filter(event_type=ESTIMATE))
    assert len(notices) == 1
    data = notices[0].data
    assert data["tracking_number"] == "NEW1"
    assert data["estimated_delivery"]["basis"] == "lane"
    assert data["estimated_delivery"]["confidence"] == "medium"
    assert data["previous_estimated_delivery"] is None
    # Sequences stay one counter per shipment across notice types.
    sequences = sorted(WebhookDelivery.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    status_seq = WebhookDelivery.objects.get(event_type="shipment.status_changed").sequence
    assert notices[0].sequence > status_seq


def test_an_event_that_leaves_the_estimated_dates_alone_sends_no_estimate_notice(
    shop_a: ShopClient, endpoint: WebhookEndpoint
) -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    Shipment.objects.create(tracking_number="NEW1", shop=shop_a.shop, destination_country="RU")
    start_line_haul("NEW1", NOW)
    record(ev("NEW1", "border_crossed", NOW + timedelta(hours=3), "RU"))
    assert WebhookDelivery.objects.filter(event_type=ESTIMATE).count() == 1


def test_the_scheduled_job_estimates_older_shipments_and_notifies_once(
    shop_a: ShopClient, endpoint: WebhookEndpoint
) -> None:
    Shipment.objects.create(tracking_number="OLD1", shop=shop_a.shop, destination_country="RU")
    start_line_haul("OLD1", NOW - timedelta(hours=5))
    # Shipments from before the estimator: no estimate row at all.
    ShipmentEstimate.objects.all().delete()
    delivered_history("A", 10, line_haul_days=4)
    WebhookDelivery.objects.all().delete()

    assert refresh_delivery_estimates.apply().get() == 1
    est = ShipmentEstimate.objects.get(shipment__tracking_number="OLD1")
    assert est.stage_entered_at == NOW - timedelta(hours=5)
    assert est.basis == "lane"
    assert WebhookDelivery.objects.filter(event_type=ESTIMATE).count() == 1
    # Safe twice: nothing changed, nothing written.
    assert refresh_delivery_estimates.apply().get() == 0
    assert WebhookDelivery.objects.filter(event_type=ESTIMATE).count() == 1


def test_the_scheduled_job_works_in_chunks_and_drops_estimates_of_closed_shipments() -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    for i in range(5):
        start_line_haul(f"N{i}", NOW)
    Shipment.objects.filter(tracking_number="N0").update(status="expired")
    ShipmentEstimate.objects.exclude(shipment__tracking_number="N0").delete()
    estimates.estimates_refresh(chunk=2)
    assert ShipmentEstimate.objects.filter(earliest__isnull=False).count() == 4
    assert not ShipmentEstimate.objects.filter(shipment__tracking_number="N0").exists()


def test_recording_a_batch_still_costs_a_constant_number_of_queries_with_estimates() -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    batch = [ev(f"Q{i:04d}", "departed", NOW - timedelta(hours=i), "CN") for i in range(200)]
    with CaptureQueriesContext(connection) as queries:
        record(*batch)
    assert len(queries) <= 8
    assert ShipmentEstimate.objects.count() == 200


def test_the_api_shows_the_estimate_with_its_range_confidence_and_basis(
    shop_a: ShopClient,
) -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    Shipment.objects.create(tracking_number="NEW1", shop=shop_a.shop, destination_country="RU")
    start_line_haul("NEW1", NOW)
    detail = shop_a.client.get(reverse("api-shipment", args=["NEW1"])).json()
    est = detail["estimated_delivery"]
    assert est["basis"] == "lane"
    assert est["confidence"] == "medium"
    assert est["samples"] == 10
    assert est["stage"] == "line_haul"
    assert datetime.fromisoformat(est["earliest"]) <= datetime.fromisoformat(est["latest"])
    listed = shop_a.client.get(reverse("api-shipments")).json()["results"]
    assert listed[0]["estimated_delivery"] == est


def test_the_api_shows_no_estimate_for_a_delivered_shipment(shop_a: ShopClient) -> None:
    Shipment.objects.create(tracking_number="D1", shop=shop_a.shop)
    record(ev("D1", "delivered", datetime(2026, 5, 1, tzinfo=UTC), "RU"))
    detail = shop_a.client.get(reverse("api-shipment", args=["D1"])).json()
    assert detail["estimated_delivery"] is None


def test_the_admin_shows_the_estimate_on_the_shipment_page_and_the_statistics(
    admin_client: Any,
) -> None:
    delivered_history("A", 10, line_haul_days=4)
    estimates.estimate_stats_refresh()
    start_line_haul("NEW1", NOW)
    shipment = Shipment.objects.get(tracking_number="NEW1")
    page = admin_client.get(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Estimated delivery (p50 – p80, UTC)" in html
    assert "medium" in html
    stats = admin_client.get(reverse("admin:shipments_deliveryestimatestat_changelist"))
    assert stats.status_code == 200
    assert "line_haul" in stats.content.decode() or "Line haul" in stats.content.decode()
