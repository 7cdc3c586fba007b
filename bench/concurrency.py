"""Ingest rate with 1 and 2 workers on different feeds that name the same parcels.

    python bench/concurrency.py [--events 100000] [--parcels 20000] [--batch 20000]

1. Generates two hub-csv files over the same P parcels: a warehouse feed's steps (received,
   dispatched, customs, departed) and a carrier feed's (border, arrival, import customs,
   delivery), N events each, interleaved in time so each shipment's status needs both.
2. Creates a scratch database (dropped first) and migrates it: `hub_bench_concurrency`, or the
   name in BENCH_DB_NAME (so that runs sharing a server do not drop each other's database).
3. One worker: `manage.py ingest` of the warehouse file, then of the carrier file, one child
   process after the other. Prints events/s over the wall time (process start-up included),
   and each run's own seconds.
4. Empties the tables; two workers: both ingests started at once in two child processes.
   Prints events/s over the wall time from the start to the last one's end, each run's own
   seconds, and whether the shipments' statuses are the serial run's.
Prints figures only; never fails on a target (targets are read by people).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import HEADER, psql, run_manage, scratch_database  # noqa: E402

# (feed, code, zone, location, locode, country): the feeds' steps alternate along the route.
STEPS = [
    ("warehouse", "warehouse_received", "", "Heihe bonded warehouse", "CNHEK", "CN"),
    ("carrier", "picked_up", "", "Heihe", "CNHEK", "CN"),
    ("warehouse", "warehouse_dispatched", "", "Heihe bonded warehouse", "CNHEK", "CN"),
    ("carrier", "departed", "", "Suifenhe", "CNSFH", "CN"),
    ("warehouse", "customs_export_cleared", "", "Heihe customs", "CNHEK", "CN"),
    ("carrier", "border_crossed", "Asia/Vladivostok", "Pogranichny", "RUPGS", "RU"),
    ("warehouse", "arrived", "Asia/Yakutsk", "Blagoveshchensk", "RUBQS", "RU"),
    ("carrier", "customs_import_cleared", "Asia/Yakutsk", "Blagoveshchensk", "RUBQS", "RU"),
    ("warehouse", "out_for_delivery", "Europe/Moscow", "Moscow", "RUMOW", "RU"),
    ("carrier", "delivered", "Europe/Moscow", "Moscow", "RUMOW", "RU"),
]
FEEDS = ("warehouse", "carrier")


def generate(folder: Path, events: int, parcels: int) -> dict[str, Path]:
    """Each feed's file: `events` rows over the same parcels, parcel after parcel."""
    rng = random.Random(42)
    start = datetime(2026, 3, 1, 8, 0)
    rows: dict[str, list[str]] = {feed: [] for feed in FEEDS}
    p = 0
    while min(len(r) for r in rows.values()) < events:
        t = start + timedelta(minutes=rng.randrange(60 * 24 * 30))
        for feed, code, tz, name, locode, country in STEPS:
            t += timedelta(hours=rng.randrange(1, 30))
            if len(rows[feed]) < events:
                rows[feed].append(
                    f"BC{p % parcels:09d}RU,{code},{t:%Y-%m-%d %H:%M:%S},{tz},{name},{locode},"
                    f"{country},round {p // parcels},ORD{p % parcels:08d},HLJ-Rail,rail,\n"
                )
        p += 1
    paths = {}
    for feed in FEEDS:
        paths[feed] = folder / f"{feed}.csv"
        paths[feed].write_text(HEADER + "".join(rows[feed]), encoding="utf-8")
    return paths


def start_ingest(env: dict[str, str], path: Path, feed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "ingest",
            str(path),
            "--warehouse",
            feed,
            "--feed",
            feed,
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"ingest failed:\n{err}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def seconds(result: dict[str, Any]) -> str:
    return f"{result['seconds']:.2f} s"


def statuses(url: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            # The two feeds' parcels only (bench/scale.py runs this beside millions of others).
            "SELECT tracking_number, status FROM shipments_shipment"
            " WHERE tracking_number LIKE 'BC%' ORDER BY 1"
        ).fetchall()


def feeds_create(env: dict[str, str]) -> None:
    """The two feeds' warehouses and feeds (FEEDS), in the scratch database."""
    run_manage(
        env,
        "shell",
        "-c",
        "from warehouses.models import Feed, Warehouse\n"
        f"for code in {FEEDS!r}:\n"
        "    w = Warehouse.objects.create(code=code, name=code, country='CN', city='Heihe',"
        " unlocode='CNHEK', timezone='Asia/Shanghai')\n"
        "    Feed.objects.create(code=code, name=code, warehouse=w, format='hub-csv')",
    )


def one_and_two_workers(
    env: dict[str, str], files: dict[str, Path], reset: Callable[[], None]
) -> tuple[float, float]:
    """Ingest both files with one worker, `reset()`, then with two at once; prints both lines
    and answers (events/s with one, with two). `reset` must remove what the files stored."""
    url = env["DATABASE_URL"]
    started = time.perf_counter()
    serial = [finished(start_ingest(env, files[feed], feed)) for feed in FEEDS]
    serial_wall = time.perf_counter() - started
    serial_events = sum(r["events_created"] for r in serial)
    expected = statuses(url)
    print(
        f"1 worker  : {serial_wall:8.2f} s  {serial_events / serial_wall:10,.0f} events/s  "
        f"(wall, two processes one after the other; runs {' + '.join(seconds(r) for r in serial)}"
        f", {serial_events:,} events)"
    )

    reset()
    started = time.perf_counter()
    workers = [start_ingest(env, files[feed], feed) for feed in FEEDS]
    together = [finished(worker) for worker in workers]
    wall = time.perf_counter() - started
    events = sum(r["events_created"] for r in together)
    same = statuses(url) == expected
    print(
        f"2 workers : {wall:8.2f} s  {events / wall:10,.0f} events/s  "
        f"(wall, two processes at once; runs {' / '.join(seconds(r) for r in together)}, "
        f"{events:,} events, "
        f"statuses {'as serial' if same else 'DIFFER from serial'})"
    )
    print(f"speed-up  : {serial_wall / wall:.2f} x on {os.cpu_count()} cores")
    return serial_events / serial_wall, events / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000, help="events per feed")
    parser.add_argument("--parcels", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20000)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    files = generate(workdir, args.events, args.parcels)
    print(f"generated 2 feeds x {args.events:,} events over the same {args.parcels:,} parcels")

    env = scratch_database("hub_bench_concurrency", workdir, args.batch)
    url = env["DATABASE_URL"]
    feeds_create(env)
    one_and_two_workers(
        env,
        files,
        lambda: psql(
            url, "TRUNCATE shipments_shipment, shipments_transportunit, warehouses_feedrun CASCADE"
        ),
    )


if __name__ == "__main__":
    main()
