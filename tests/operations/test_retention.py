"""Retention (docs/retention.md): old delivered and returned parcels are exported to one file per
month, removed set-based, and come back whole with retention_import."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from operations.models import (
    DailyShipments,
    DailyVolume,
    ExceptionAck,
    LaneStageStat,
    WarehouseDwellStat,
)
from operations.retention import archive, removal
from operations.retention.importing import retention_import
from operations.retention.policy import retention_apply
from operations.services import dashboard_refresh
from operations.tasks import apply_retention
from shipments.models import (
    BuyerContact,
    DeliveryEstimateStat,
    Shipment,
    ShipmentClaim,
    Shop,
    StatusChange,
    TrackingEvent,
    TransportUnit,
    UnitMembership,
    WebhookDelivery,
    WebhookEndpoint,
)
from shipments.recording.estimates import estimate_stats_refresh
from shipments.services import shop_api_key_create
from tests.conftest import FeedFactory, ShopFactory, WarehouseFactory, hub_csv
from tests.operations.conftest import build_history, row
from tests.operations.retention_files import (
    DAYS,
    file_name,
    file_records,
    present,
)
from warehouses.models import CustomsMatch, FeedRun, Warehouse

pytestmark = pytest.mark.usefixtures("empty_retention_storage")


@dataclass
class Parcels:
    now: datetime
    shop_a: Shop
    shop_b: Shop
    unit: TransportUnit


def _client(shop: Shop) -> APIClient:
    _api_key, key = shop_api_key_create(shop=shop)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def parcels(ingest: Callable[..., FeedRun]) -> Parcels:
    """OLD00001: delivered 400 days ago, 3 events, a membership, a claim, a note, a webhook.
    RET00001: returned 460 days ago (another month), 2 events.
    NEW00001: delivered 10 days ago (stays). OPEN0001: in transit since 400 days (stays)."""
    now = timezone.now()
    feed = FeedFactory(warehouse=WarehouseFactory(code="heihe", country="CN"))
    old = now - timedelta(days=400)
    ret = now - timedelta(days=460)
    rows = [
        row("OLD00001", "warehouse_received", old - timedelta(hours=50), "CN"),
        row("OLD00001", "departed", old - timedelta(hours=30), "CN"),
        row("OLD00001", "delivered", old, "RU"),
        row("RET00001", "warehouse_received", ret - timedelta(hours=40), "CN"),
        row("RET00001", "returned", ret, "CN"),
        row("NEW00001", "warehouse_received", now - timedelta(days=12), "CN"),
        row("NEW00001", "delivered", now - timedelta(days=10), "RU"),
        row("OPEN0001", "departed", old, "CN"),
    ]
    run = ingest(feed, hub_csv(*rows))
    assert run.status == FeedRun.Status.SUCCEEDED, run.rejects.values_list("reason", flat=True)
    # In the hub for 500 days (the recorder wrote them just now).
    Shipment.objects.update(created_at=now - timedelta(days=500))
    shop_a, shop_b = ShopFactory(slug="shop-a"), ShopFactory(slug="shop-b")
    Shipment.objects.filter(tracking_number="OLD00001").update(shop=shop_a)
    Shipment.objects.filter(tracking_number="NEW00001").update(shop=shop_b)
    parcel = Shipment.objects.get(tracking_number="OLD00001")
    unit = TransportUnit.objects.create(number="CONT0001", kind="container")
    UnitMembership.objects.create(
        unit=unit,
        shipment=parcel,
        loaded_at=old - timedelta(hours=31),
        unloaded_at=old - timedelta(hours=5),
    )
    TrackingEvent.objects.create(
        unit=unit,
        code="departed",
        status="in_transit",
        stage="line_haul",
        occurred_at=old - timedelta(hours=29),
        utc_offset_minutes=0,
        tz_source="explicit",
        dedupe_key="00000000-0000-0000-0000-000000000001",
    )
    ShipmentClaim.objects.create(
        shipment=parcel, shop=shop_a, proof="order_number", outcome="attached"
    )
    ExceptionAck.objects.create(shipment=parcel, kind="stale", note="called the carrier")
    endpoint = WebhookEndpoint.objects.create(shop=shop_a, url="https://example.com/h", secret="s")
    WebhookDelivery.objects.create(
        message_id="00000000-0000-0000-0000-0000000000aa",
        endpoint=endpoint,
        shipment=parcel,
        event_type="shipment.status_changed",
        sequence=1,
        data={},
        state="delivered",
    )
    CustomsMatch.objects.create(order_no="ORD-1", result="matched", shipment=parcel)
    return Parcels(now=now, shop_a=shop_a, shop_b=shop_b, unit=unit)


def _shipments(name: str) -> list[dict[str, Any]]:
    return [r for r in file_records(name) if r["record"] == "shipment"]


def test_old_delivered_and_returned_parcels_go_to_a_file_per_month_and_the_rest_stays(
    parcels: Parcels,
) -> None:
    history = StatusChange.objects.filter(shipment__tracking_number="OLD00001").count()
    assert history == 1  # one batch: pending -> delivered

    result = retention_apply(days=DAYS, now=parcels.now)

    assert result.removed == 2
    old_file = file_name(parcels.now - timedelta(days=400))
    returned_file = file_name(parcels.now - timedelta(days=460))
    # The unit's month is its own event's (29 hours before OLD00001's delivery).
    unit_file = file_name(parcels.now - timedelta(days=400, hours=29))
    assert sorted({p.name for p in result.periods}) == sorted({old_file, returned_file, unit_file})
    assert present() == {"NEW00001", "OPEN0001"}
    assert TrackingEvent.objects.filter(shipment__isnull=False).count() == 3  # 2 new + 1 open
    assert not UnitMembership.objects.exists()
    assert not ShipmentClaim.objects.exists() and not ExceptionAck.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert CustomsMatch.objects.get(order_no="ORD-1").shipment_id is None
    # Its only parcel gone, the container goes too, with its own event, into its month's file.
    assert result.removed_units == 1 and not TransportUnit.objects.exists()
    assert not TrackingEvent.objects.filter(unit__isnull=False).exists()
    [unit] = [r for r in file_records(unit_file) if r["record"] == "unit"]
    assert (unit["number"], unit["kind"]) == ("CONT0001", "container")
    assert [e["dedupe_key"] for e in unit["events"]] == ["00000000-0000-0000-0000-000000000001"]

    header, *rows, end = file_records(old_file)
    [record] = [r for r in rows if r["record"] == "shipment"]
    assert header["format"] == "hub-retention" and header["version"] == 2
    assert end == {"record": "end", "shipments": 1, "units": len(rows) - 1}
    assert record["tracking_number"] == "OLD00001" and record["shop"] == "shop-a"
    assert record["status"] == "delivered"
    assert [e["code"] for e in record["events"]] == ["warehouse_received", "departed", "delivered"]
    assert [(c["from_status"], c["to_status"]) for c in record["status_changes"]] == [
        ("pending", "delivered")
    ]
    assert [m["unit"] for m in record["memberships"]] == ["CONT0001"]
    assert [c["shop"] for c in record["claims"]] == ["shop-a"]
    assert [n["note"] for n in record["exception_notes"]] == ["called the carrier"]
    assert [r["tracking_number"] for r in file_records(returned_file)[1:-1]] == ["RET00001"]


def test_a_re_import_brings_the_parcel_back_whole_to_its_shop_only(parcels: Parcels) -> None:
    before = Shipment.objects.get(tracking_number="OLD00001")
    keys = set(TrackingEvent.objects.filter(shipment=before).values_list("dedupe_key", flat=True))
    retention_apply(days=DAYS, now=parcels.now)
    name = file_name(parcels.now - timedelta(days=400))

    first = retention_import(name)
    second = retention_import(name)

    assert (first.imported, second.imported, second.already_present) == (1, 0, 1)
    back = Shipment.objects.get(tracking_number="OLD00001")
    assert (back.shop_id, back.status, back.stage) == (parcels.shop_a.pk, "delivered", "last_mile")
    assert back.last_event_at == before.last_event_at
    assert back.status_event is not None and back.status_event.code == "delivered"
    assert (
        set(TrackingEvent.objects.filter(shipment=back).values_list("dedupe_key", flat=True))
        == keys
    )
    change = StatusChange.objects.get(shipment=back)
    assert change.to_status == "delivered" and change.event == back.status_event
    assert list(
        UnitMembership.objects.filter(shipment=back).values_list("unit__number", flat=True)
    ) == ["CONT0001"]
    assert TransportUnit.objects.count() == 1
    assert ShipmentClaim.objects.get(shipment=back).shop_id == parcels.shop_a.pk
    assert ExceptionAck.objects.get(shipment=back).note == "called the carrier"
    assert _client(parcels.shop_a).get("/api/v1/shipments/OLD00001").status_code == 200
    assert _client(parcels.shop_b).get("/api/v1/shipments/OLD00001").status_code == 404


def test_a_file_written_before_a_column_existed_imports_with_the_column_default(
    parcels: Parcels,
) -> None:
    retention_apply(days=DAYS, now=parcels.now)
    record = file_records(file_name(parcels.now - timedelta(days=400)))[
        1
    ]  # the parcels before units
    assert record["record"] == "shipment"
    for key in ("carrier", "claim_order_number", "metadata"):
        del record[key]
    for event in record["events"]:
        del event["extra"], event["raw"]
    writer = archive.ArchiveWriter(parcels.now.date())
    writer.add("shipment", record["tracking_number"], json.dumps(record))
    archive.retention_storage().save("older.jsonl.gz", writer.finish())

    assert retention_import("older.jsonl.gz").imported == 1

    back = Shipment.objects.get(tracking_number="OLD00001")
    assert (back.carrier, back.claim_order_number, back.metadata) == ("", "", {})
    assert list(back.events.values_list("raw", "extra")) == [("", {})] * 3
    assert back.shop_id == parcels.shop_a.pk


def test_history_naming_a_unit_event_keeps_naming_it_through_the_round_trip(
    parcels: Parcels,
) -> None:
    unit_event = TrackingEvent.objects.get(unit=parcels.unit)
    StatusChange.objects.create(
        shipment=Shipment.objects.get(tracking_number="OLD00001"),
        from_status="in_transit",
        to_status="in_transit",
        event=unit_event,
        changed_at=parcels.now - timedelta(days=401),
    )
    retention_apply(days=DAYS, now=parcels.now)
    name = file_name(parcels.now - timedelta(days=400))
    events = [c["event"] for c in file_records(name)[1]["status_changes"]]
    assert "00000000-0000-0000-0000-000000000001" in events

    # The unit's file first, when its event's month is another (the end of a month).
    for file in dict.fromkeys([file_name(parcels.now - timedelta(days=400, hours=29)), name]):
        retention_import(file)

    # The unit went with its only parcel and came back first, so the history finds its event.
    assert StatusChange.objects.filter(
        shipment__tracking_number="OLD00001", event__dedupe_key=unit_event.dedupe_key
    ).exists()


def test_the_buyers_email_goes_with_the_parcel_and_never_into_the_file(
    parcels: Parcels,
) -> None:
    BuyerContact.objects.create(
        shipment=Shipment.objects.get(tracking_number="OLD00001"),
        shop=parcels.shop_a,
        email="buyer@example.org",
        email_hash="0" * 64,
    )
    retention_apply(days=DAYS, now=parcels.now)

    assert not BuyerContact.objects.exists()
    with archive.retention_storage().open(
        file_name(parcels.now - timedelta(days=400)), "rb"
    ) as raw:
        assert b"buyer@example.org" not in gzip.decompress(raw.read())


def test_a_second_run_removes_the_re_imported_parcel_again_without_a_duplicate_line(
    parcels: Parcels,
) -> None:
    retention_apply(days=DAYS, now=parcels.now)
    name = file_name(parcels.now - timedelta(days=400))
    retention_import(name)

    again = retention_apply(days=DAYS, now=parcels.now)

    assert again.removed == 1
    assert [r["tracking_number"] for r in _shipments(name)] == ["OLD00001"]
    assert [p.written for p in again.periods] == [False]  # the file already held exactly that


def test_a_crash_between_export_and_removal_keeps_the_parcels_and_the_next_run_finishes(
    parcels: Parcels, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(batch: object) -> int:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(removal, "shipments_remove", crash)
    with pytest.raises(RuntimeError):
        retention_apply(days=DAYS, now=parcels.now)
    assert {"OLD00001", "RET00001"} <= present()
    monkeypatch.undo()

    result = retention_apply(days=DAYS, now=parcels.now)

    assert result.removed == 2 and present() == {"NEW00001", "OPEN0001"}
    for period in result.periods:
        assert len(_shipments(period.name)) == period.candidates  # the one parcel, or the unit


def test_a_parcel_that_changed_after_its_export_stays_for_a_later_run(
    parcels: Parcels, monkeypatch: pytest.MonkeyPatch
) -> None:
    remove = removal.shipments_remove

    def late_event_then_remove(batch: list[Any]) -> int:
        parcel = Shipment.objects.get(tracking_number="OLD00001")
        if parcel.pk in [item.shipment_id for item in batch]:
            # An event that moves nothing on the row (earlier than its delivery): the count
            # of events tells.
            TrackingEvent.objects.create(
                shipment=parcel,
                code="delivered",
                status="delivered",
                stage="last_mile",
                occurred_at=parcels.now - timedelta(days=401),
                utc_offset_minutes=0,
                tz_source="explicit",
                dedupe_key="00000000-0000-0000-0000-000000000002",
            )
        return remove(batch)

    monkeypatch.setattr(removal, "shipments_remove", late_event_then_remove)
    result = retention_apply(days=DAYS, now=parcels.now)

    assert result.removed == 1
    assert "OLD00001" in present() and "RET00001" not in present()


def test_a_damaged_file_is_reported_and_its_month_stays_in_the_database(parcels: Parcels) -> None:
    retention_apply(days=DAYS, now=parcels.now)
    name = file_name(parcels.now - timedelta(days=400))
    storage = archive.retention_storage()
    with storage.open(name, "rb") as raw:
        data = raw.read()
    storage.delete(name)
    storage.save(name, io.BytesIO(data[: len(data) // 2]))
    retention_import(file_name(parcels.now - timedelta(days=460)))  # RET00001 back

    ret_name = file_name(parcels.now - timedelta(days=460))
    Shipment.objects.filter(tracking_number="NEW00001").update(
        last_event_at=parcels.now - timedelta(days=400)
    )  # a second parcel for the damaged month
    result = retention_apply(days=DAYS, now=parcels.now)

    by_name = {p.name: p for p in result.periods}
    assert "not a whole gzip file" in by_name[name].error
    assert by_name[name].removed == 0 and "NEW00001" in present()
    assert by_name[ret_name].removed == 1
    with pytest.raises(archive.ArchiveError, match="not a whole gzip file"):
        retention_import(name)


def test_a_run_out_of_time_finishes_the_oldest_month_and_leaves_the_rest_for_the_next(
    parcels: Parcels,
) -> None:
    first = retention_apply(days=DAYS, now=parcels.now, seconds=0)

    # Oldest first: RET00001's month (460 days) is done, OLD00001's (400 days) waits.
    assert [(p.name, p.removed, p.deferred) for p in first.periods] == [
        (file_name(parcels.now - timedelta(days=460)), 1, False),
        (file_name(parcels.now - timedelta(days=400)), 0, True),
    ]
    assert "OLD00001" in present() and "RET00001" not in present()
    second = retention_apply(days=DAYS, now=parcels.now, seconds=0)
    assert [(p.removed, p.deferred) for p in second.periods] == [(1, False)]
    assert present() == {"NEW00001", "OPEN0001"}


def test_dry_run_names_the_files_and_changes_nothing(
    parcels: Parcels, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("retention_apply", "--days", str(DAYS), "--dry-run")

    out = capsys.readouterr().out
    assert (
        f"{file_name(parcels.now - timedelta(days=400))}: 1 parcels would export and remove" in out
    )
    assert len(present()) == 4 and archive.retention_storage().listdir("")[1] == []


def test_the_queries_do_not_grow_with_the_number_of_parcels(
    ingest: Callable[..., FeedRun],
) -> None:
    now = timezone.now()
    feed = FeedFactory()

    def queries(count: int, prefix: str, days: int) -> int:
        at = now - timedelta(days=days)
        rows = [
            row(f"{prefix}{i:05d}", code, at + timedelta(hours=h), "RU")
            for i in range(count)
            for code, h in (("departed", -5), ("delivered", 0))
        ]
        ingest(feed, hub_csv(*rows))
        Shipment.objects.update(created_at=now - timedelta(days=500))
        with CaptureQueriesContext(connection) as captured:
            assert retention_apply(days=DAYS, now=now).removed == count
        return len(captured)

    # Months of their own: neither run finds an earlier file to carry over.
    few, more = queries(2, "QA", 400), queries(12, "QB", 470)
    assert few == more
    # Lock, months, parcel ids and unit ids, one export query, then one removal batch: its lock
    # and one statement per table (15 today, 3 of them buyer notifications'), inside a
    # savepoint; and the unlock. (No unit here: the unit removal's transaction is skipped.)
    assert few <= 25


def _statistics() -> dict[str, set[tuple[Any, ...]]]:
    return {
        "lanes": set(
            LaneStageStat.objects.values_list(
                "origin_country",
                "destination_country",
                "transport_mode",
                "stage",
                "week",
                "samples",
                "p50_hours",
                "p90_hours",
            )
        ),
        "dwell": set(
            WarehouseDwellStat.objects.values_list("warehouse", "week", "samples", "p50_hours")
        ),
        "volume": set(DailyVolume.objects.values_list("day", "warehouse", "events")),
        "new": set(DailyShipments.objects.values_list("day", "destination_country", "shipments")),
        "estimates": set(
            DeliveryEstimateStat.objects.values_list(
                "basis",
                "origin_country",
                "destination_country",
                "transport_mode",
                "stage",
                "samples",
                "p50_hours",
                "p80_hours",
            )
        ),
    }


def test_statistics_built_before_a_removal_stay_and_the_next_refresh_rebuilds_them_the_same(
    parcels: Parcels, ingest: Callable[..., FeedRun]
) -> None:
    build_history(ingest)  # 12 parcels delivered 20 days ago on one lane, 3 open ones
    estimate_stats_refresh()
    dashboard_refresh(stats=True)
    built = _statistics()
    # NEW00001 and the 12 recent deliveries, from first mile on.
    assert ("global", "", "", "", "first_mile", 13) in {row[:6] for row in built["estimates"]}

    assert retention_apply(days=DAYS, now=parcels.now).removed == 2

    assert _statistics() == built
    estimate_stats_refresh()
    dashboard_refresh(stats=True)
    assert _statistics() == built


def test_the_daily_task_does_nothing_while_retention_is_off(
    parcels: Parcels, settings: Any
) -> None:
    settings.RETENTION_DAYS = None
    assert apply_retention() == 0
    assert len(present()) == 4
    settings.RETENTION_DAYS = DAYS
    assert apply_retention() == 2


def test_the_import_command_reads_a_local_file_and_refuses_a_cut_one(
    parcels: Parcels, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    retention_apply(days=DAYS, now=parcels.now)
    name = file_name(parcels.now - timedelta(days=460))
    with archive.retention_storage().open(name, "rb") as raw:
        data = raw.read()
    whole, cut = tmp_path / name, tmp_path / "cut.jsonl.gz"
    whole.write_bytes(data)
    cut.write_bytes(data[:-30])

    with pytest.raises(CommandError, match=r"nothing imported: cut\.jsonl\.gz: "):
        call_command("retention_import", str(cut))
    call_command("retention_import", str(whole))

    assert f"{name}: 1 parcels, 1 imported, 0 already present" in capsys.readouterr().out
    assert Shipment.objects.get(tracking_number="RET00001").status == "returned"


def test_a_re_imported_parcel_records_its_status_events_warehouse(parcels: Parcels) -> None:
    heihe = Warehouse.objects.get(code="heihe")
    before = Shipment.objects.get(tracking_number="OLD00001")
    assert (before.status_warehouse_id, before.status_warehouse_known) == (heihe.pk, True)
    retention_apply(days=DAYS, now=parcels.now)

    retention_import(file_name(parcels.now - timedelta(days=400)))

    back = Shipment.objects.get(tracking_number="OLD00001")
    assert (back.status_warehouse_id, back.status_warehouse_known) == (heihe.pk, True)
