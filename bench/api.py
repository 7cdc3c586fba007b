"""API benchmark: GET /api/v1/shipments/{tn} against a bare view, same run, same server.

    python bench/api.py [--shipments 100000] [--events-per 10] [--duration 15] [--rounds 3] [--big]

1. Creates a scratch database `hub_bench_api` (dropped first), migrates it, creates a shop and
   its key with `manage.py create_shop --json`.
2. Loads N shipments x E events with set-based SQL (generate_series), statuses set as the
   recorder would; `--big` then adds filler events until the table holds 10,000,000 rows.
3. Serves the app with gunicorn (2 workers, production settings, DEBUG off).
4. Drives the API detail (auth, throttle, timeline merge, serialization) and a bare view running
   the detail's same single statement (key, shipment, timeline; bench/api_bench_urls.py) with
   wrk (8 connections, random tracking numbers), in alternating rounds (API, bare, API, ...) so
   that anything else running on the machine weighs on both alike, and prints req/s, p50/p99
   for both (and per round) and the ratio. Prints figures only; never fails on a target.

`--reuse` skips steps 1-2 when the scratch database is already loaded (for iterating).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lane import lane_values  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
DB = "hub_bench_api"
PORT = 8765

LOAD_SQL = (
    """
INSERT INTO shipments_shipment (tracking_number, order_number, shop_id, carrier, transport_mode,
    origin_country, destination_country, currency, metadata, status, stage, created_at,
    updated_at)
SELECT 'BN' || lpad(i::text, 7, '0'), 'ORD' || i, %(shop)s, 'hub', 'rail', 'CN', 'RU', '',
       '{}'::jsonb, 'pending', '', now(), now()
FROM generate_series(1, %(n)s) AS i;

INSERT INTO shipments_trackingevent (shipment_id, code, status, stage, occurred_at,
    utc_offset_minutes, tz_source, location_name, location_code, country, description,
    source_line, raw, extra, dedupe_key, recorded_at)
SELECT s.id, c.code, c.status, c.stage,
       timestamptz '2026-03-01 00:00+00' + (s.id %% 1000) * interval '1 hour' + k * interval '9 hour',
       480, 'location', c.place, c.locode, c.country, '', k, '', '{}'::jsonb,
       md5(s.id || ':' || k)::uuid, now()
FROM shipments_shipment s
CROSS JOIN generate_series(1, %(e)s) AS k
JOIN (VALUES
"""
    + lane_values(1)
    + """
) AS c(step, code, status, stage, place, locode, country) ON c.step = 1 + (k - 1) %% 10;

UPDATE shipments_shipment s SET status = e.status, stage = e.stage, status_event_id = e.id,
       status_event_at = e.occurred_at, last_event_at = e.occurred_at,
       status_changed_at = e.occurred_at, status_warehouse_id = e.warehouse_id,
       status_warehouse_known = true
FROM (SELECT DISTINCT ON (shipment_id) shipment_id, id, status, stage, occurred_at, warehouse_id
      FROM shipments_trackingevent ORDER BY shipment_id, occurred_at DESC, id DESC) e
WHERE s.id = e.shipment_id;
"""
)

# Filler events on a shipment nobody reads, to grow the table to `target` rows.
FILLER_SQL = """
INSERT INTO shipments_shipment (tracking_number, order_number, carrier, transport_mode,
    origin_country, destination_country, currency, metadata, status, stage, created_at, updated_at)
SELECT 'FILL' || lpad(i::text, 8, '0'), '', '', '', '', '', '', '{}'::jsonb, 'pending', '',
       now(), now()
FROM generate_series(1, %(n)s / 10) AS i;
INSERT INTO shipments_trackingevent (shipment_id, code, status, stage, occurred_at,
    utc_offset_minutes, tz_source, location_name, location_code, country, description,
    source_line, raw, extra, dedupe_key, recorded_at)
SELECT s.id, 'in_transit', 'in_transit', 'line_haul',
       timestamptz '2026-01-01 00:00+00' + k * interval '1 hour', 0, 'explicit', '', '', '', '',
       0, '', '{}'::jsonb, md5('fill:' || s.id || ':' || k)::uuid, now()
FROM shipments_shipment s CROSS JOIN generate_series(1, 10) AS k
WHERE s.tracking_number LIKE 'FILL%%';
ANALYZE;
"""

LUA = """
math.randomseed(os.time())
request = function()
  local tn = string.format("BN%%07d", math.random(1, %(n)d))
  return wrk.format("GET", "%(prefix)s" .. tn, {["Authorization"] = "%(auth)s"})
