"""The timeline's times are formatted by PostgreSQL: they must read exactly as Python's own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction

from shipments.api.render import dt
from shipments.models import Shipment, TrackingEvent, TransportUnit, UnitMembership
from shipments.readers.timeline import _TIMELINE_SQL, timeline_get
from tests.conftest import ShipmentFactory

pytestmark = pytest.mark.django_db

CASES = [
    (datetime(2026, 5, 2, 2, 0, tzinfo=UTC), 480),  # Harbin
    (datetime(2026, 5, 2, 2, 0, 0, 1, tzinfo=UTC), 180),  # one microsecond
    (datetime(2026, 5, 2, 2, 0, 7, 250000, tzinfo=UTC), 0),  # UTC: "+00:00" locally
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), 345),  # Kathmandu, into the next year
    (datetime(2027, 1, 1, 1, 15, 59, 999999, tzinfo=UTC), -210),  # St John's, back a year
    (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), -720),
    (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), 840),
]


def _event(shipment: Shipment, at: datetime, offset: int) -> TrackingEvent:
    return TrackingEvent.objects.create(
        shipment=shipment,
        code="in_transit",
        occurred_at=at,
        utc_offset_minutes=offset,
        tz_source="explicit",
        location_code=f"X{offset}",  # distinct places: no two cases merge
        dedupe_key=uuid.uuid4(),
    )


def test_utc_and_local_times_read_as_pythons_isoformat() -> None:
    shipment = ShipmentFactory()
    for at, offset in CASES:
        _event(shipment, at, offset)
    entries = timeline_get(shipment_id=shipment.pk)
    assert len(entries) == len(CASES)
    for entry in entries:
        zone = timezone(timedelta(minutes=entry.utc_offset_minutes))
        assert entry.occurred_at_text == dt(entry.occurred_at)
        assert entry.local_time == entry.occurred_at.astimezone(zone).isoformat()
    by_offset = {e.utc_offset_minutes: e for e in entries}
    assert by_offset[345].local_time == "2027-01-01T05:15:00+05:45"
    assert by_offset[-210].local_time == "2026-12-31T21:45:59.999999-03:30"
    assert by_offset[0].occurred_at_text == "2026-05-02T02:00:07.250000Z"
    assert by_offset[180].occurred_at_text == "2026-05-02T02:00:00.000001Z"


def test_a_units_events_are_read_through_the_partial_unit_index() -> None:
    # event_unit_time holds unit events only (parcel events have no unit). The timeline reads
    # a unit's events by `e.unit_id = m.unit_id`, which proves `unit_id IS NOT NULL`, so the
    # planner may use it; with sequential scans off it must.
    shipment = ShipmentFactory()
    unit = TransportUnit.objects.create(number="MSKU1234565", kind="container")
    UnitMembership.objects.create(
        unit=unit, shipment=shipment, loaded_at=datetime(2026, 5, 1, tzinfo=UTC)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + _TIMELINE_SQL, {"id": shipment.pk})
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'event_unit_time'")
        (definition,) = cursor.fetchone()
        # The events table is partitioned: the plan names each partition's copy of the index.
        cursor.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree('event_unit_time') WHERE isleaf"
        )
        copies = {row[0] for row in cursor.fetchall()}
    assert copies
    assert any(f"Index Scan using {name} " in plan for name in copies), plan
    assert "Seq Scan on shipments_trackingevent" not in plan
    assert definition.endswith("WHERE (unit_id IS NOT NULL)")
