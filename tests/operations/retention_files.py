"""What the retention tests share: the policy's age, the files in the retention storage, and
the events table's monthly partitions (tests/operations/test_retention*.py)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

from django.db import connection

from operations.retention import archive
from shipments.models import Shipment
from shipments.partitions import month_start, partition_name, partitions_list

DAYS = 365


def file_name(at: datetime) -> str:
    """The month's file, as retention names it."""
    return f"shipments-{at:%Y-%m}.jsonl.gz"


def file_records(name: str) -> list[dict[str, Any]]:
    with archive.retention_storage().open(name, "rb") as raw:
        return [json.loads(line) for line in gzip.open(raw)]


def present() -> set[str]:
    return set(Shipment.objects.values_list("tracking_number", flat=True))


def mid_month(at: datetime) -> datetime:
    """Mid-month, so that a few hours either side stay in it."""
    return at.replace(day=15, hour=12, minute=0, second=0, microsecond=0)


def events_in(at: datetime) -> int:
    """The rows of `at`'s monthly partition."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{partition_name(month_start(at))}"')
        return int(cursor.fetchone()[0])


def partition_names() -> set[str]:
    return {p.name for p in partitions_list()}