end
"""


def env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "api_bench_settings",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}",
        "API_RATE_PER_KEY": "100000000/min",
        "DEBUG": "0",
        # gunicorn refuses the development key with DEBUG off (config/security.py); wrk speaks
        # plain HTTP.
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-" + "x" * 50),
        "HTTPS": "0",
    }


def wrk(prefix: str, auth: str, n: int, duration: int, warm: bool = False) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"n": n, "prefix": prefix, "auth": auth})
    base = ["wrk", "-t2", "-c8", "--latency", "-s", script.name, f"http://127.0.0.1:{PORT}"]
    if warm:
        subprocess.run([*base[:1], "-d3s", *base[1:]], capture_output=True, check=True)
    out = subprocess.run([*base[:1], f"-d{duration}s", *base[1:]], capture_output=True, text=True)
    text = out.stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", text)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": rps,
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def interleaved(
    targets: dict[str, str], auth: str, n: int, duration: int, rounds: int
) -> dict[str, list[dict[str, float]]]:
    """Each target warmed up, then driven in alternating rounds (A, B, A, B, ...): whatever
    else the machine does during the run weighs on both sides alike."""
    for prefix in targets.values():
        wrk(prefix, auth, n, 1, warm=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, prefix in targets.items():
            results[name].append(wrk(prefix, auth, n, max(1, duration // rounds)))
    return results


def load(
    admin_url: str, url: str, e: dict[str, str], shipments: int, events_per: int
) -> tuple[dict[str, Any], int]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=e, check=True)
    shop = json.loads(
        subprocess.run(
            [PY, "manage.py", "create_shop", "Bench shop", "--json"],
            cwd=ROOT,
            env=e,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        params = {"shop": shop["shop_id"], "n": shipments, "e": events_per}
        for statement in LOAD_SQL.split(";\n\n"):
            conn.execute(statement, params)
        conn.execute("ANALYZE")
        events = conn.execute("SELECT count(*) FROM shipments_trackingevent").fetchone()[0]
    print(
        f"loaded {shipments:,} shipments, {events:,} events in {time.monotonic() - started:.1f} s"
    )

    return shop, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shipments", type=int, default=100_000)
    parser.add_argument("--events-per", type=int, default=10)
    parser.add_argument("--duration", type=int, default=15, help="seconds per target")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per target")
    parser.add_argument("--big", action="store_true", help="also measure with 10M events")
    parser.add_argument("--reuse", action="store_true", help="keep a loaded scratch database")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is required (apt-get install wrk)")
    admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
    url = admin_url.rsplit("/", 1)[0] + f"/{DB}"
    saved = ROOT / ".local" / "bench-api.json"  # the loaded database's shop key, for --reuse
    e = env(url)
    if args.reuse and saved.exists():
        shop = json.loads(saved.read_text())
        with psycopg.connect(url, autocommit=True) as conn:
            events = conn.execute("SELECT count(*) FROM shipments_trackingevent").fetchone()[0]
        print(f"reusing {DB}: {events:,} events")
    else:
        shop, events = load(admin_url, url, e, args.shipments, args.events_per)
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps(shop))

    def serve_and_measure(label: str) -> None:
        server = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "config.wsgi",
                "-c",
                "config/gunicorn.py",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{PORT}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=e,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            auth = f"Api-Key {shop['api_key']}"
            runs = interleaved(
                {"API detail": "/api/v1/shipments/", "bare view": "/bare/"},
                auth,
                args.shipments,
                args.duration,
                args.rounds,
            )
        finally:
            server.terminate()
            server.wait()
        for i, (api_round, bare_round) in enumerate(
            zip(runs["API detail"], runs["bare view"], strict=True)
        ):
            print(
                f"[{label}] round {i + 1}: API {api_round['rps']:6.0f} req/s p99 {api_round['p99']:6.2f} ms"
                f" | bare {bare_round['rps']:6.0f} req/s p99 {bare_round['p99']:6.2f} ms"
                f" | ratio {api_round['rps'] / bare_round['rps']:.2f}"
            )
        rps = {}
        for name, rounds in runs.items():
            rps[name] = statistics.mean(r["rps"] for r in rounds)
            p50 = statistics.median(r["p50"] for r in rounds)
            p99 = statistics.median(r["p99"] for r in rounds)
            errors = sum(r["errors"] for r in rounds)
            print(
                f"[{label}] {name:11s}: {rps[name]:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                f"  non-2xx {errors}  (mean req/s, median p50/p99 of {len(rounds)} rounds)"
            )
        print(
            f"[{label}] ratio API/bare throughput: {rps['API detail'] / rps['bare view']:.2f}"
            "  (target >= 0.7; p99 target < 25 ms)"
        )

    serve_and_measure(f"{events:,} events")
    if args.big:
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in FILLER_SQL.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"n": max(0, 10_000_000 - events)})
            events = conn.execute("SELECT count(*) FROM shipments_trackingevent").fetchone()[0]
        print(f"grew the events table to {events:,} rows in {time.monotonic() - started:.0f} s")
        serve_and_measure(f"{events:,} events")


if __name__ == "__main__":
    main()
