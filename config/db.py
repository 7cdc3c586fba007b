"""Database helpers shared by the apps' hottest reads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper


class _PreparingCursor(psycopg.Cursor[Any]):
    """Binds on the server and prepares every statement it runs (Django turns psycopg's
    automatic preparation off)."""

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        return super().execute(
            query, params, prepare=True if prepare is None else prepare, binary=binary
        )


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[CursorWrapper]:
    """A Django cursor that binds parameters on the server and prepares its statements, so
    PostgreSQL plans each of them once per connection instead of on every request.

    For fixed raw SQL on hot paths (the API's key and detail reads): planning their joins costs
    more than running them. The rest of the app keeps Django's client-side binding, which
    accepts any SQL. Queries still go through Django's wrapper, so query-count tests see them.
    psycopg keeps at most 100 prepared statements per connection (LRU). Behind a pooler in
    transaction mode (DATABASE_POOLER, docs/scaling.md) each statement may reach another
    server session, where a prepared statement does not exist: there it is a plain cursor.
    `using`: the database alias (a read may go to the replica: `config.replica.read_alias()`).
    """
    connection = connections[using]
    if settings.DATABASE_POOLER:
        with connection.cursor() as plain:
            yield plain
        return
    # What connection.cursor() does, with a different psycopg cursor class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    pg = connection.connection
    if pg.prepare_threshold is None:
        # psycopg prepares nothing, even on request, while the threshold is None (Django's
        # default). A threshold no query reaches keeps automatic preparation off elsewhere.
        pg.prepare_threshold = sys.maxsize
    with connection.wrap_database_errors:
        raw = _PreparingCursor(pg)
        cursor = connection._prepare_cursor(raw)  # type: ignore[attr-defined]
    try:
        yield cursor
    finally:
        cursor.close()


@contextmanager
def session_lock(namespace: int, key: int) -> Iterator[bool]:
    """Try a session-level advisory lock on (namespace, key); yields whether it was granted.

    Session-level, so PostgreSQL itself lets it go if the worker holding it dies. Behind a pooler
    in transaction mode (DATABASE_POOLER) a session lock would be taken on one server session and
    asked for again on another (or on the same one by another worker, which then gets it too), so
    there it yields True and the caller's own guard must do (docs/scaling.md)."""
    if settings.DATABASE_POOLER:
        yield True
        return
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        (locked,) = cursor.fetchone()
    try:
        yield bool(locked)
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
