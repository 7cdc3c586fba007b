"""Retention of transport units (docs/retention.md): a unit left without members once its parcels
go is exported with its own events into its month's file, removed with them, and comes back
with retention_import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.retention.importing import retention_import
from operations.retention.policy import retention_apply
from shipments.models import Shipment, TrackingEvent, TransportUnit, UnitMembership
from shipments.partitions import month_start, partition_create, partition_name, partitions_list
from tests.conftest import FeedFactory, hub_csv
from tests.operations.conftest import row
from tests.operations.retention_files import (
    DAYS,
    events_in,
    file_name,
    file_records,
    mid_month,
)
from warehouses.models import FeedRun

pytestmark = pytest.mark.usefixtures("empty_retention_storage")


def _records(at: datetime) -> list[dict[str, Any]]:
    return file_records(file_name(at))


def _month(days: int) -> datetime:
    return mid_month(timezone.now() - timedelta(days=days))


def _parcels(ingest: Callable[..., FeedRun], *rows: str) -> None:
    run = ingest(FeedFactory(), hub_csv(*rows))
    assert run.status == FeedRun.Status.SUCCEEDED, run.rejects.values_list("reason", flat=True)
    Shipment.objects.update(created_at=timezone.now() - timedelta(days=600))


def _container(number: str, members: list[str], events: list[datetime]) -> TransportUnit:
    """A container holding `members` from before the first event, with a unit event at each
    time of `events` (dedupe keys ...0001, ...0002, in that order)."""
    unit = TransportUnit.objects.create(number=number, kind="container")
    for tracking_number in members:
        UnitMembership.objects.create(
            unit=unit,
            shipment=Shipment.objects.get(tracking_number=tracking_number),
            loaded_at=events[0] - timedelta(hours=1),
            unloaded_at=events[-1] + timedelta(hours=1),
        )
    for number_, at in enumerate(events, start=1):
        TrackingEvent.objects.create(
            unit=unit,
            code="departed",
            status="in_transit",
            stage="line_haul",
            occurred_at=at,
            utc_offset_minutes=0,
            tz_source="explicit",
            dedupe_key=f"00000000-0000-0000-0000-{number_:012d}",
        )
    return unit


# Committed for real, as the partition-drop test in test_retention_partitions.py (PostgreSQL refuses to
# drop a partition with rows whose foreign-key checks are still pending).
@pytest.mark.django_db(transaction=True)
def test_a_container_of_old_delivered_parcels_goes_with_its_events_and_its_month_partition(
    ingest: Callable[..., FeedRun],
) -> None:
    month = _month(430)
    partition_create(month_start(month))
    _parcels(
        ingest,
        row("UA000001", "departed", month - timedelta(hours=40), "CN"),
        row("UA000001", "delivered", month, "RU"),
        row("UA000002", "departed", month - timedelta(hours=30), "CN"),
        row("UA000002", "delivered", month + timedelta(hours=2), "RU"),
    )
    _container(
        "CONTU001",
        ["UA000001", "UA000002"],
        [month - timedelta(hours=h) for h in (36, 20, 10)],
    )
    assert events_in(month) == 4 + 3

    result = retention_apply(days=DAYS, now=timezone.now())

    assert result.dropped_partitions == [partition_name(month_start(month))]
    assert partition_name(month_start(month)) not in {p.name for p in partitions_list()}
    assert (result.removed, result.removed_units) == (2, 1)
    assert not Shipment.objects.exists() and not TransportUnit.objects.exists()
    assert not UnitMembership.objects.exists() and not TrackingEvent.objects.exists()
    header, *rows, end = _records(month)
    assert header["version"] == 2
    assert sorted(r["tracking_number"] for r in rows if r["record"] == "shipment") == [
        "UA000001",
        "UA000002",
    ]
    [unit] = [r for r in rows if r["record"] == "unit"]
    assert (unit["number"], unit["kind"]) == ("CONTU001", "container")
    assert [e["occurred_at"][:13] for e in unit["events"]] == [
        f"{month - timedelta(hours=h):%Y-%m-%dT%H}" for h in (36, 20, 10)
    ]
    assert end == {"record": "end", "shipments": 2, "units": 1}


def test_a_container_with_a_parcel_still_in_transit_stays_with_its_events(
    ingest: Callable[..., FeedRun],
) -> None:
    month = _month(430)
    _parcels(
        ingest,
        row("UB000001", "departed", month - timedelta(hours=40), "CN"),
        row("UB000001", "delivered", month, "RU"),
        row("UBOPEN01", "departed", month - timedelta(hours=30), "CN"),  # on its way still
    )
    unit = _container("CONTU002", ["UB000001", "UBOPEN01"], [month - timedelta(hours=20)])

    result = retention_apply(days=DAYS, now=timezone.now())

    assert (result.removed, result.removed_units) == (1, 0)
    assert set(Shipment.objects.values_list("tracking_number", flat=True)) == {"UBOPEN01"}
    assert TrackingEvent.objects.filter(unit=unit).count() == 1
    assert list(
        UnitMembership.objects.values_list("unit__number", "shipment__tracking_number")
    ) == [("CONTU002", "UBOPEN01")]
    assert [r["record"] for r in _records(month)] == ["header", "shipment", "end"]


def test_a_re_import_brings_the_container_back_with_its_events_and_members_once(
    ingest: Callable[..., FeedRun],
) -> None:
    month = _month(430)
    _parcels(
        ingest,
        row("UC000001", "delivered", month, "RU"),
        row("UC000002", "delivered", month + timedelta(hours=1), "RU"),
    )
    _container(
        "CONTU003", ["UC000001", "UC000002"], [month - timedelta(hours=h) for h in (9, 5, 3)]
    )
    assert retention_apply(days=DAYS, now=timezone.now()).removed_units == 1
    assert not TransportUnit.objects.exists()
    name = f"shipments-{month:%Y-%m}.jsonl.gz"

    first, second = retention_import(name), retention_import(name)

    assert (first.units, first.units_imported, first.imported) == (1, 1, 2)
    assert (second.units_imported, second.imported) == (0, 0)
    unit = TransportUnit.objects.get()
    assert (unit.number, unit.kind) == ("CONTU003", "container")
    assert list(unit.events.order_by("occurred_at").values_list("dedupe_key", flat=True)) == [
        UUID(f"00000000-0000-0000-0000-{n:012d}") for n in (1, 2, 3)
    ]
    assert list(unit.events.values_list("shipment_id", flat=True)) == [None] * 3
    assert sorted(unit.memberships.values_list("shipment__tracking_number", flat=True)) == [
        "UC000001",
        "UC000002",
    ]


def test_the_queries_do_not_grow_with_the_number_of_units(
    ingest: Callable[..., FeedRun],
) -> None:
    def queries(count: int, prefix: str, days: int) -> int:
        month = _month(days)
        _parcels(
            ingest,
            *(row(f"{prefix}{i:05d}", "delivered", month, "RU") for i in range(count)),
        )
        for i in range(count):
            _container(f"{prefix}C{i:04d}", [f"{prefix}{i:05d}"], [month - timedelta(hours=2)])
            TrackingEvent.objects.filter(unit__number=f"{prefix}C{i:04d}").update(
                dedupe_key=f"00000000-0000-0000-{days:04d}-{i:012d}"
            )
        with CaptureQueriesContext(connection) as captured:
            result = retention_apply(days=DAYS, now=timezone.now())
        assert (result.removed, result.removed_units) == (count, count)
        return len(captured)

    # Months of their own, as in test_retention.py's count.
    few, more = queries(2, "QA", 400), queries(8, "QB", 470)
    assert few == more
    # test_retention.py's 25, plus the units' export query and their removal's transaction: a
    # savepoint and its release, its lock, and one statement per table a unit's removal
    # reaches (6 today: 3 event pointers cleared, events, memberships, units).
    assert few <= 25 + 1 + 2 + 1 + 6
