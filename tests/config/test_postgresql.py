"""The health check of a reused connection: no round trip while healthy, caught when closed."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.test import Client

from shipments.models import Shop


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


def _terminate(pid: int) -> None:
    with _another_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


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
    settings: object,
) -> None:
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60  # type: ignore[attr-defined]
    Shop.objects.create(name="Health", slug="health")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    _terminate(pid)
    assert not connection.is_usable()
    # A request on the dead connection: the check at its start replaces it.
    connection.health_check_done = False
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert Shop.objects.filter(slug="health").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
