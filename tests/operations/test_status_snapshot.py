"""The dashboard's status snapshot counts shipments by the warehouse of their status event from
the shipments table alone (Shipment.status_warehouse); a row where that is not recorded still
counts under its event's warehouse, looked up in the event's month only."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.utils import timezone

from operations import services
from operations.models import StatusSnapshot
from shipments.models import Shipment, TrackingEvent
from shipments.partitions import partition_create, partition_name
from shipments.recording import EventInput, events_record
from tests.conftest import ShipmentFactory, WarehouseFactory
from tests.plans import partitions_executed
from warehouses.models import Warehouse

pytestmark = pytest.mark.django_db

# Months far from the test database's own partitions (this month and the next three).
JAN, FEB, MAR = (date(2033, m, 1) for m in (1, 2, 3))


@pytest.fixture
def months() -> None:
    for month in (JAN, FEB, MAR):
        partition_create(month)


def at(month: date, day: int) -> datetime:
    return datetime(month.year, month.month, day, tzinfo=UTC)


def record(warehouse: Warehouse | None, tn: str, code: str, when: datetime) -> None:
    events_record(
        events=[
            EventInput(
                line=1,
                code=code,
                occurred_at=when,
                utc_offset_minutes=0,
                tz_source="explicit",
                tracking_number=tn,
                location_code=f"L{when:%m%d}",
            )
        ],
        feed_id=None,
        run_id=None,
        warehouse_id=None if warehouse is None else warehouse.pk,
        source="test",
    )


def snapshot() -> dict[tuple[str, int | None], int]:
    services.dashboard_refresh(stats=False)
    return {
        (row.status, row.warehouse_id): row.shipments
        for row in StatusSnapshot.objects.filter(destination_country="")
    }


def test_a_status_change_moves_the_count_to_the_new_events_warehouse(months: None) -> None:
    heihe, moscow = WarehouseFactory(code="heihe"), WarehouseFactory(code="moscow")
    record(heihe, "SN1", "departed", at(JAN, 5))
    record(heihe, "SN2", "departed", at(JAN, 6))
    assert snapshot() == {("in_transit", heihe.pk): 2}

    record(moscow, "SN1", "out_for_delivery", at(FEB, 2))
    assert snapshot() == {("in_transit", heihe.pk): 1, ("out_for_delivery", moscow.pk): 1}


def test_rows_not_recorded_count_under_their_events_warehouse(months: None) -> None:
    heihe, moscow = WarehouseFactory(code="heihe"), WarehouseFactory(code="moscow")
    record(heihe, "SN3", "departed", at(JAN, 5))
    record(moscow, "SN4", "departed", at(FEB, 5))
    record(None, "SN5", "departed", at(MAR, 5))  # its status event has no warehouse
    # As a row written before migration 0017: the column says nothing.
    Shipment.objects.filter(tracking_number__in=["SN3", "SN5"]).update(
        status_warehouse=None, status_warehouse_known=False
    )
    # As a factory writes it: status_event alone (an event of SN4's, at Moscow).
    ShipmentFactory(
        tracking_number="SN6",
        status="in_transit",
        status_event=TrackingEvent.objects.get(shipment__tracking_number="SN4"),
    )
    ShipmentFactory(tracking_number="SN7")  # pending, no status event
    ShipmentFactory(tracking_number="SN8", archived_at=timezone.now())  # not counted

    assert snapshot() == {
        ("in_transit", heihe.pk): 1,
        ("in_transit", moscow.pk): 2,
        ("in_transit", None): 1,
        ("pending", None): 1,
    }


def test_a_status_event_gone_counts_under_no_warehouse(months: None) -> None:
    # The ORM nulls status_event when its event is deleted, leaving the rest of the row.
    heihe = WarehouseFactory(code="heihe")
    record(heihe, "SN9", "departed", at(JAN, 5))
    TrackingEvent.objects.filter(shipment__tracking_number="SN9").delete()
    assert snapshot() == {("in_transit", None): 1}


def snapshot_partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + services.STATUS_SNAPSHOT_SQL)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return set(partitions_executed(plan))


def test_the_snapshot_reads_no_event_when_every_row_is_recorded(months: None) -> None:
    heihe = WarehouseFactory(code="heihe")
    for n, month in enumerate((JAN, FEB, MAR)):
        record(heihe, f"SP{n}", "departed", at(month, 3))
    assert snapshot_partitions() == set()

    # A row not recorded: its event is looked up in its own month, and only there.
    Shipment.objects.filter(tracking_number="SP1").update(status_warehouse_known=False)
    assert snapshot_partitions() == {partition_name(FEB)}
    assert snapshot() == {("in_transit", heihe.pk): 3}
