"""Ingest benchmark: the real pipeline against a raw COPY of the same rows, in one run.

    python bench/ingest.py [--events 200000] [--parcels 40000] [--batch 5000]

1. Generates N hub-csv events over P parcels (local times, several zones, some units).
2. Creates a scratch database `hub_bench` (dropped first) and migrates it.
3. Ingests the file with `manage.py ingest --json` in a child process (the workers' pipeline),
   reading the child's peak RSS.
4. Loads the same file with a raw COPY into a table with the same number and kind of indexes as
   the events table (primary key, a unique dedupe key, two composite lookups, one FK index).
5. Re-ingests the same file (`--reprocess`) and prints the time and the new events (must be 0).
Prints figures only; never fails on a target (targets are read by people).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = (
    "tracking_number,event_code,event_time,time_zone,location_name,location_code,country,"
    "description,order_number,carrier,transport_mode,unit_id\n"
)
STEPS = [
    ("info_received", "", "Heihe", "CNHEK", "CN"),
    ("warehouse_received", "", "Heihe bonded warehouse", "CNHEK", "CN"),
    ("warehouse_dispatched", "", "Heihe bonded warehouse", "CNHEK", "CN"),
    ("customs_export_submitted", "", "Heihe customs", "CNHEK", "CN"),
    ("customs_export_cleared", "", "Heihe customs", "CNHEK", "CN"),
    ("departed", "", "Suifenhe", "CNSFH", "CN"),
    ("border_crossed", "Asia/Vladivostok", "Pogranichny", "RUPGS", "RU"),
    ("arrived", "Asia/Yakutsk", "Blagoveshchensk", "RUBQS", "RU"),
    ("customs_import_cleared", "Asia/Yakutsk", "Blagoveshchensk customs", "RUBQS", "RU"),
    ("out_for_delivery", "Europe/Moscow", "Moscow", "RUMOW", "RU"),
    ("delivered", "Europe/Moscow", "Moscow", "RUMOW", "RU"),
]


def generate(path: Path, events: int, parcels: int) -> None:
    rng = random.Random(42)
    per = max(1, events // parcels)
    start = datetime(2026, 3, 1, 8, 0)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        p = 0
        while written < events:
            tn = f"BN{p:09d}RU"
            t = start + timedelta(minutes=rng.randrange(60 * 24 * 30))
            for step in range(min(per, events - written)):
                code, tz, name, locode, country = STEPS[step % len(STEPS)]
                t += timedelta(hours=rng.randrange(1, 30))
                out.write(
                    f"{tn},{code},{t:%Y-%m-%d %H:%M:%S},{tz},{name},{locode},{country},"
                    f"step {step},ORD{p:08d},HLJ-Rail,rail,\n"
                )
                written += 1
            p += 1


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
    parsed = urlparse(base)
    return urlunparse(parsed._replace(path=f"/{name}"))


def psql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def run_manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def raw_copy(url: str, path: Path) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_scratch")
        conn.execute(
            """
            CREATE TABLE bench_scratch (
                id bigserial PRIMARY KEY,
                tracking_number text, event_code text, event_time timestamptz, time_zone text,
                location_name text, location_code text, country text, description text,
                order_number text, carrier text, transport_mode text, unit_id text,
                run_id bigint DEFAULT 1,
                dedupe_key text GENERATED ALWAYS AS (
                    md5(tracking_number || event_code || description || location_code)
                ) STORED UNIQUE
            );
            CREATE INDEX ON bench_scratch (tracking_number, event_time);
            CREATE INDEX ON bench_scratch (unit_id, event_time);
            CREATE INDEX ON bench_scratch (run_id);
            """
        )
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_scratch (tracking_number, event_code, event_time, time_zone,"
                " location_name, location_code, country, description, order_number, carrier,"
                " transport_mode, unit_id) FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--parcels", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=20000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    csv_path = workdir / "events.csv"
    generate(csv_path, args.events, args.parcels)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"generated {args.events:,} events over {args.parcels:,} parcels ({size_mb:.1f} MB)")

    url = database_url("hub_bench")
    admin_url = database_url("postgres")
    psql(admin_url, "DROP DATABASE IF EXISTS hub_bench WITH (FORCE)")
    psql(admin_url, "CREATE DATABASE hub_bench")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "INGEST_BATCH_SIZE": str(args.batch),
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "WARNING",
    }
    run_manage(env, "migrate", "-v0")
    run_manage(
        env,
        "shell",
        "-c",
        "from warehouses.models import Warehouse; Warehouse.objects.create(code='bench', "
        "name='Bench', country='CN', city='Heihe', unlocode='CNHEK', timezone='Asia/Shanghai')",
    )

    out = run_manage(env, "ingest", str(csv_path), "--warehouse", "bench", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ingest_s = result["seconds"]
    ingest_rate = args.events / ingest_s

    copy_s = raw_copy(url, csv_path)
    copy_rate = args.events / copy_s

    started = time.perf_counter()
    again = json.loads(
        run_manage(env, "ingest", str(csv_path), "--warehouse", "bench", "--json", "--reprocess")
        .strip()
        .splitlines()[-1]
    )
    reingest_wall = time.perf_counter() - started

    print(
        f"pipeline ingest : {ingest_s:8.2f} s  {ingest_rate:10,.0f} events/s  "
        f"(status {result['status']}, created {result['events_created']:,}, "
        f"rejected {result['rejected']}, shipments {result['shipments_touched']:,})"
    )
    print(f"raw COPY        : {copy_s:8.2f} s  {copy_rate:10,.0f} rows/s")
    print(f"ratio           : {ingest_rate / copy_rate:.2f} x raw COPY (target >= 0.5)")
    print(f"peak RSS        : {peak_rss_mb:.0f} MB (ingest child process; target < 300 MB at 1M)")
    print(
        f"re-ingest       : {again['seconds']:.2f} s in the pipeline ({reingest_wall:.2f} s wall), "
        f"new events {again['events_created']} (must be 0), duplicates {again['duplicates']:,}"
    )


if __name__ == "__main__":
    main()
