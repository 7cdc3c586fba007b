"""The events table's monthly partitions: created ahead, idempotent, DEFAULT rows moved into a
new month, and the migration that partitions a table holding rows (shipments/partitions.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from shipments import partitions
from shipments.models import Shipment, StatusChange, TrackingEvent
from shipments.partitions import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    partition_name,
    partition_names_hidden,
    partitions_ensure,
    partitions_list,
)
from shipments.recording import EventInput, events_record
from tests.conftest import ShipmentFactory


def _where(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {EVENTS_TABLE} WHERE id = %s", [event_id]
        )
        return str(cursor.fetchone()[0])


def _event(shipment: Shipment, at: datetime, key: uuid.UUID | None = None) -> TrackingEvent:
    return TrackingEvent.objects.create(
        shipment=shipment,
        code="departed",
        occurred_at=at,
        utc_offset_minutes=0,
        tz_source="explicit",
        location_code="CNHEK",
        dedupe_key=key or uuid.uuid4(),
    )


@pytest.mark.django_db
def test_the_months_ahead_and_default_exist_and_ensuring_again_creates_nothing() -> None:
    today = datetime.now(UTC).date()
    names = {p.name for p in partitions_list()}
    month = date(today.year, today.month, 1)
    expected = {partition_name(month)}
    for _ in range(3):
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        expected.add(partition_name(month))
    assert expected | {DEFAULT_PARTITION} <= names
    assert partitions_ensure() == []
    assert {p.name for p in partitions_list()} == names


@pytest.mark.django_db
def test_partitions_list_gives_each_month_its_range_and_default_none() -> None:
    partitions_ensure(today=date(2031, 2, 10), months_ahead=1)
    listed = {p.name: p for p in partitions_list()}
    february = listed["shipments_trackingevent_p2031_02"]
    assert (february.start, february.end) == (
        datetime(2031, 2, 1, tzinfo=UTC),
        datetime(2031, 3, 1, tzinfo=UTC),
    )
    assert listed["shipments_trackingevent_p2031_03"].end == datetime(2031, 4, 1, tzinfo=UTC)
    assert listed[DEFAULT_PARTITION].is_default
    assert listed[DEFAULT_PARTITION].start is None
    assert list(listed)[-1] == DEFAULT_PARTITION


@pytest.mark.django_db
def test_rows_in_default_move_into_the_month_created_for_them() -> None:
    shipment = ShipmentFactory()
    early = _event(shipment, datetime(2031, 7, 1, 0, 0, tzinfo=UTC))  # the first instant
    late = _event(shipment, datetime(2031, 7, 31, 23, 59, 59, 999999, tzinfo=UTC))
    august = _event(shipment, datetime(2031, 8, 1, 0, 0, tzinfo=UTC))
    assert {_where(early.pk), _where(late.pk), _where(august.pk)} == {DEFAULT_PARTITION}

    # Creating July would fail in PostgreSQL while DEFAULT holds July rows; they move.
    created = partitions_ensure(today=date(2031, 7, 15), months_ahead=0)

    assert created == ["shipments_trackingevent_p2031_07"]
    assert _where(early.pk) == _where(late.pk) == "shipments_trackingevent_p2031_07"
    assert _where(august.pk) == DEFAULT_PARTITION
    moved = TrackingEvent.objects.get(pk=late.pk)
    assert (moved.shipment_id, moved.dedupe_key, moved.location_code) == (
        shipment.pk,
        late.dedupe_key,
        "CNHEK",
    )
    # The month's own unique key holds for the moved rows.
    with pytest.raises(IntegrityError), transaction.atomic():
        _event(shipment, late.occurred_at, key=late.dedupe_key)


@pytest.mark.django_db
def test_a_report_for_a_month_with_no_partition_is_recorded_and_found_again() -> None:
    at = datetime(2034, 1, 5, 8, 0, tzinfo=UTC)  # no partition so far ahead: DEFAULT
    event = EventInput(
        line=1,
        code="departed",
        occurred_at=at,
        utc_offset_minutes=0,
        tz_source="explicit",
        tracking_number="FAR0001",
    )
    first = events_record(events=[event], feed_id=None, run_id=None, warehouse_id=None, source="t")
    again = events_record(events=[event], feed_id=None, run_id=None, warehouse_id=None, source="t")
    assert (first.created, again.created, again.duplicates) == (1, 0, 1)
    (stored,) = TrackingEvent.objects.filter(shipment__tracking_number="FAR0001")
    assert _where(stored.pk) == DEFAULT_PARTITION
    partitions_ensure(today=date(2034, 1, 1), months_ahead=0)
    assert _where(stored.pk) == "shipments_trackingevent_p2034_01"
    # The probe now looks in January's partition only, and finds the key there.
    third = events_record(events=[event], feed_id=None, run_id=None, warehouse_id=None, source="t")
    assert (third.created, third.duplicates) == (0, 1)


_OLD_EVENT = """
INSERT INTO shipments_trackingevent (shipment_id, code, status, stage, occurred_at,
    utc_offset_minutes, tz_source, location_name, location_code, country, description,
    source_line, raw, extra, dedupe_key, recorded_at)
