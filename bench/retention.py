"""Retention benchmark: export and remove old parcels, against the ORM's delete of the same.

    python bench/retention.py [--parcels 20000] [--events 10]

1. Creates a scratch database `hub_bench_retention` (BENCH_DB_NAME; dropped first), migrates it.
2. Generates, straight in SQL, two sets of N parcels delivered 400 days ago with E events and a
   status change each (when the events table is partitioned, set A in one month, set B in
   another, each month holding nothing else).
3. Set A: `retention_apply` (export to a gzip file per month, read back, then removal: dropped
   partitions when the table is partitioned, set-based deletes otherwise). Set B: the baseline,
   Django's `QuerySet.delete()` of the same parcels (no export).
Prints the times, the file size and the ratio; never fails on a target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import scratch_database  # noqa: E402

_GENERATE = """
WITH s AS (
    INSERT INTO shipments_shipment (
        tracking_number, order_number, carrier, transport_mode, origin_country,
        destination_country, currency, metadata, status, stage, status_changed_at,
        last_event_at, created_at, updated_at)
    SELECT %(prefix)s || lpad(g::text, 8, '0'), '', '', 'rail', 'CN', 'RU', '', '{}',
           'delivered', 'last_mile', %(at)s, %(at)s, %(created)s, %(created)s
    FROM generate_series(1, %(parcels)s) g
    RETURNING id
), e AS (
    INSERT INTO shipments_trackingevent (
        shipment_id, code, status, stage, occurred_at, utc_offset_minutes, tz_source,
        location_name, location_code, country, description, source_line, raw, extra,
        dedupe_key, recorded_at)
    SELECT s.id, CASE WHEN k = %(events)s THEN 'delivered' ELSE 'in_transit' END,
           CASE WHEN k = %(events)s THEN 'delivered' ELSE 'in_transit' END,
           CASE WHEN k = %(events)s THEN 'last_mile' ELSE 'line_haul' END,
           %(at)s - (%(events)s - k) * interval '1 hour', 0, 'explicit',
           'Somewhere', '', 'RU', 'a description of the event', k, 'raw,line,' || k, '{}',
           gen_random_uuid(), %(at)s
    FROM s CROSS JOIN generate_series(1, %(events)s) k
    RETURNING shipment_id, id, code
)
INSERT INTO shipments_statuschange (
    shipment_id, from_status, to_status, from_stage, to_stage, event_id, changed_at)
SELECT shipment_id, 'pending', 'delivered', '', 'last_mile', id, %(at)s
FROM e WHERE code = 'delivered'
"""


def _generate(cursor: object, prefix: str, at: datetime, parcels: int, events: int) -> None:
    cursor.execute(  # type: ignore[attr-defined]
        _GENERATE,
        {
            "prefix": prefix,
            "at": at,
            "created": at - timedelta(days=100),
            "parcels": parcels,
            "events": events,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=10)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-retention-"))
    env = scratch_database("hub_bench_retention", workdir, 20000)
    os.environ.update(env)
    os.environ["RETENTION_ROOT"] = str(workdir / "retention")
    import django

    django.setup()
    from django.db import connection

    from operations.retention.policy import retention_apply
    from shipments.models import Shipment

    now = datetime.now(UTC)
    # Mid-month, two months apart: each set alone in its month.
    a_at = (now - timedelta(days=400)).replace(day=15, hour=12)
    b_at = (now - timedelta(days=460)).replace(day=15, hour=12)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('shipments_trackingevent_default') IS NOT NULL")
        partitioned = bool(cursor.fetchone()[0])
        if partitioned:
            from shipments.partitions import partitions_ensure

            partitions_ensure(since=b_at.date())
        _generate(cursor, "RA", a_at, args.parcels, args.events)
        _generate(cursor, "RB", b_at, args.parcels, args.events)
        cursor.execute("ANALYZE")
    total = args.parcels * args.events
    print(
        f"{args.parcels:,} parcels x {args.events} events per set ({total:,} events); "
        f"events table partitioned: {partitioned}"
    )

    # The baseline first: retention would otherwise remove set B too.
    clock = time.monotonic()
    Shipment.objects.filter(tracking_number__startswith="RB").delete()
    orm = time.monotonic() - clock
    print(f"baseline: Django QuerySet.delete() of set B: {orm:.1f} s (no export)")

    clock = time.monotonic()
    result = retention_apply(days=365, now=now)
    ours = time.monotonic() - clock
    size = sum(p.stat().st_size for p in (workdir / "retention").glob("*.gz"))
    print(
        f"retention_apply on set A: {ours:.1f} s, {result.removed:,} parcels removed, "
        f"partitions dropped: {result.dropped_partitions or 'none'}, files {size / 1e6:.1f} MB"
    )
    print(f"ratio retention (export + removal) / ORM delete alone: {ours / orm:.2f}")


if __name__ == "__main__":
    main()
