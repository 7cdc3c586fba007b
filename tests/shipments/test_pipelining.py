"""What shipments/recording/pipelining.py takes from psycopg beyond its documented API.

The ingest worker ends each batch's COPY and sends its recompute and COMMIT without waiting
(the module's docstring says why, docs/benchmarks.md what it saves). psycopg's public pipeline
mode cannot do that (COPY is refused in it), so the module uses lower-level psycopg pieces. A
psycopg upgrade may change them without notice: these tests name each piece and check, on a
real connection, that the unawaited end still works. When one fails, read its message.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg.generators
import pytest
from django.db import connection
from django.db.utils import ProgrammingError
from psycopg import pq
from psycopg.copy import LibpqWriter

from shipments.recording.pipelining import EndUnawaitedWriter, PendingCommit

WHAT_TO_DO = (
    "psycopg {version} changed {what}, which shipments/recording/pipelining.py relies on (see "
    "its docstring). Adapt the module to the new shape (read psycopg's _copy.py, generators.py "
    "and connection.py of this version), or, if pipeline mode now takes a COPY, measure the "
    "public pipeline mode again with bench/ingest.py (docs/benchmarks.md) before upgrading."
)


def changed(what: str) -> str:
    return WHAT_TO_DO.format(version=psycopg.__version__, what=what)


def parameters(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(function).parameters)


def test_the_copy_writer_psycopg_lets_us_subclass_keeps_its_shape() -> None:
    init = parameters(LibpqWriter.__init__)
    assert list(init)[:2] == ["self", "cursor"], changed("LibpqWriter(cursor, ...)")
    assert "flush_threshold" in init, changed("LibpqWriter's flush_threshold parameter")
    assert init["flush_threshold"].kind is inspect.Parameter.KEYWORD_ONLY, changed(
        "LibpqWriter's flush_threshold (no longer keyword-only)"
    )
    assert list(parameters(LibpqWriter.finish)) == ["self", "exc"], changed(
        "LibpqWriter.finish(exc), which EndUnawaitedWriter overrides"
    )
    assert "writer" in parameters(psycopg.Cursor.copy), changed("Cursor.copy(..., writer=)")


def test_the_low_level_generators_and_the_wait_keep_their_shape() -> None:
    for name in ("send", "fetch_many"):
        generator = getattr(psycopg.generators, name, None)
        assert callable(generator), changed(f"psycopg.generators.{name} (gone)")
        assert list(parameters(generator)) == ["pgconn"], changed(
            f"psycopg.generators.{name}(pgconn)"
        )
    assert list(parameters(psycopg.Connection.wait))[:2] == ["self", "gen"], changed(
        "Connection.wait(gen)"
    )
    assert callable(getattr(psycopg.errors, "error_from_result", None)), changed(
        "psycopg.errors.error_from_result (gone)"
    )


@pytest.mark.django_db
def test_pipeline_mode_still_refuses_a_copy() -> None:
    # The reason the module does not use psycopg's public pipeline mode: a batch's COPY would
    # have to be awaited, which measured 9-13% slower (docs/benchmarks.md). If this fails,
    # the public API may now do what the module does by hand: measure it again.
    connection.ensure_connection()
    conn = connection.connection
    refused = False
    with conn.pipeline(), psycopg.Cursor(conn) as cursor:
        try:
            with cursor.copy("COPY (SELECT 1) TO STDOUT"):
                pass
        except psycopg.NotSupportedError:
            refused = True
    assert refused, (
        f"psycopg {psycopg.__version__} takes a COPY in pipeline mode: the public pipeline "
        "mode may now replace shipments/recording/pipelining.py; measure it with "
        "bench/ingest.py as docs/benchmarks.md describes"
    )


@pytest.fixture
def probe_table() -> Iterator[str]:
    """A plain table the test's COPY fills (not a model's: no foreign keys to satisfy)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE hub_pipelining_probe (n integer NOT NULL)")
    yield "hub_pipelining_probe"
    # A failed test may leave a COPY's answer in flight or a transaction open: start afresh.
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE hub_pipelining_probe")


def committed_rows() -> int:
    """The probe table's rows as another connection sees them (committed ones only)."""
    settings = connection.get_connection_params()
    settings.pop("cursor_factory", None)
    with psycopg.connect(**settings) as other:
        row = other.execute("SELECT count(*) FROM hub_pipelining_probe").fetchone()
    assert row is not None
    return int(row[0])


def copy_unawaited(rows: int, *, width: int = 0) -> None:
    """What `EventsRecording.copy_unawaited` does: a COPY whose end is sent unawaited."""
    connection.set_autocommit(False)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY hub_pipelining_probe (n) FROM STDIN", writer=EndUnawaitedWriter(raw)
        ) as copy:
            pad = "0" * width
            for n in range(rows):
                copy.write(f"{pad}{n}\n")


@pytest.mark.django_db(transaction=True)
def test_a_copy_ends_unawaited_and_its_script_commits_on_wait(probe_table: str) -> None:
    copy_unawaited(1000)
    pgconn = connection.connection.pgconn
    assert pgconn.transaction_status == pq.TransactionStatus.ACTIVE, changed(
        "the COPY's end: it was awaited (or refused) instead of being left in flight"
    )
    pending = PendingCommit(is_record_error=lambda exc: False)
    pending.send(f"INSERT INTO {probe_table} VALUES (-1);\nCOMMIT;", after_copy=True)
    assert pending.busy
    pending.wait()
    assert not pending.busy
    assert committed_rows() == 1001
    assert connection.get_autocommit()
    assert pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_poll_sends_a_copy_bigger_than_the_socket_takes_then_its_script(
    probe_table: str,
) -> None:
    # About 8 MB: more than the socket buffers take at once, so the end waits in libpq's
    # buffer and `poll()` sends it piecemeal without blocking.
    copy_unawaited(400_000, width=20)
    pending = PendingCommit(is_record_error=lambda exc: False)
    pending.send("COMMIT;", after_copy=True)
    deadline = time.monotonic() + 60
    while pending.copying and time.monotonic() < deadline:
        pending.poll()
        time.sleep(0.001)
    assert not pending.copying, changed("the COPY's end: poll() never saw the COPY finish")
    pending.wait()
    assert committed_rows() == 400_000


@pytest.mark.django_db(transaction=True)
def test_a_record_error_after_the_copy_rolls_the_batch_back_and_goes_to_the_callback(
    probe_table: str,
) -> None:
    copy_unawaited(10)
    seen: list[BaseException] = []
    pending = PendingCommit(is_record_error=lambda exc: isinstance(exc, psycopg.DataError))
    pending.send("SELECT 1 / 0;\nCOMMIT;", after_copy=True, on_record_error=seen.append)
    pending.wait()
    assert [type(exc) for exc in seen] == [psycopg.errors.DivisionByZero]
    assert committed_rows() == 0
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_any_other_error_after_the_copy_rolls_the_batch_back_and_is_raised(
    probe_table: str,
) -> None:
    copy_unawaited(10)
    pending = PendingCommit(is_record_error=lambda exc: False)
    pending.send("SELECT 1 FROM hub_no_such_table;\nCOMMIT;", after_copy=True)
    with pytest.raises(ProgrammingError, match="hub_no_such_table"):
        pending.wait()
    assert committed_rows() == 0
    assert connection.get_autocommit()
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
