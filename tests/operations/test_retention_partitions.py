"""Retention at partition cost (docs/retention.md): an old month holding only parcels that go
is dropped as a whole partition; a month with anything that stays loses rows instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from operations.retention import partitions
from operations.retention.importing import retention_import
from operations.retention.policy import retention_apply
from shipments.models import Shipment, TrackingEvent
from shipments.partitions import month_start, partition_create, partition_name
from tests.conftest import FeedFactory, hub_csv
from tests.operations.conftest import row
from tests.operations.retention_files import (
    DAYS,
    events_in,
    file_name,
    file_records,
    mid_month,
    partition_names,
    present,
)
from warehouses.models import FeedRun

pytestmark = pytest.mark.usefixtures("empty_retention_storage")


@dataclass
class Months:
    now: datetime
    whole: datetime  # only parcels that go: its partition is dropped
    mixed: datetime  # a parcel that goes beside one that stays: rows are deleted


@pytest.fixture
def months(ingest: Callable[..., FeedRun]) -> Months:
    now = timezone.now()
    whole, mixed = mid_month(now - timedelta(days=430)), mid_month(now - timedelta(days=490))
    for at in (whole, mixed):
        partition_create(month_start(at))
    rows = [
        row("PA000001", "departed", whole - timedelta(hours=40), "CN"),
        row("PA000001", "delivered", whole, "RU"),
        row("PA000002", "departed", whole - timedelta(hours=30), "CN"),
        row("PA000002", "delivered", whole + timedelta(hours=2), "RU"),
        row("PB000001", "departed", mixed - timedelta(hours=20), "CN"),
        row("PB000001", "delivered", mixed, "RU"),
        row("PBOPEN01", "departed", mixed, "CN"),  # still on its way: stays
    ]
    run = ingest(FeedFactory(), hub_csv(*rows))
    assert run.status == FeedRun.Status.SUCCEEDED, run.rejects.values_list("reason", flat=True)
    Shipment.objects.update(created_at=now - timedelta(days=600))
    return Months(now=now, whole=whole, mixed=mixed)


# Committed for real: PostgreSQL refuses to drop a partition with rows inserted in the same
# transaction (their foreign-key checks are still pending), as the test's own would be.
@pytest.mark.django_db(transaction=True)
def test_a_month_of_only_removed_parcels_goes_by_dropping_its_partition(months: Months) -> None:
    assert (events_in(months.whole), events_in(months.mixed)) == (4, 3)

    result = retention_apply(days=DAYS, now=months.now)

    assert result.dropped_partitions == [partition_name(month_start(months.whole))]
    assert partition_name(month_start(months.whole)) not in partition_names()
    # The mixed month keeps its partition and the open parcel's event; the other rows went.
    assert events_in(months.mixed) == 1
    assert present() == {"PBOPEN01"}
    assert result.removed == 3
    whole_file = file_records(file_name(months.whole))
    assert sorted(r["tracking_number"] for r in whole_file[1:-1]) == ["PA000001", "PA000002"]
    assert [len(r["events"]) for r in whole_file[1:-1]] == [2, 2]

    retention_import(file_name(months.whole))  # back, into the DEFAULT partition
    assert TrackingEvent.objects.filter(shipment__tracking_number__startswith="PA").count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_parcel_that_changed_since_its_export_keeps_its_month_partition(
    months: Months, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = partitions.partitions_drop

    def late_event_then_drop(exported: list[Any], units: list[Any], *, cutoff: datetime) -> Any:
        TrackingEvent.objects.create(
            shipment=Shipment.objects.get(tracking_number="PA000001"),
            code="arrived",
            status="in_transit",
            stage="line_haul",
            occurred_at=months.whole - timedelta(hours=9),
            utc_offset_minutes=0,
            tz_source="explicit",
            dedupe_key="00000000-0000-0000-0000-000000000003",
        )
        return drop(exported, units, cutoff=cutoff)

    monkeypatch.setattr(partitions, "partitions_drop", late_event_then_drop)
    result = retention_apply(days=DAYS, now=months.now)

    assert result.dropped_partitions == []
    assert present() == {"PA000001", "PBOPEN01"}
    assert events_in(months.whole) == 3  # PA000001's two and the late one