VALUES (%s, 'departed', 'in_transit', 'line_haul', %s, 480, 'explicit', '', 'CNHEK', 'CN', '',
    %s, 'raw text', '{"a": 1}', %s, now())
RETURNING id
"""


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_table_that_holds_events_and_keeps_them() -> None:
    # Created through today's model, before its later columns are taken away.
    shipment = ShipmentFactory(tracking_number="MIG0001")
    executor = MigrationExecutor(connection)
    executor.migrate([("shipments", "0013_shipment_change_xid")])
    assert not _partitioned()
    times = [
        datetime(2026, 9, 30, 23, 59, tzinfo=UTC),
        datetime(2026, 10, 1, 0, 0, tzinfo=UTC),
        datetime(2012, 1, 1, tzinfo=UTC),  # older than ten years: DEFAULT
    ]
    keys = [uuid.uuid4() for _ in times]
    ids = []
    with connection.cursor() as cursor:
        for line, (at, key) in enumerate(zip(times, keys, strict=True)):
            cursor.execute(_OLD_EVENT, [shipment.pk, at, line, key])
            ids.append(cursor.fetchone()[0])
        cursor.execute(
            "UPDATE shipments_shipment SET status_event_id = %s WHERE id = %s",
            [ids[1], shipment.pk],
        )
        cursor.execute(
            "INSERT INTO shipments_statuschange (shipment_id, from_status, to_status, from_stage,"
            " to_stage, event_id, changed_at) VALUES (%s, 'pending', 'in_transit', '', '', %s, now())",
            [shipment.pk, ids[1]],
        )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert _partitioned()
    stored = {e.pk: e for e in TrackingEvent.objects.all()}
    assert sorted(stored) == sorted(ids)
    for event_id, at, key, line in zip(ids, times, keys, range(3), strict=True):
        event = stored[event_id]
        assert (event.occurred_at, event.dedupe_key, event.source_line) == (at, key, line)
        assert (event.raw, event.extra, event.utc_offset_minutes) == ("raw text", {"a": 1}, 480)
    assert _where(ids[0]) == "shipments_trackingevent_p2026_09"
    assert _where(ids[1]) == "shipments_trackingevent_p2026_10"
    assert _where(ids[2]) == DEFAULT_PARTITION
    shipment.refresh_from_db()
    assert shipment.status_event_id == ids[1]
    # Filled by 0016 from the events the table held.
    assert (shipment.first_event_at, shipment.status_event_at) == (times[2], times[1])
    assert StatusChange.objects.get(shipment=shipment).event_id == ids[1]
    # Ids go on after the old ones; the dedupe key is still enforced.
    newer = _event(shipment, datetime(2026, 10, 2, tzinfo=UTC))
    assert newer.pk > max(ids)
    with pytest.raises(IntegrityError), transaction.atomic():
        _event(shipment, times[1], key=keys[1])
    # The ORM still nulls the links to a deleted event (no database constraint does it now).
    TrackingEvent.objects.filter(pk=ids[1]).delete()
    shipment.refresh_from_db()
    assert shipment.status_event_id is None
    assert StatusChange.objects.get(shipment=shipment).event_id is None


def _partitioned() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass)",
            [EVENTS_TABLE],
        )
        return bool(cursor.fetchone()[0])


def test_a_message_naming_a_partition_names_the_events_table() -> None:
    for partition in ("shipments_trackingevent_p2026_05", "shipments_trackingevent_default"):
        message = f'new row for relation "{partition}" violates check constraint "c"'
        assert partition_names_hidden(message) == (
            'new row for relation "shipments_trackingevent" violates check constraint "c"'
        )
    other = 'new row for relation "shipments_trackingevent_old" violates check constraint "c"'
    assert partition_names_hidden(other) == other


@pytest.mark.django_db(transaction=True)
def test_a_busy_table_leaves_the_month_for_the_next_run_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "200ms")
    params = connection.get_connection_params()
    with psycopg.connect(**params) as other:
        # An ingest batch in progress: its transaction holds the table's row-exclusive lock.
        other.execute(f"LOCK TABLE {EVENTS_TABLE} IN ROW EXCLUSIVE MODE")
        created = partitions_ensure(today=date(2032, 3, 1), months_ahead=0)
        other.rollback()
    assert created == []
    assert "shipments_trackingevent_p2032_03" not in {p.name for p in partitions_list()}
    assert partitions_ensure(today=date(2032, 3, 1), months_ahead=0) == [
        "shipments_trackingevent_p2032_03"
    ]
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE shipments_trackingevent_p2032_03")
