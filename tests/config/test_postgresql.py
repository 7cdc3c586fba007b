"""The health check of a reused connection: no round trip while healthy, caught when closed."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.test import Client

from config.postgresql.base import socket_readable
from shipments.models import Shop


@pytest.fixture(autouse=True)
def _no_broken_connection_leaks() -> Iterator[None]:
    """These tests kill Django's server connection on purpose: whatever happens in them, the
    next test starts from a new connection instead of a dead one."""
    yield
    connection.close()


def _another_connection() -> psycopg.Connection[tuple[object, ...]]:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    )


def _last_query_of(pid: int) -> str:
    with _another_connection() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0])


def _terminate_and_wait(pid: int, timeout: float = 10.0) -> None:
    """pg_terminate_backend only signals the backend: it returns before the backend has said
    goodbye. Wait until the backend has left pg_stat_activity (it sends its FATAL message to the
    client before it leaves), then until that message has reached this process's socket."""
    deadline = time.monotonic() + timeout
    with _another_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still alive after {timeout} s"
            time.sleep(0.01)
    assert connection.connection is not None
    sock = connection.connection.pgconn.socket
    assert socket_readable(sock, max(0.0, deadline - time.monotonic())), "no goodbye on the socket"


@pytest.mark.django_db(transaction=True)
def test_a_healthy_idle_connection_is_reused_without_asking_the_server() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), 'marker-4711'")
        (pid, _) = cursor.fetchone()
    assert connection.is_usable()
    # The server's view of this connection: its last statement is still ours, no SELECT 1.
    assert "marker-4711" in _last_query_of(pid)


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_fails_the_check_and_the_next_request_reconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    Shop.objects.create(name="Health", slug="health")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    _terminate_and_wait(pid)
    assert not connection.is_usable()
    # A request on the dead connection: the check at its start replaces it.
    connection.health_check_done = False
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert Shop.objects.filter(slug="health").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_the_readability_check_works_for_descriptors_above_1023() -> None:
    # select() refuses such descriptors with ValueError; a busy process has them.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= 1500:
        pytest.skip("the open-files limit is too low to make a descriptor above 1023")
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 1500)
    try:
        assert not socket_readable(high)
        theirs.close()  # the peer going away is what a terminated backend looks like
        assert socket_readable(high, 1.0)
    finally:
        os.close(high)
        ours.close()
