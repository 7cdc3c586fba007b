"""Export benchmark: GET /api/v1/shipments/export of 1,000,000 shipments, CSV and XLSX, through
the real view, with peak memory against a 100,000-shipment baseline in the same run.

    python bench/exports.py [--shipments 1000000] [--baseline 100000] [--formats csv,xlsx]

1. Creates a scratch database (bench.ingest.scratch_database: `hub_bench_exports`, or
   BENCH_DB_NAME) and loads two shops set-based in SQL: "big" with N shipments, "small" with
   the baseline's, each with the event that set its status (Chinese and Russian place names and
   descriptions, some order numbers that look like formulas).
2. For each format and shop, a fresh child process exports the small shop once (warm-up), then
   authenticates as the shop measured and streams
   the export through Django's test client (the whole view: authentication, throttle, keyset
   batches, writer), counting bytes as they arrive without keeping them.
3. Prints per run: rows, bytes, seconds, rows/s, the child's peak RSS and its growth over the
   same process after a warm-up export (modules, connection, first batch), and tracemalloc's
   peak of Python allocations during the export (--tracemalloc; it slows the run).
   Then the ratio of the growth at N to the growth at the baseline: about 1 when memory does
   not grow with the number of rows.
Prints figures only; never fails on a target.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import scratch_database  # noqa: E402

LOAD_SQL = """
SET session_replication_role = replica;
SET synchronous_commit = off;
INSERT INTO shipments_shop (name, slug, created_at)
VALUES ('Big shop', 'big', now()), ('Small shop', 'small', now());
INSERT INTO shipments_shipment (tracking_number, order_number, claim_order_number, shop_id,
    carrier, transport_mode, origin_country, destination_country, weight_kg, declared_value,
    currency, metadata, status, stage, created_at, updated_at, change_xid)
SELECT CASE WHEN i <= %(big)s THEN 'BIG' ELSE 'SML' END || lpad(i::text, 9, '0') || 'CN',
       CASE WHEN i %% 100 = 0 THEN '=HYPERLINK("http://x/' || i || '")'
            ELSE '订单-' || i END, '',
       (SELECT id FROM shipments_shop WHERE slug = CASE WHEN i <= %(big)s THEN 'big' ELSE 'small' END),
       (ARRAY['Почта России', '中国邮政', 'CDEK'])[1 + i %% 3], 'rail', 'CN',
       (ARRAY['RU', 'KZ', 'BY'])[1 + i %% 3], 0.350 + (i %% 7), 12.50 + (i %% 100), 'CNY',
       '{}'::jsonb, 'in_transit', 'line_haul',
       now() - interval '30 days' + i * interval '1 second', now(), 1
FROM generate_series(1, %(big)s + %(small)s) AS i;
INSERT INTO shipments_trackingevent (shipment_id, code, status, stage, occurred_at,
    utc_offset_minutes, tz_source, location_name, location_code, country, description,
    source_line, raw, extra, dedupe_key, recorded_at)
SELECT s.id, 'arrived', 'in_transit', 'line_haul', s.created_at + interval '3 days', 540,
       'location', 'Благовещенск', 'RUBQS', 'RU', '到达 Прибыл в сортировочный центр', 0,
       '', '{}'::jsonb, md5(s.id::text)::uuid, now()
FROM shipments_shipment s;
UPDATE shipments_shipment s
SET status_event_id = e.id, status_event_at = e.occurred_at, status_changed_at = e.occurred_at,
    last_event_at = e.occurred_at, status_warehouse_id = e.warehouse_id,
    status_warehouse_known = true
FROM shipments_trackingevent e WHERE e.shipment_id = s.id;
SET session_replication_role = DEFAULT
"""


def load(url: str, big: int, small: int) -> float:
    import psycopg

    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in LOAD_SQL.split(";\n"):
            sql = statement.replace("%(big)s", str(big)).replace("%(small)s", str(small))
            conn.execute(sql.replace("%%", "%"))  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(shop_slug: str, fmt: str, trace: bool) -> None:
    """One export in this process; prints its figures as JSON."""
    import django

    django.setup()
    from django.test import Client

    from shipments.models import Shipment, Shop
    from shipments.services import shop_api_key_create

    def client_for(slug: str) -> Client:
        _, key = shop_api_key_create(shop=Shop.objects.get(slug=slug))
        return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")

    def export(client: Client) -> int:
        response = client.get("/api/v1/shipments/export", {"format": fmt}, secure=True)
        assert response.status_code == 200, response.status_code
        return sum(len(chunk) for chunk in response.streaming_content)

    # Warm-up: modules, the connection, full batches of rows (the small shop's whole export).
    export(client_for("small"))
    client = client_for(shop_slug)
    before = _rss_mb()
    if trace:
        import tracemalloc

        tracemalloc.start()
    started = time.perf_counter()
    size = export(client)
    seconds = time.perf_counter() - started
    traced = None
    if trace:
        traced = tracemalloc.get_traced_memory()[1] / 2**20
    rows = Shipment.objects.filter(shop__slug=shop_slug).count()
    print(
        json.dumps(
            {
                "rows": rows,
                "bytes": size,
                "seconds": seconds,
                "rss_mb": _rss_mb(),
                "growth_mb": _rss_mb() - before,
                "traced_mb": traced,
            }
        )
    )


def run(env: dict[str, str], shop: str, fmt: str, trace: bool) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", shop, "--format", fmt]
    if trace:
        args.append("--tracemalloc")
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.format, args.tracemalloc)
        return

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-exports-"))
    env = scratch_database("hub_bench_exports", workdir, 2000)
    env["API_EXPORT_RATE_PER_KEY"] = "1000/min"
    env["DEBUG"] = "0"
    seconds = load(env["DATABASE_URL"], args.shipments, args.baseline)
    print(f"loaded {args.shipments:,} + {args.baseline:,} shipments with events in {seconds:.0f} s")
    for fmt in args.formats.split(","):
        figures = {}
        for shop in ("small", "big"):
            r = run(env, shop, fmt, args.tracemalloc)
            figures[shop] = r
            traced = f", tracemalloc peak {r['traced_mb']:.1f} MB" if r["traced_mb"] else ""
            print(
                f"{fmt:4} {int(r['rows']):>9,} rows  {r['bytes'] / 2**20:7.1f} MB  "
                f"{r['seconds']:6.1f} s  {r['rows'] / r['seconds']:>8,.0f} rows/s  "
                f"peak RSS {r['rss_mb']:.0f} MB (+{r['growth_mb']:.1f} MB during the export)"
                f"{traced}"
            )
        small, big = figures["small"], figures["big"]
        print(
            f"{fmt:4} {big['rows'] / small['rows']:.0f}x the rows: peak RSS x"
            f"{big['rss_mb'] / small['rss_mb']:.2f}, growth {small['growth_mb']:.1f} -> "
            f"{big['growth_mb']:.1f} MB"
        )


if __name__ == "__main__":
    main()
