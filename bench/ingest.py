"""Ingest benchmark: the real pipeline against a raw COPY of the same rows, in one run.

    python bench/ingest.py [--events 200000] [--parcels 40000] [--batch 5000]

1. Generates N hub-csv events over P parcels (local times, several zones, some units).
2. Creates a scratch database (dropped first) and migrates it: `hub_bench`, or the name in
   BENCH_DB_NAME (so that runs sharing a server do not drop each other's database).
3. Ingests the file with `manage.py ingest --json` in a child process (the workers' pipeline),
   reading the child's peak RSS.
4. Loads the same file with a raw COPY into a table with the same number and kind of indexes as
   the events table (primary key, a unique dedupe key, two composite lookups, one FK index; the
   unit lookup partial, as the events' is).
5. Re-ingests the same file (`--reprocess`) and prints the time and the new events (must be 0).
6. The database's share: empties the tables, ingests the file once more through a relay that
   keeps every byte the child sends PostgreSQL, empties them again and replays those bytes on
   a fresh connection, as fast as the server takes them. That is the run's own statements
   and COPY data without the Python that produced them: the pipeline cannot finish faster.
Prints figures only; never fails on a target (targets are read by people).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse, urlunparse

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


def ingest(env: dict[str, str], path: Path, *options: str) -> dict[str, Any]:
    """`manage.py ingest PATH --warehouse bench --json` in a child process: its result line."""
    out = run_manage(env, "ingest", str(path), "--warehouse", "bench", "--json", *options)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


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
            CREATE INDEX ON bench_scratch (unit_id, event_time) WHERE unit_id IS NOT NULL;
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


class WireRecorder:
    """A TCP relay to PostgreSQL that keeps every byte its clients send, one stream per
    connection (the child must not ask for TLS: PGSSLMODE/PGGSSENCMODE=disable)."""

    def __init__(self, upstream: str | tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.streams: list[bytearray] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = connect(self.upstream)
            sent = bytearray()
            self.streams.append(sent)
            threading.Thread(target=self._pump, args=(client, server, sent), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, keep: bytearray | None) -> None:
        try:
            while data := source.recv(1 << 16):
                if keep is not None:
                    keep += data
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def server_address(url: str) -> str | tuple[str, int]:
    """Where the server of a postgres:// URL listens: a unix socket (`?host=/dir`, as the
    embedded server's URLs have it) or a TCP address."""
    parsed = urlparse(url)
    port = parsed.port or 5432
    folder = parse_qs(parsed.query).get("host", [""])[-1]
    if folder.startswith("/"):
        return f"{folder}/.s.PGSQL.{port}"
    return (parsed.hostname or "127.0.0.1", port)


def connect(address: str | tuple[str, int]) -> socket.socket:
    if isinstance(address, str):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(address)
        return conn
    return socket.create_connection(address)


def replay(address: str | tuple[str, int], stream: bytes) -> tuple[float, list[str]]:
    """Send one recorded client stream to the server as fast as it takes it, read every answer;
    returns the seconds until the server closed, and the errors it reported."""
    terminate = b"X" + struct.pack("!i", 4)  # the stream may end without one
    answers = bytearray()
    with connect(address) as conn:

        def read() -> None:
            while data := conn.recv(1 << 16):
                answers.extend(data)

        reader = threading.Thread(target=read)
        started = time.perf_counter()
        reader.start()
        conn.sendall(stream + terminate)
        reader.join()
        seconds = time.perf_counter() - started
    errors, at = [], 0
    while at + 5 <= len(answers):
        kind, length = answers[at : at + 1], struct.unpack("!i", answers[at + 1 : at + 5])[0]
        if kind == b"E":
            fields = bytes(answers[at + 5 : at + 1 + length]).split(b"\0")
            errors += [f[1:].decode(errors="replace") for f in fields if f[:1] == b"M"]
        at += 1 + length
    return seconds, errors


def database_alone(url: str, env: dict[str, str], csv_path: Path) -> float | None:
    """Step 6: the time of the run's database work alone (see the module docstring); None if
    the replay failed (a server that asks for a password cannot be replayed)."""
    emptied = (
        "SET client_min_messages = warning; TRUNCATE shipments_trackingevent, "
        "shipments_shipment, shipments_transportunit, warehouses_feedrun CASCADE; CHECKPOINT"
    )
    parsed = urlparse(url)
    address = server_address(url)
    psql(url, emptied)
    recorder = WireRecorder(address)
    user = parsed.username or "postgres"
    relayed = f"postgres://{user}@127.0.0.1:{recorder.port}{parsed.path}"
    recorded = ingest(
        {**env, "DATABASE_URL": relayed, "PGSSLMODE": "disable", "PGGSSENCMODE": "disable"},
        csv_path,
    )
    recorder.close()
    psql(url, emptied)
    seconds, errors = 0.0, []
    for stream in recorder.streams:
        took, failed = replay(address, bytes(stream))
        seconds += took
        errors += failed
    import psycopg

    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM shipments_trackingevent").fetchone()
    events = stored[0] if stored else 0
    size = sum(len(s) for s in recorder.streams) / 1e6
    print(
        f"database alone  : {seconds:8.2f} s  the ingest's {len(recorder.streams)} connection(s),"
        f" {size:.0f} MB sent, replayed without Python ({events:,} events stored, "
        f"{recorded['events_created']:,} when recorded; errors: {errors or 'none'})"
    )
    return None if errors or events != recorded["events_created"] else seconds


def scratch_database(
    default_name: str,
    workdir: Path,
    batch: int,
    *,
    reuse: bool = False,
    name_from_environment: bool = True,
) -> dict[str, str]:
    """Drop and create the scratch database (BENCH_DB_NAME, else `default_name`; always
    `default_name` without `name_from_environment`), migrate it, and return the environment a
    child `manage.py` runs in against it. With `reuse`, a database of that name that exists is
    kept (and migrated)."""
    import psycopg

    name = os.environ.get("BENCH_DB_NAME", default_name) if name_from_environment else default_name
    admin_url = database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not (reuse and exists):
        psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(admin_url, f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": database_url(name),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "INGEST_BATCH_SIZE": str(batch),
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "WARNING",
    }
    run_manage(env, "migrate", "-v0")
    return env


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

    env = scratch_database("hub_bench", workdir, args.batch)
    url = env["DATABASE_URL"]
    run_manage(
        env,
        "shell",
        "-c",
        "from warehouses.models import Warehouse; Warehouse.objects.create(code='bench', "
        "name='Bench', country='CN', city='Heihe', unlocode='CNHEK', timezone='Asia/Shanghai')",
    )

    result = ingest(env, csv_path)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ingest_s = result["seconds"]
    ingest_rate = args.events / ingest_s

    copy_s = raw_copy(url, csv_path)
    copy_rate = args.events / copy_s

    started = time.perf_counter()
    again = ingest(env, csv_path, "--reprocess")
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
    alone = database_alone(url, env, csv_path)
    if alone:
        print(
            f"ceiling         : {copy_s / alone:.2f} x raw COPY (the ratio if the run's Python cost "
            "nothing and its database work stayed as it is)"
        )


if __name__ == "__main__":
    main()
