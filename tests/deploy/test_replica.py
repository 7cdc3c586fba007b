"""Reads from a real PostgreSQL streaming replica (DATABASE_REPLICA_URL), with read-your-writes.

The test starts a small primary of its own (initdb on a free port) and a streaming replica of
it (pg_basebackup -R, another port) with the machine's PostgreSQL binaries: independent of the
main server's size, pg_hba and settings, and a second or two to start. The primary gets a copy
of the test database (pg_dump), then the replica is cloned from it; the test's connections
point at the pair as DATABASE_URL and DATABASE_REPLICA_URL would.

Pausing the replica's replay (pg_wal_replay_pause) makes its lag deterministic: a row written
meanwhile is on the primary only, so an answer that lacks it came from the replica, and an
answer that has it came from the primary.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from psycopg import sql

from config.env import database_replica
from config.replica import (
    REPLICA,
    read_alias,
    reads_from_primary,
    reads_from_replica,
    replica_status,
)
from shipments.models import Shipment
from tests.conftest import FeedFactory, ShipmentFactory
from tests.deploy.servers import free_port
from tests.shipments.conftest import ShopClient, _shop_client

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "pg_dump", "psql")


def _bindir() -> Path | None:
    """The PostgreSQL binaries: pg_config's, else Debian's newest /usr/lib/postgresql/N/bin."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name.split(".")[0]))[::-1]
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).exists() for tool in TOOLS):
            return Path(candidate)
    return None


BIN = _bindir()
# PostgreSQL refuses to run as root: the servers run as the `postgres` user then.
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _skip_reason() -> str | None:
    if BIN is None:
        return f"PostgreSQL's server binaries ({', '.join(TOOLS)}) are missing"
    if AS_POSTGRES:
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to start PostgreSQL as"
    return None


pytestmark = [
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
    # "replica" is a test mirror of "default" (no test database of its own, never flushed).
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
]


