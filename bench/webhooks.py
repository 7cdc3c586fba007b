"""Webhook isolation benchmark: a healthy endpoint's delivery delay, alone and beside a bad one.

    python bench/webhooks.py [--seconds 60] [--rate 2] [--scenarios alone,hanging,slow]

1. Creates a scratch database `hub_bench_webhooks` (dropped first) and migrates it.
2. Starts real processes with the production settings: beat (the relay every
   WEBHOOK_RELAY_EVERY_SECONDS, 5 s by default), a `webhooks` worker and an `ingest` worker
   (concurrency 2 each), as docker-compose.yml runs them, on REDIS_URL (default
   redis://127.0.0.1:6379/14: use a Redis database nothing else consumes).
3. Runs real local receivers in this process: a healthy one (answers at once) and, per
   scenario, a neighbour of the same shop that hangs (never answers within the timeout) or is
   slow (1 s per request).
4. For each scenario, writes `--rate` outbox rows per second for each endpoint (as the recorder
   does) and drops a one-line feed file every 5 s into the ingest queue. Prints the healthy
   endpoint's delay from the row's creation to its arrival at the receiver (p50/p99/max), the
   feed runs' delay from creation to finished, how many requests the neighbour saw, and
   duplicates (the same message id arriving twice at the healthy receiver).
Prints figures only; never fails on a target.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "hub_bench_webhooks"
BASE_URL = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")


class Receiver:
    def __init__(self, mode: str) -> None:
        self.mode = mode  # "ok", "hang" (60 s), "slow" (1 s)
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.arrivals.append((self.headers["webhook-id"], at))
                if receiver.mode == "hang":
                    time.sleep(60)
                elif receiver.mode == "slow":
                    time.sleep(1)
                try:
                    self.send_response(200)
                    self.end_headers()
                except OSError:
                    return

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def processes(env: dict[str, str]) -> Iterator[None]:
    celery = str(Path(sys.executable).parent / "celery")
    commands = [
        [celery, "-A", "config", "beat", "-l", "warning"],
        [celery, "-A", "config", "worker", "-l", "warning", "-Q", "webhooks",
         "-n", "bench-webhooks@%h", "--concurrency", "2"],
        [celery, "-A", "config", "worker", "-l", "warning", "-Q", "ingest",
         "-n", "bench-ingest@%h", "--concurrency", "2"],
    ]  # fmt: skip
    started = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for c in commands]
    try:
        yield
    finally:
        for proc in started:
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run_scenario(name: str, seconds: float, rate: float, show: bool = True) -> None:
    from shipments.models import Shipment, Shop, WebhookDelivery, WebhookEndpoint
    from shipments.webhooks import webhook_endpoint_create
    from warehouses.ingest.runs import feed_run_create
    from warehouses.models import Feed, FeedRun

    shop = Shop.objects.get(slug="bench")
    feed = Feed.objects.get(code="bench-feed")
    WebhookEndpoint.objects.all().delete()
    healthy = Receiver("ok")
    neighbour = Receiver({"hanging": "hang", "slow": "slow"}.get(name, "ok"))
    endpoints = [
        webhook_endpoint_create(shop=shop, url=healthy.url, event_types=[]),
    ]
    if name in ("hanging", "slow"):
        endpoints.append(webhook_endpoint_create(shop=shop, url=neighbour.url, event_types=[]))
    created: dict[str, float] = {}
    runs: list[int] = []
    started = time.monotonic()
    next_run = started
    tick = 1.0 / rate
    n = 0
    while time.monotonic() - started < seconds:
        n += 1
        shipment = Shipment.objects.create(tracking_number=f"BW{uuid.uuid4().hex[:12]}", shop=shop)
        for endpoint in endpoints:
            row = WebhookDelivery.objects.create(
                message_id=uuid.uuid4(),
                endpoint=endpoint,
                shipment=shipment,
                event_type="shipment.status_changed",
                sequence=1,
                data={"n": n},
            )
            if endpoint is endpoints[0]:
                created[row.webhook_id] = row.created_at.timestamp()
        if time.monotonic() >= next_run:
            body = (
                "tracking_number,event_code,event_time,time_zone,location_name,location_code,"
                "country,description,order_number,carrier,transport_mode,unit_id\n"
                f"BI{uuid.uuid4().hex[:12]},picked_up,2026-05-01T09:00:00Z,,,,CN,,,,,\n"
            ).encode()
            runs.append(feed_run_create(feed=feed, content=io.BytesIO(body)).pk)
            next_run += 5
        time.sleep(tick)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = {m for m, _ in healthy.arrivals}
        finished = FeedRun.objects.filter(pk__in=runs, finished_at__isnull=False).count()
        if created.keys() <= got and finished == len(runs):
            break
        time.sleep(1)
    arrival: dict[str, float] = {}
    for message, at in healthy.arrivals:
        arrival.setdefault(message, at)
    delays = [arrival[m] - c for m, c in created.items() if m in arrival]
    missing = len(created) - len(delays)
    duplicates = len(healthy.arrivals) - len(arrival)
    ingest = [
        (r.finished_at - r.created_at).total_seconds()
        for r in FeedRun.objects.filter(pk__in=runs, finished_at__isnull=False)
    ]
    if not show:
        healthy.close()
        neighbour.close()
        return
    print(
        f"{name:8} healthy endpoint: {len(delays)} delivered, delay p50 "
        f"{statistics.median(delays):.1f} s, p99 {percentile(delays, 0.99):.1f} s, max "
        f"{max(delays):.1f} s; {missing} missing, {duplicates} duplicated | neighbour saw "
        f"{len(neighbour.arrivals) if len(endpoints) > 1 else 0} requests | ingest runs "
        f"{len(ingest)}/{len(runs)} finished, created->finished p50 "
        f"{statistics.median(ingest) if ingest else float('nan'):.1f} s, max "
        f"{max(ingest) if ingest else float('nan'):.1f} s"
    )
    healthy.close()
    neighbour.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=2, help="rows per second per endpoint")
    parser.add_argument("--scenarios", default="alone,hanging,slow")
    args = parser.parse_args()
    url = f"{BASE_URL}/{DB}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # DEBUG off: Celery refuses the development key (config/security.py).
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-" + "x" * 50),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "LOG_LEVEL": "WARNING",
    }
    with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from shipments.models import Shop
    from warehouses.models import Feed, Warehouse

    Shop.objects.create(name="Bench", slug="bench")
    warehouse = Warehouse.objects.create(
        code="bench", name="Bench", country="CN", timezone="Asia/Shanghai"
    )
    Feed.objects.create(code="bench-feed", name="Bench feed", warehouse=warehouse)
    print(
        f"relay every {settings.CELERY_BEAT_SCHEDULE['relay-webhooks']['schedule']:g} s, "
        f"request timeout {settings.WEBHOOK_TIMEOUT_SECONDS:g} s, breaker after "
        f"{settings.WEBHOOK_BREAKER_FAILURES} failures; {args.rate:g} rows/s per endpoint for "
        f"{args.seconds:g} s per scenario"
    )
    with processes(env):
        # Warm-up: both workers and beat are up once a delivery and a feed run went through.
        run_scenario("warm-up", 15, 1, show=False)
        for name in args.scenarios.split(","):
            run_scenario(name, args.seconds, args.rate)


if __name__ == "__main__":
    main()
