"""Operations dashboard benchmark: 10,000,000 events, the refresh job, then the dashboard view.

    python bench/dashboard.py [--shipments 1040000] [--requests 20] [--keep]

1. Creates a scratch database `hub_bench_dashboard` (dropped first) and migrates it.
2. Loads five warehouses with feeds and runs, N shipments over 15 lanes (CN -> RU/US/PL/DE/KZ x
   rail/air/road) and ten events each, generated with generate_series straight in SQL: parcels
   started over the last 150 days, so recent ones are still on their way; some are held by
   customs, some had a failed delivery attempt. Statuses are set as the recorder would.
3. Runs the refresh (operations.services.dashboard_refresh) and times it, with the lane
   statistics and without them (the scheduled job's usual run).
4. Requests /admin/operations/dashboard/ through Django's test client as a logged-in superuser,
   prints p50 / max, and asserts every request ran the same number of queries.
Prints figures only; never fails on a target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "hub_bench_dashboard"
BASE_URL = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")

LOAD_SQL = """
SET session_replication_role = replica;  -- skip FK triggers: the keys below come from the same load
SET synchronous_commit = off;

INSERT INTO warehouses_warehouse (code, name, kind, country, city, unlocode, timezone, created_at)
SELECT w.code, w.name, 'bonded', w.country, w.city, w.locode, w.tz, now()
FROM (VALUES ('heihe', 'Heihe bonded', 'CN', 'Heihe', 'CNHEK', 'Asia/Shanghai'),
             ('suifenhe', 'Suifenhe yard', 'CN', 'Suifenhe', 'CNSFH', 'Asia/Shanghai'),
             ('harbin', 'Harbin air terminal', 'CN', 'Harbin', 'CNHRB', 'Asia/Shanghai'),
             ('yiwu', 'Yiwu hub', 'CN', 'Yiwu', 'CNYIW', 'Asia/Shanghai'),
             ('urumqi', 'Urumqi hub', 'CN', 'Urumqi', 'CNURC', 'Asia/Urumqi'))
     AS w(code, name, country, city, locode, tz);

INSERT INTO warehouses_feed (code, name, warehouse_id, format, transport, source_location,
    default_timezone, encoding, code_mapping, column_mapping, identifier_mapping,
    unknown_code_policy, auth_secret_name, active, push_token_hash, http_etag,
    http_last_modified, created_at)
SELECT w.code || '-csv', w.name || ' feed', w.id, 'hub-csv', 'directory', '', '', 'utf-8',
       '{}', '{}', '{}', 'reject', '', true, '', '', '', now()
FROM warehouses_warehouse w;

-- a run every 10 minutes per feed for 30 days; the yiwu feed went quiet two days ago
INSERT INTO warehouses_feedrun (feed_id, status, source, original_name, payload_name,
    payload_sha256, payload_size, records, events_created, duplicates, rejected,
    shipments_touched, records_processed, attempts, error, created_at, started_at, finished_at)
SELECT f.id, CASE WHEN k % 50 = 0 THEN 'partial' ELSE 'succeeded' END, 'directory',
       'drop.csv', '', md5(f.id || ':' || k), 1000, 2000, 1990, 0,
       CASE WHEN k % 50 = 0 THEN 10 ELSE 0 END, 400, 2000, 1, '',
       now() - k * interval '10 minutes', now() - k * interval '10 minutes',
       now() - k * interval '10 minutes' + interval '20 seconds'
FROM warehouses_feed f CROSS JOIN generate_series(0, 30 * 144) AS k
WHERE f.code <> 'yiwu-csv' OR k > 2 * 144;

INSERT INTO shipments_shipment (tracking_number, order_number, carrier, transport_mode,
    origin_country, destination_country, currency, metadata, status, stage, created_at, updated_at)
SELECT 'DB' || lpad(i::text, 8, '0'), '', 'hub',
       (ARRAY['rail', 'air', 'road'])[1 + (i / 5) %% 3], 'CN',
       (ARRAY['RU', 'US', 'PL', 'DE', 'KZ'])[1 + i %% 5], '', '{}'::jsonb, 'pending', '',
       now() - interval '150 days' * (i::float / %(n)s), now()
FROM generate_series(1, %(n)s) AS i;

-- step k's time: the shipment's start + the lane's cumulative hours to step k, scaled per parcel
INSERT INTO shipments_trackingevent (shipment_id, code, status, stage, occurred_at,
    utc_offset_minutes, tz_source, location_name, location_code, country, description,
    warehouse_id, source_line, raw, extra, dedupe_key, recorded_at)
SELECT s.id, c.code, c.status, c.stage, t.at, 480, 'location', c.place, '', c.country, '',
       CASE WHEN c.step IN (2, 3) THEN w.id END, c.step, '', '{}'::jsonb,
       md5(s.id || ':' || c.step)::uuid, now()
