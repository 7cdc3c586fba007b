"""The hub behind a real PgBouncer in transaction pooling mode (DATABASE_POOLER=pgbouncer).

PgBouncer (Debian's package) is started on a free port with one server connection per
database: every client then shares one server session between its transactions, the harshest
case of transaction pooling (session state left by one client is seen by the next, a prepared
statement of one clashes with another's). Django's connection is pointed at it with the
settings DATABASE_POOLER gives (config.env.database_behind_pooler).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.urls import reverse

from config.env import database_behind_pooler
from shipments.models import Shipment, TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from tests.deploy.servers import free_port, wait_listening
from tests.shipments.conftest import ShopClient, _shop_client
from warehouses.ingest.runs import FeedBusy, feed_run_create, feed_run_execute
from warehouses.models import FeedRun

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
)

pytestmark = [
    pytest.mark.skipif(
        PGBOUNCER is None,
        reason="the pgbouncer binary is missing (apt-get install pgbouncer; .ci/run does)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def pgbouncer_port(django_db_blocker: Any) -> Iterator[int]:
    with django_db_blocker.unblock():
        target = connection.settings_dict
    host, port = target["HOST"] or "127.0.0.1", target["PORT"] or "5432"
    folder = Path(tempfile.mkdtemp(prefix="hub-pgbouncer-"))
    folder.chmod(0o755)  # read by the unprivileged user it drops to when started as root
    listen = free_port()
    (folder / "users.txt").write_text(f'"{target["USER"] or "postgres"}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={host} port={port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
"""
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [str(PGBOUNCER), str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_listening(listen, process, "pgbouncer")
        yield listen
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pooled(pgbouncer_port: int, settings: Any, transactional_db: None) -> Iterator[None]:
    """Every connection (this thread's and new threads') goes through PgBouncer, set up as
    DATABASE_POOLER=pgbouncer sets it up; a URL asking for psycopg's automatic preparation
    after one use (`?prepare_threshold=1`) is overruled."""
    direct = dict(connection.settings_dict)
    connections.close_all()
    options = {**direct["OPTIONS"], "prepare_threshold": 1}
    behind = database_behind_pooler(
        {**direct, "HOST": "127.0.0.1", "PORT": str(pgbouncer_port), "OPTIONS": options}
    )
    # In place: threads' connections are built from this same dictionary.
    connection.settings_dict.update(behind)
    settings.DATABASE_POOLER = "pgbouncer"
    settings.INGEST_BATCH_SIZE = 100
    settings.API_RATE_PER_KEY = "100000/min"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT inet_server_port()")
            assert cursor.fetchone()[0] == int(direct["PORT"] or 5432)
        yield
    finally:
        connections.close_all()
        connection.settings_dict.clear()
        connection.settings_dict.update(direct)


def _file(parcels: int, prefix: str = "PB") -> bytes:
    """Each parcel: received, departed, and delivered for every third; rows interleaved."""
    rows = []
    for step, (code, when) in enumerate(
        [
            ("warehouse_received", "2026-05-01T09:00:00+08:00"),
            ("departed", "2026-05-02T10:00:00+08:00"),
            ("delivered", "2026-05-05T15:00:00+03:00"),
        ]
    ):
        for i in range(parcels):
            if step < 2 or i % 3 == 0:
                rows.append(f"{prefix}{i:05d},{code},{when},,Heihe,CNHEK,CN,,ORD{i},,,")
    return hub_csv(*rows)


def _run(feed: Any, payload: bytes, **kwargs: Any) -> FeedRun:
    return feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False, **kwargs)


def test_an_ingest_and_the_api_behind_pgbouncer(pooled: None) -> None:
    feed = FeedFactory()
    # 150 parcels: 150 + 150 + 50 rows, four batches of 100 (the pipelined worker path).
    run = feed_run_execute(run_id=_run(feed, _file(150)).pk)
    assert (run.status, run.records, run.events_created, run.rejected) == (
        "succeeded",
        350,
        350,
        0,
    )
    assert TrackingEvent.objects.count() == 350
    statuses = dict(Shipment.objects.values_list("tracking_number", "status"))
    assert len(statuses) == 150
    assert {statuses[f"PB{i:05d}"] for i in range(0, 150, 3)} == {"delivered"}
    assert "delivered" not in {statuses[f"PB{i:05d}"] for i in range(1, 150, 3)}
    # The same file again: every event is a duplicate.
    again = feed_run_execute(run_id=_run(feed, _file(150), reprocess=True).pk)
    assert (again.events_created, again.duplicates) == (0, 350)

    shop: ShopClient = _shop_client("Pooled shop")
    Shipment.objects.filter(tracking_number__lt="PB00030").update(shop=shop.shop)
    # The API's key and detail reads prepare their statements on a direct connection; here
    # they must not, from two client connections sharing one server session, many times over.
    errors: list[BaseException] = []

    def read_details() -> None:
        try:
            other = _shop_client("Other pooled shop")
            for _ in range(10):
                assert (
                    other.client.get(reverse("api-shipment", args=["PB00000"])).status_code == 404
                )
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=read_details)
    thread.start()
    thread.join()
    assert errors == []
    for _ in range(10):
        body = shop.client.get(reverse("api-shipment", args=["pb00001"])).json()
        assert body["status"] != "delivered"
        assert [e["code"] for e in body["timeline"]] == ["warehouse_received", "departed"]
        assert shop.client.get(reverse("api-shipment", args=["PB00000"])).json()["status"] == (
            "delivered"
        )
    listed = shop.client.get(reverse("api-shipments"), {"page_size": 100}).json()["results"]
    assert sorted(s["tracking_number"] for s in listed) == [f"PB{i:05d}" for i in range(30)]
    # Server-side cursors are off: .iterator() reads in one statement.
    assert sum(1 for _ in Shipment.objects.order_by("id").iterator(chunk_size=10)) == 150


def test_a_second_run_of_a_busy_feed_waits_behind_pgbouncer(pooled: None) -> None:
    feed = FeedFactory()
    first = _run(feed, _file(150))
    second = _run(feed, _file(20, prefix="PC"))
    holding = threading.Event()
    release = threading.Event()
    results: list[object] = []

    def hold(run: FeedRun) -> None:
        # Between two batches of the first run: its connection idle, its server session
        # (the only one) free for the other client.
        holding.set()
        release.wait(20)

    def first_worker() -> None:
        try:
            results.append(feed_run_execute(run_id=first.pk, progress=hold).status)
        except BaseException as exc:
            results.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert holding.wait(20)
        with pytest.raises(FeedBusy):
            feed_run_execute(run_id=second.pk)
    finally:
        release.set()
        thread.join()
    assert results == ["succeeded"]
    assert feed_run_execute(run_id=second.pk).status == "succeeded"
    assert TrackingEvent.objects.count() == 350 + 47  # 20 + 20 + 7 delivered
