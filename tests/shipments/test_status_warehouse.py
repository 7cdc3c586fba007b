"""Shipment.status_warehouse: the warehouse of the status event, kept by every writer of
status_event (the dashboard's status snapshot counts by it), and its migration's backfill."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from shipments.models import Shipment, TrackingEvent, TransportUnit, UnitMembership
from shipments.recording import EventInput, events_record, shipments_reset_eventless
from tests.conftest import ShipmentFactory, WarehouseFactory
from warehouses.models import Warehouse

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)


def event(code: str, hours: float, tn: str = "", unit: str = "") -> EventInput:
    return EventInput(
        line=int(hours * 10),
        code=code,
        occurred_at=T0 + timedelta(hours=hours),
        utc_offset_minutes=480,
        tz_source="explicit",
        tracking_number=tn,
        unit_number=unit,
        location_code=f"L{int(hours * 10)}",
    )


def record(warehouse: Warehouse | None, *events: EventInput) -> None:
    events_record(
        events=list(events),
        feed_id=None,
        run_id=None,
        warehouse_id=None if warehouse is None else warehouse.pk,
        source=f"test:{warehouse.code if warehouse else '-'}",
    )


def status_warehouse(tn: str) -> tuple[str | None, int | None, bool]:
    s = Shipment.objects.select_related("status_event").get(tracking_number=tn)
    code = s.status_event.code if s.status_event else None
    return code, s.status_warehouse_id, s.status_warehouse_known


def test_a_new_shipment_is_created_with_its_status_events_warehouse() -> None:
    heihe = WarehouseFactory(code="heihe")
    record(heihe, event("picked_up", 1, "SW1"), event("departed", 2, "SW1"))
    assert status_warehouse("SW1") == ("departed", heihe.pk, True)


def test_a_status_change_on_a_known_shipment_takes_the_new_events_warehouse() -> None:
    heihe, moscow, transit = (WarehouseFactory(code=c) for c in ("heihe", "moscow", "transit"))
    record(heihe, event("departed", 2, "SW2"))
    record(moscow, event("out_for_delivery", 9, "SW2"))
    assert status_warehouse("SW2") == ("out_for_delivery", moscow.pk, True)
    # A late report of an earlier event changes neither the status event nor its warehouse.
    record(transit, event("in_transit", 5, "SW2"))
    assert status_warehouse("SW2") == ("out_for_delivery", moscow.pk, True)


def test_a_status_event_without_a_warehouse_is_recorded_as_known_none() -> None:
    heihe = WarehouseFactory(code="heihe")
    record(heihe, event("departed", 2, "SW3"))
    record(None, event("in_transit", 4, "SW3"))
    assert status_warehouse("SW3") == ("in_transit", None, True)


def test_a_row_written_before_the_column_is_filled_by_its_next_batch() -> None:
    heihe = WarehouseFactory(code="heihe")
    record(heihe, event("departed", 2, "SW4"))
    Shipment.objects.filter(tracking_number="SW4").update(
        status_warehouse=None, status_warehouse_known=False
    )
    # An event that changes nothing of the status: the column is filled all the same.
    record(None, event("picked_up", 1, "SW4"))
    assert status_warehouse("SW4") == ("departed", heihe.pk, True)


def test_a_units_event_gives_the_parcels_inside_its_warehouse() -> None:
    heihe, suifenhe = WarehouseFactory(code="heihe"), WarehouseFactory(code="suifenhe")
    record(heihe, event("departed", 2, "SW5"))
    unit = TransportUnit.objects.create(number="MSKU1234565", kind="container")
    UnitMembership.objects.create(
        unit=unit, shipment=Shipment.objects.get(tracking_number="SW5"), loaded_at=T0
    )
    record(suifenhe, event("in_transit", 6, unit="MSKU1234565"))
    code, warehouse, known = status_warehouse("SW5")
    assert (code, warehouse, known) == ("in_transit", suifenhe.pk, True)
    assert TrackingEvent.objects.get(code="in_transit").unit_id == unit.pk


def test_a_shipment_left_without_events_forgets_its_status_warehouse() -> None:
    heihe = WarehouseFactory(code="heihe")
    record(heihe, event("departed", 2, "SW6"))
    shipment = Shipment.objects.get(tracking_number="SW6")
    TrackingEvent.objects.filter(shipment=shipment).delete()
    shipments_reset_eventless(shipment_ids=[shipment.pk])
    assert status_warehouse("SW6") == (None, None, False)


def test_a_factorys_status_event_is_not_known() -> None:
    # Tests and scripts that set status_event alone leave the warehouse unknown, never wrong.
    heihe = WarehouseFactory(code="heihe")
    record(heihe, event("departed", 2, "SW7"))
    shipment = ShipmentFactory(status_event=TrackingEvent.objects.get())
    assert (shipment.status_warehouse_id, shipment.status_warehouse_known) == (None, False)
    shipment.refresh_from_db()
    assert shipment.status_warehouse_known is False


def test_the_migration_fills_the_column_from_the_status_events() -> None:
    backfill = importlib.import_module("shipments.migrations.0017_shipment_status_warehouse")
    heihe, suifenhe = WarehouseFactory(code="heihe"), WarehouseFactory(code="suifenhe")
    record(heihe, event("departed", 2, "MW1"))
    record(None, event("departed", 2, "MW2"))
    Shipment.objects.create(tracking_number="MW3")
    # A status event on a unit: found by its id like any other.
    record(heihe, event("picked_up", 1, "MW4"))
    unit_event = TrackingEvent.objects.create(
        unit=TransportUnit.objects.create(number="MSKU1234565", kind="container"),
        warehouse=suifenhe,
        code="in_transit",
        status="in_transit",
        occurred_at=T0 + timedelta(hours=3),
        utc_offset_minutes=0,
        tz_source="explicit",
        dedupe_key="00000000-0000-0000-0000-0000000000b1",
    )
    Shipment.objects.filter(tracking_number="MW4").update(status_event=unit_event)
    Shipment.objects.update(status_warehouse=None, status_warehouse_known=False)
    xids = dict(Shipment.objects.values_list("tracking_number", "change_xid"))

    with connection.cursor() as cursor:
        # As in test_event_bounds: the factories' deferred checks would block ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(backfill._BACKFILL)

    found = {
        tn: (warehouse, known)
        for tn, warehouse, known in Shipment.objects.values_list(
            "tracking_number", "status_warehouse", "status_warehouse_known"
        )
    }
    assert found == {
        "MW1": (heihe.pk, True),
        "MW2": (None, True),
        "MW3": (None, False),  # no status event: nothing to know
        "MW4": (suifenhe.pk, True),
    }
    # Not a change a shop's sync walk hands out again.
    assert dict(Shipment.objects.values_list("tracking_number", "change_xid")) == xids