FROM shipments_shipment s
JOIN LATERAL (
    SELECT CASE s.transport_mode WHEN 'air' THEN 0.4 WHEN 'road' THEN 0.8 ELSE 1.0 END
           * (0.6 + (hashint8(s.id) & 1023) / 1023.0 * 0.9) AS f,
           (SELECT id FROM warehouses_warehouse ORDER BY id OFFSET s.id %% 5 LIMIT 1) AS wid
) p ON true
JOIN warehouses_warehouse w ON w.id = p.wid
CROSS JOIN (VALUES
    (1, 'info_received', 'info_received', 'first_mile', 0, 'Shop', 'CN'),
    (2, 'warehouse_received', 'in_transit', 'first_mile', 24, 'Warehouse', 'CN'),
    (3, 'warehouse_dispatched', 'in_transit', 'first_mile', 48, 'Warehouse', 'CN'),
    (4, 'customs_export_submitted', 'in_transit', 'export_customs', 60, 'Border', 'CN'),
    (5, 'customs_export_cleared', 'in_transit', 'export_customs', 72, 'Border', 'CN'),
    (6, 'departed', 'in_transit', 'line_haul', 80, 'Border', 'CN'),
    (7, 'arrived', 'in_transit', 'line_haul', 200, 'Hub', 'XX'),
    (8, 'customs_import_cleared', 'in_transit', 'import_customs', 230, 'Hub', 'XX'),
    (9, 'out_for_delivery', 'out_for_delivery', 'last_mile', 260, 'City', 'XX'),
    (10, 'delivered', 'delivered', 'last_mile', 270, 'City', 'XX')
) AS c0(step, code0, status0, stage, hours, place, country0)
CROSS JOIN LATERAL (
    SELECT c0.step, c0.stage, c0.place,
           CASE WHEN c0.step = 10 AND s.id %% 50 = 0 THEN 'delivery_failed'
                WHEN c0.step = 8 AND s.id %% 97 = 0 THEN 'customs_held' ELSE c0.code0 END AS code,
           CASE WHEN c0.step = 10 AND s.id %% 50 = 0 THEN 'failed_attempt'
                WHEN c0.step = 8 AND s.id %% 97 = 0 THEN 'exception' ELSE c0.status0 END AS status,
           CASE WHEN c0.country0 = 'XX' THEN s.destination_country ELSE c0.country0 END AS country
) c
CROSS JOIN LATERAL (
    SELECT s.created_at + (c0.hours * p.f + (hashint8(s.id * 16 + c0.step) & 255) / 255.0 * 4)
           * interval '1 hour' AS at
) t
WHERE t.at <= now() AND NOT (s.id %% 97 = 0 AND c0.step > 8);

SET session_replication_role = DEFAULT;
"""

STATUS_SQL = """
UPDATE shipments_shipment s SET status = e.status, stage = e.stage, status_event_id = e.id,
       status_event_at = e.occurred_at, last_event_at = e.occurred_at,
       status_changed_at = e.occurred_at, status_warehouse_id = e.warehouse_id,
       status_warehouse_known = true
FROM (SELECT DISTINCT ON (shipment_id) shipment_id, id, status, stage, occurred_at, warehouse_id
      FROM shipments_trackingevent ORDER BY shipment_id, occurred_at DESC, id DESC) e
WHERE s.id = e.shipment_id;
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shipments", type=int, default=1_040_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="reuse a loaded database")
    args = parser.parse_args()
    url = f"{BASE_URL}/{DB}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}

    if not args.keep:
        with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")
            conn.execute(f"CREATE DATABASE {DB}")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in LOAD_SQL.split(";\n"):
                if statement.strip():
                    conn.execute(
                        statement.replace("%%", "%").replace(  # type: ignore[arg-type]
                            "%(n)s", str(args.shipments)
                        )
                    )
            conn.execute(STATUS_SQL)  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE")
        load_seconds = time.monotonic() - started
    else:
        load_seconds = float("nan")

    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from operations.models import ExceptionItem
    from operations.services import dashboard_refresh

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM shipments_trackingevent), "
            "(SELECT count(*) FROM shipments_shipment), (SELECT count(*) FROM warehouses_feedrun)"
        )
        events, shipments, runs = cursor.fetchone()
    print(
        f"loaded {shipments:,} shipments, {events:,} events, {runs:,} runs in {load_seconds:.1f} s"
    )

    refresh = dashboard_refresh()
    print(f"refresh (all pre-aggregated tables): {refresh.seconds:.1f} s")
    second = dashboard_refresh()
    print(f"refresh again (warm cache):          {second.seconds:.1f} s")
    quick = dashboard_refresh(stats=False)
    print(
        f"refresh keeping the lane statistics: {quick.seconds:.1f} s (the scheduled job's usual run)"
    )
    print(f"exceptions queue: {ExceptionItem.objects.count():,} items")

    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    client.get("/admin/operations/dashboard/")  # warm-up: templates, connection
    timings, counts = [], set()
    for _ in range(args.requests):
        with CaptureQueriesContext(connection) as queries:
            clock = time.perf_counter()
            response = client.get("/admin/operations/dashboard/")
            timings.append((time.perf_counter() - clock) * 1000)
        assert response.status_code == 200, response.status_code
        counts.add(len(queries))
    assert len(counts) == 1, f"query count varied: {counts}"
    timings.sort()
    print(
        f"[{events:,} events] dashboard: p50 {statistics.median(timings):.1f} ms  "
        f"max {timings[-1]:.1f} ms  over {args.requests} requests, "
        f"{counts.pop()} queries each (constant), {len(response.content):,} bytes"
    )


if __name__ == "__main__":
    main()
