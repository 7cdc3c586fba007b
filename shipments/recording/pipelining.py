"""The ingest worker's pipelining: a batch's COPY end, recompute and COMMIT sent unawaited.

Why: a worker alternates Python work (parsing and preparing a batch) with database work
(inserting its events and their index entries, recomputing statuses, checking foreign keys at
commit). Waiting for each answer runs them one after the other on a 2-core machine. Sending the
end of a batch's transaction without waiting for it lets the database finish the batch while
Python parses the next one: two processes on two cores (a Python thread would fight the parser
for the GIL). The worker waits for the answer only before it next needs the connection.

What it saves (docs/benchmarks.md, `bench/ingest.py`): together with index probes instead of
scans and less Python per record, it took the pipeline from 0.18 to 0.28-0.35 of a raw COPY of
the same rows; letting a batch's COPY data wait in libpq's buffer (`EndUnawaitedWriter`, up to
`COPY_QUEUED` bytes) instead of waiting for the server to take each megabyte was part of the
step from 0.30-0.32 to 0.34-0.39.

How: two pieces, used together by the ingest worker (warehouses.ingest).
- `EndUnawaitedWriter` (used by `EventsRecording.copy_unawaited`): a COPY writer that queues
  the data and the COPY's end in libpq's buffer and returns without taking the answer.
- `PendingCommit`: sends the script that follows the COPY (deferred shipments, lock, recompute,
  COMMIT) once the COPY is done, and takes the answers later (`poll`, `wait`).

Why not psycopg's public pipeline mode (`Connection.pipeline()`): it refuses a COPY, so a
batch's COPY would be awaited and only the script after it and the COMMIT left in flight.
Measured on `bench/ingest.py`'s 200,000 events, runs alternated on a loaded 2-core machine
(docs/benchmarks.md): the public variant took 9% longer on average (median 13%; 5 pairs of
ingests), outside the 5% it had to stay within. So this module keeps the lower-level pieces:
`psycopg.copy.LibpqWriter`'s internals (`_pgconn`, `connection`, and a `finish` that skips
taking the result), `psycopg.generators.send` and `fetch_many`, and `Connection.wait`.
tests/shipments/test_pipelining.py fails, saying what changed, when a psycopg upgrade moves
any of them, or starts taking a COPY in pipeline mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection
from psycopg import errors as psycopg_errors
from psycopg import pq
from psycopg.copy import LibpqWriter
from psycopg.generators import fetch_many
from psycopg.generators import send as send_generator

logger = logging.getLogger(__name__)

# A batch's COPY text is a few megabytes; a batch of huge raw records waits for the server
# past this much.
COPY_QUEUED = 32 * 1024 * 1024


class EndUnawaitedWriter(LibpqWriter):
    """Queues a COPY's data and its end in libpq's buffer; the caller sends them and takes the
    answer later (`PendingCommit`).

    The server inserts rows (and their index entries) more slowly than they are written:
    waiting for it to take each megabyte kept the worker from parsing its next batch for most
    of the COPY. The buffer holds up to `COPY_QUEUED` bytes before a write waits.
    """

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        super().__init__(cursor, flush_threshold=COPY_QUEUED)

    def finish(self, exc: BaseException | None = None) -> None:
        if exc:
            super().finish(exc)
            return
        # put_copy_end answers 0 only when libpq cannot grow its buffer: send some, retry.
        while not self._pgconn.put_copy_end():
            self.connection.wait(send_generator(self._pgconn))


class PendingCommit:
    """The end of the previous batch's transaction, still running on the server.

    A batch's COPY data and end, its shipments, recompute and COMMIT are sent without waiting
    for their answers, so the database inserts, recomputes statuses and checks foreign keys
    while Python parses the next batch (two processes on two cores; a Python thread would fight
    the parser for the GIL). `poll()` sends what the socket takes of the COPY data and moves
    on to the script as soon as the COPY is done.
    Nothing else may use the connection until `wait()`: every path that touches the database
    after a flush waits first.

    `is_record_error` tells whether an error belongs to a record's value (the caller's rule):
    only those go to `on_record_error` instead of being raised.
    """

    def __init__(self, *, is_record_error: Callable[[BaseException], object]) -> None:
        self.copying = False
        self.sql = ""
        self.started = 0.0
        self.is_record_error = is_record_error
        # What to do instead of raising when the batch fails on a record's value.
        self.on_record_error: Callable[[BaseException], None] | None = None

    @property
    def busy(self) -> bool:
        return self.copying or bool(self.sql)

    def send(
        self,
        sql: str,
        *,
        after_copy: bool,
        on_record_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Send `sql` now, or (`after_copy`) once the COPY whose end was sent is done.

        If the batch then fails on a record's value, `on_record_error` is called (the batch
        rolled back, the connection free) instead of raising.
        """
        if not after_copy:
            self._send_script(sql)
        self.sql, self.copying, self.started = sql, after_copy, time.monotonic()
        self.on_record_error = on_record_error

    @staticmethod
    def _send_script(sql: str) -> None:
        conn = connection.connection
        with connection.wrap_database_errors:
            conn.pgconn.send_query(sql.encode())
            conn.wait(send_generator(conn.pgconn))

    def _take(self) -> None:
        """Take the answer in flight; a failure rolls the batch back and is raised."""
        conn = connection.connection
        with connection.wrap_database_errors:
            # The end of a COPY may still sit in libpq's buffer (`poll()` sends it piecemeal).
            conn.wait(send_generator(conn.pgconn))
            results = conn.wait(fetch_many(conn.pgconn))
        failed = [r for r in results if r.status == pq.ExecStatus.FATAL_ERROR]
        if failed:
            self.copying, self.sql = False, ""
            retry, self.on_record_error = self.on_record_error, None
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                connection.rollback()
            connection.set_autocommit(True)
            error = psycopg_errors.error_from_result(failed[0])
            if retry and self.is_record_error(error):
                retry(error)
                return
            with connection.wrap_database_errors:
                raise error
        if self.copying:
            self.copying = False
            self._send_script(self.sql)
            return
        if connection.queries_logged:
            elapsed = f"{time.monotonic() - self.started:.3f}"
            connection.queries_log.append({"sql": self.sql, "time": elapsed})
        self.sql, self.on_record_error = "", None
        connection.set_autocommit(True)

    def poll(self) -> None:
        """Without blocking: send what the socket takes of the COPY's data; once the COPY is
        done, send the script that follows it."""
        if self.copying:
            pgconn = connection.connection.pgconn
            with connection.wrap_database_errors:
                unsent = pgconn.flush()
                pgconn.consume_input()
            if not unsent and not pgconn.is_busy():
                self._take()

    def wait(self) -> None:
        """Block until the batch has committed (or raise why it did not)."""
        while self.busy:
            self._take()

    def abandon(self) -> None:
        """On the way out of a failing run: let the batch commit or fail, raise nothing."""
        try:
            self.wait()
        except Exception:
            logger.exception("the last batch sent failed as well")
