"""A small history through the real pipeline: one lane with delivered parcels, plus a parcel
stuck in line haul, one held by customs and one after a failed delivery attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from operations.retention import archive
from shipments.models import Shipment
from tests.conftest import FeedFactory, WarehouseFactory, hub_csv
from warehouses.models import Feed, FeedRun

# (code, hours after the first event, country)
DELIVERED_PATH = [
    ("warehouse_received", 0, "CN"),
    ("warehouse_dispatched", 10, "CN"),
    ("customs_export_cleared", 20, "CN"),
    ("departed", 30, "CN"),
    ("customs_import_cleared", 60, "RU"),
    ("out_for_delivery", 70, "RU"),
    ("delivered", 80, "RU"),
]


def row(tn: str, code: str, at: datetime, country: str, mode: str = "rail") -> str:
    return f"{tn},{code},{at.isoformat()},,Place,,{country},,,,{mode},"


@dataclass
class History:
    feed: Feed
    runs: list[FeedRun]
    stale: Shipment
    held: Shipment
    failed: Shipment
    now: datetime


@pytest.fixture
def history(ingest: Callable[..., FeedRun]) -> History:
    return build_history(ingest)


def build_history(ingest: Callable[..., FeedRun]) -> History:
    now = timezone.now()
    feed = FeedFactory(warehouse=WarehouseFactory(code="heihe", country="CN"))
    rows = []
    for i in range(12):
        start = now - timedelta(days=20) + timedelta(hours=i)
        # every third parcel's line haul takes 60 h instead of 30 h: p90 sits above p50
        slow = 30 if i % 3 == 0 else 0
        for code, hours, country in DELIVERED_PATH:
            extra = slow if hours >= 60 else 0
            rows.append(row(f"DL{i:04d}", code, start + timedelta(hours=hours + extra), country))
    stuck = now - timedelta(days=10)
    for code, hours, country in DELIVERED_PATH[:4]:
        rows.append(row("STUCK0001", code, stuck + timedelta(hours=hours), country))
    rows += [
        row("HELD00001", "customs_import_submitted", now - timedelta(hours=30), "RU"),
        row("HELD00001", "customs_held", now - timedelta(hours=20), "RU"),
        row("FAIL00001", "out_for_delivery", now - timedelta(hours=8), "RU"),
        row("FAIL00001", "delivery_failed", now - timedelta(hours=5), "RU"),
    ]
    run = ingest(feed, hub_csv(*rows))
    assert run.status == FeedRun.Status.SUCCEEDED, run.rejects.values_list("reason", flat=True)
    return History(
        feed=feed,
        runs=[run],
        stale=Shipment.objects.get(tracking_number="STUCK0001"),
        held=Shipment.objects.get(tracking_number="HELD00001"),
        failed=Shipment.objects.get(tracking_number="FAIL00001"),
        now=now,
    )


@pytest.fixture
def empty_retention_storage() -> None:
    """The retention storage without files (tests/operations/test_retention*.py)."""
    storage = archive.retention_storage()
    for name in storage.listdir("")[1]:
        storage.delete(name)