def _run(command: list[str], *, as_server: bool = False, **kwargs: Any) -> bytes:
    full = (AS_POSTGRES if as_server else []) + command
    done = subprocess.run(full, capture_output=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def _tool(name: str) -> str:
    assert BIN is not None
    return str(BIN / name)


@dataclass
class Server:
    data: Path
    port: int

    def start(self) -> None:
        flags = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
            f"'{self.data.parent}' -c fsync=off -c shared_buffers=16MB -c max_connections=40"
            " -c hot_standby_feedback=on"
        )
        log = self.data.parent / f"{self.data.name}.log"
        command = [_tool("pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "30"]
        _run([*command, "-o", flags, "start"], as_server=True)

    def stop(self) -> None:
        command = [_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        subprocess.run(AS_POSTGRES + command, capture_output=True)

    def running(self) -> bool:
        status = [_tool("pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(AS_POSTGRES + status, capture_output=True).returncode == 0

    def connect(self, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )


@dataclass
class Pair:
    primary: Server
    replica: Server
    name: str  # the test database's

    def caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written so far."""
        with self.primary.connect(self.name) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 15
        with self.replica.connect(self.name) as replica:
            while time.monotonic() < deadline:
                row = replica.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
                ).fetchone()
                if row and row[0]:
                    return
                time.sleep(0.02)
        raise AssertionError(f"the replica did not replay up to {target}")

    def pause(self) -> None:
        self.caught_up()
        with self.replica.connect(self.name) as replica:
            replica.execute("SELECT pg_wal_replay_pause()")
            while replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() != (
                "paused",
            ):
                time.sleep(0.01)

    def resume(self) -> None:
        with self.replica.connect(self.name) as replica:
            replica.execute("SELECT pg_wal_replay_resume()")
        self.caught_up()


@pytest.fixture(scope="module")
def pair(django_db_setup: None, django_db_blocker: Any) -> Iterator[Pair]:
    with django_db_blocker.unblock():
        main = dict(connection.settings_dict)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()"
            )
            collate, ctype = cursor.fetchone()
    folder = Path(tempfile.mkdtemp(prefix="hub-replica-"))
    if AS_POSTGRES:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    primary = Server(folder / "primary", free_port())
    replica = Server(folder / "replica", free_port())
    name = str(main["NAME"])
    try:
        initdb = [_tool("initdb"), "-D", str(primary.data), "-A", "trust", "-U", "postgres"]
        _run([*initdb, "-E", "UTF8", "--locale", collate, "--no-sync"], as_server=True)
        primary.start()
        with primary.connect("postgres") as pg:
            pg.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 LC_COLLATE {} LC_CTYPE {}").format(
                    sql.Identifier(name),
                    sql.Literal(collate),
                    sql.Literal(ctype),
                )
            )
        source = ["-h", str(main["HOST"] or "127.0.0.1"), "-p", str(main["PORT"] or 5432)]
        source += ["-U", str(main["USER"] or "postgres")]
        env = {**os.environ, "PGPASSWORD": str(main["PASSWORD"] or "")}
        dump = _run([_tool("pg_dump"), "--no-owner", "--no-privileges", *source, name], env=env)
        target = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-d", name]
        _run([_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", *target], input=dump)
        clone = [_tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port)]
        clone += [
            "-U",
            "postgres",
            "-D",
            str(replica.data),
            "-R",
            "-X",
            "stream",
            "--no-sync",
            "--checkpoint=fast",
        ]
        _run(clone, as_server=True)
        replica.start()
        # Registered before the tests' set-up, which checks the databases they may use; its
        # address is set by `replicated`.
        connections.settings[REPLICA] = database_replica(main, f"postgres://{name}")
        yield Pair(primary, replica, name)
    finally:
        connections.settings.pop(REPLICA, None)
        with contextlib.suppress(AttributeError):
            del connections[REPLICA]
        replica.stop()
        primary.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def replicated(pair: Pair, transactional_db: None, settings: Any) -> Iterator[Pair]:
    """The test's connections on the pair: "default" on its primary, "replica" on its replica
    (set up as DATABASE_REPLICA_URL sets it up), the router installed."""
    if not pair.replica.running():
        pair.replica.start()
    direct = dict(connection.settings_dict)
    connections.close_all()
    # In place, as tests/deploy/test_pgbouncer.py does: other code holds this dictionary.
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(pair.primary.port))
    url = f"postgres://postgres@127.0.0.1:{pair.replica.port}/{pair.name}"
    # In place too: the test case's set-up wrapped this connection's methods.
    connections[REPLICA].settings_dict.update(database_replica(dict(connection.settings_dict), url))
    settings.DATABASE_ROUTERS = ["config.replica.PrimaryReplicaRouter"]
    # A paused replica's lag grows with the test's time: far below this bound, so which
    # server answers depends on the positions alone (one test lowers it).
    settings.DATABASE_REPLICA_MAX_LAG = 60.0
    settings.DATABASE_REPLICA_CHECK_SECONDS = 0.0
    settings.DATABASE_REPLICA_RETRY_SECONDS = 0.0
    settings.API_RATE_PER_KEY = "100000/min"
    settings.TRACK_RATE_PER_MINUTE = 100000
    replica_status.forget()
    try:
        pair.caught_up()
        yield pair
    finally:
        if pair.replica.running():
            pair.resume()
        call_command("flush", database="default", interactive=False, inhibit_post_migrate=True)
        connections.close_all()
        connection.settings_dict.clear()
        connection.settings_dict.update(direct)
        replica_status.forget()


def _numbers(shop: ShopClient, **params: Any) -> list[str]:
    response = shop.client.get(reverse("api-shipments"), params)
    assert response.status_code == 200, response.content
    return sorted(s["tracking_number"] for s in response.json()["results"])


def _exported(shop: ShopClient) -> list[str]:
    response = shop.client.get(reverse("api-shipments-export"), {"format": "csv"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[1:]
    return sorted(line.split(",")[0] for line in lines)


def _detail(shop: ShopClient, number: str) -> int:
    return int(shop.client.get(reverse("api-shipment", args=[number])).status_code)


def test_a_shop_reads_its_own_writes_while_other_reads_go_to_the_replica(
    replicated: Pair,
) -> None:
    writer = _shop_client("Writer shop")
    reader = _shop_client("Reader shop")
    ShipmentFactory(shop=reader.shop, tracking_number="RPOLD00001")
    replicated.pause()
    # Written while replay is paused (as an ingest would): on the primary only.
    ShipmentFactory(shop=reader.shop, tracking_number="RPNEW00001")

    # The reader has written nothing: the replica answers, without the new row.
    assert _detail(reader, "RPNEW00001") == 404
    assert _numbers(reader) == ["RPOLD00001"]
    # The export too, though its rows are read while the response streams.
    assert _exported(reader) == ["RPOLD00001"]
    # A refused request is no write: the reader stays on the replica.
    refused = reader.client.post(reverse("api-shipments"), {"tracking_number": "!"}, format="json")
    assert refused.status_code == 400
    assert _numbers(reader) == ["RPOLD00001"]

    # The writer registers (claims) a number, then reads it back at once: from the primary,
    # since the replica has not replayed the write.
    created = writer.client.post(
        reverse("api-shipments"), {"tracking_number": "RPW0000001"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert _detail(writer, "RPW0000001") == 200
    assert _numbers(writer) == ["RPW0000001"]
    # Tenant isolation holds on either server: the writer (on the primary, where the
    # reader's new shipment exists) and the reader (on the replica) see only their own.
    assert _detail(writer, "RPNEW00001") == 404
    assert _detail(writer, "RPOLD00001") == 404
    assert _detail(reader, "RPW0000001") == 404
    # Still paused: the reader still gets the replica's answer.
    assert _numbers(reader) == ["RPOLD00001"]

    replicated.resume()
    assert _detail(reader, "RPNEW00001") == 200
    assert _numbers(reader) == ["RPNEW00001", "RPOLD00001"]
    assert _exported(reader) == ["RPNEW00001", "RPOLD00001"]
    assert _detail(reader, "RPW0000001") == 404
    assert _numbers(writer) == ["RPW0000001"]


def test_the_buyers_page_and_the_dashboard_read_the_replica_and_an_operator_their_change(
    replicated: Pair,
) -> None:
    feed = FeedFactory(warehouse__code="wh-before")
    warehouse = feed.warehouse
    editor = User.objects.create_superuser("editor", "editor@example.com", "x")
    watcher = User.objects.create_superuser("watcher", "watcher@example.com", "x")
    editing, watching = Client(), Client()
    editing.force_login(editor)
    watching.force_login(watcher)
    replicated.pause()
    ShipmentFactory(tracking_number="RPBUYER001")
    buyer = Client()
    assert buyer.get(reverse("track-detail", args=["RPBUYER001"])).status_code == 404

    # An operator renames the warehouse in the admin while replay is paused.
    changed = editing.post(
        reverse("admin:warehouses_warehouse_change", args=[warehouse.pk]),
        {
            "code": "wh-after",
            "name": warehouse.name,
            "kind": warehouse.kind,
            "country": warehouse.country,
            "city": warehouse.city,
            "unlocode": warehouse.unlocode,
            "timezone": warehouse.timezone,
            "created_at_0": f"{datetime.now():%Y-%m-%d}",
            "created_at_1": "00:00:00",
            "_save": "Save",
        },
    )
    assert changed.status_code == 302, changed.content
    dashboard = reverse("operations:dashboard")
    # Their own dashboard shows it (the primary); another operator's is the replica's.
    mine = editing.get(dashboard).content.decode()
    theirs = watching.get(dashboard).content.decode()
    assert f">{feed.code}</a>" in mine and f">{feed.code}</a>" in theirs
    assert "<td>wh-after</td>" in mine and "<td>wh-before</td>" not in mine
    assert "<td>wh-before</td>" in theirs and "<td>wh-after</td>" not in theirs

    replicated.resume()
    assert "<td>wh-after</td>" in watching.get(dashboard).content.decode()
    assert buyer.get(reverse("track-detail", args=["RPBUYER001"])).status_code == 200


def test_a_lagging_or_stopped_replica_is_not_read(replicated: Pair, settings: Any) -> None:
    reader = _shop_client("Reader shop")
    ShipmentFactory(shop=reader.shop, tracking_number="RPOLD00001")
    replicated.pause()
    ShipmentFactory(shop=reader.shop, tracking_number="RPNEW00001")
    assert _numbers(reader) == ["RPOLD00001"]  # the replica
    # Behind by more than the bound: the primary answers.
    settings.DATABASE_REPLICA_MAX_LAG = 0.0
    assert _numbers(reader) == ["RPNEW00001", "RPOLD00001"]

    # A walk whose first page came from the primary goes on there: on the replica, the row
    # it has not replayed would be skipped for good (shipments/api/paging.py).
    first = reader.client.get(reverse("api-shipments"), {"page_size": 1}).json()
    settings.DATABASE_REPLICA_MAX_LAG = 60.0
    assert _numbers(reader) == ["RPOLD00001"]  # the replica again, for a new walk
    second = reader.client.get(
        reverse("api-shipments"), {"page_size": 1, "cursor": first["next_cursor"]}
    ).json()
    walked = [s["tracking_number"] for s in first["results"] + second["results"]]
    assert sorted(walked) == ["RPNEW00001", "RPOLD00001"]

    # Stopped: the primary answers, the request does not fail.
    replicated.replica.stop()
    assert _numbers(reader) == ["RPNEW00001", "RPOLD00001"]
    assert _detail(reader, "RPNEW00001") == 200
    assert Client().get(reverse("track-detail", args=["RPNEW00001"])).status_code == 200
    assert Shipment.objects.count() == 2


def test_only_opted_in_reads_outside_a_transaction_go_to_the_replica(replicated: Pair) -> None:
    replicated.pause()
    ShipmentFactory(tracking_number="RPNEW00001")
    new = Shipment.objects.filter(tracking_number="RPNEW00001")
    assert new.exists()  # not opted in: the primary
    with reads_from_replica(RequestFactory().get("/")) as alias:
        assert alias == REPLICA
        assert not new.exists()
        with connections[read_alias()].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone() == (True,)
        with reads_from_primary():
            assert new.exists()
        # A transaction reads (and writes) on the primary only: what it wrote is there.
        with transaction.atomic():
            assert new.exists()
            assert read_alias() == "default"
            ShipmentFactory(tracking_number="RPNEW00002")
            assert Shipment.objects.filter(tracking_number="RPNEW00002").exists()
        assert not new.exists()
