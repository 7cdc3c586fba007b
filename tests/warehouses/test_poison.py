"""A record's failure costs that record (issue 12): poison input through the whole pipeline.

Every case runs in-process (inside the test's transaction: batches are savepoints) and through
the worker path (outside any transaction: each batch's COPY and COMMIT are sent without
waiting), and must leave exactly the good records stored and the bad one rejected with its
line, field and reason, the run finished.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import IntegrityError, connection

from shipments.models import TrackingEvent, UnitMembership
from tests.conftest import FeedFactory, hub_csv
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun, RejectedRecord

Ingest = Callable[..., FeedRun]

TIME = "2026-05-01T09:00:00+08:00"


def _csv_row(n: int, description: str = "", tracking: str = "") -> str:
    return f"{tracking or f'TN{n:06d}'},picked_up,{TIME},,,,CN,{description},,,,"


def _json_line(n: int, **fields: object) -> str:
    record = {"tracking_number": f"TN{n:06d}", "event_code": "picked_up", "event_time": TIME}
    record.update(fields)
    return json.dumps(record)


def _csv_with(poison: str) -> bytes:
    """Five rows (lines 2-6), the third (line 4) replaced by `poison`."""
    rows = [_csv_row(n) for n in range(5)]
    rows[2] = poison
    return hub_csv(*rows)


def _json_with(poison: str) -> bytes:
    """Five JSON lines (lines 1-5), the third replaced by `poison`."""
    lines = [_json_line(n) for n in range(5)]
    lines[2] = poison
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Case:
    format: str
    payload: bytes
    line: int
    field: str
    reason: str
    raw: str | None = None  # the stored raw text, when the case is about it


DEEP = "[" * 100_000 + "]" * 100_000

CASES = {
    "nul_in_a_description": Case(
        "hub-csv",
        _csv_with(_csv_row(2, description="bad\x00desc")),
        4,
        "description",
        "description contains a NUL character (0x00) at character 4, which PostgreSQL cannot store",
        raw=f"TN000002,picked_up,{TIME},,,,CN,bad\\x00desc,,,,",
    ),
    "nul_in_a_tracking_number": Case(
        "hub-csv",
        _csv_with(_csv_row(2, tracking="TN\x00000002")),
        4,
        "tracking_number",
        "tracking_number contains a NUL character (0x00) at character 3, which PostgreSQL "
        "cannot store",
    ),
    "nul_escape_in_json": Case(
        "json",
        _json_with(_json_line(2, carrier="EMS\\u0000").replace("\\\\", "\\")),
        3,
        "carrier",
        "carrier contains a NUL character (0x00) at character 4, which PostgreSQL cannot store",
    ),
    "lone_surrogate_in_json": Case(
        "json",
        _json_with(_json_line(2, description="x\\ud800y").replace("\\\\", "\\")),
        3,
        "description",
        "description contains a lone surrogate \\ud800 at character 2 (an escape that is not "
        "Unicode text), which PostgreSQL cannot store",
    ),
    "json_line_nested_100000_deep": Case(
        "json",
        _json_with(DEEP),
        3,
        "",
        "JSON nested more than 64 levels deep (the limit, INGEST_MAX_JSON_DEPTH)",
    ),
    "json_array_element_nested_100000_deep": Case(
        "json",
        ("[" + ",\n".join([*(_json_line(n) for n in range(2)), DEEP])).encode()
        + (",\n" + ",\n".join(_json_line(n) for n in range(2, 4)) + "]\n").encode(),
        3,
        "",
        "JSON nested more than 64 levels deep (the limit, INGEST_MAX_JSON_DEPTH)",
    ),
    "unit_kind_longer_than_its_column": Case(
        "json",
        _json_with(
            json.dumps(
                {
                    "unit_id": "CONT0001",
                    "unit_kind": "k" * 25,
                    "event_code": "departed",
                    "event_time": TIME,
                }
            )
        ),
        3,
        "unit_kind",
        "unit_kind is 25 characters, the limit is 20",
    ),
    "weight_beyond_its_numeric_column": Case(
        "json",
        _json_with(_json_line(2, weight_kg="99999999999 kg")),
        3,
        "weight_kg",
        "weight_kg 99999999999.000 is out of range (the limit is less than 1,000,000,000)",
    ),
    "time_beyond_the_calendar_in_utc": Case(
        "json",
        _json_with(_json_line(2, event_time="0001-01-01T00:00:00+08:00")),
        3,
        "event_time",
        "event time 0001-01-01T00:00:00+08:00 is out of range in UTC",
    ),
}


def _check(run: FeedRun, case: Case) -> None:
    assert (run.status, run.records, run.events_created, run.rejected) == ("partial", 5, 4, 1)
    assert TrackingEvent.objects.count() == 4
    reject = RejectedRecord.objects.get(run=run)
    assert (reject.line, reject.field, reject.reason) == (case.line, case.field, case.reason)
    if case.raw is not None:
        assert reject.raw == case.raw


@pytest.mark.django_db
@pytest.mark.parametrize("name", CASES)
def test_a_poison_record_costs_only_itself(ingest: Ingest, name: str) -> None:
    case = CASES[name]
    _check(ingest(FeedFactory(format=case.format), case.payload), CASES[name])


def _worker_run(feed: Feed, payload: bytes) -> FeedRun:
    run = feed_run_create(feed=feed, content=io.BytesIO(payload), enqueue=False)
    return feed_run_execute(run_id=run.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", CASES)
def test_a_poison_record_costs_only_itself_through_the_worker_path(name: str) -> None:
    case = CASES[name]
    _check(_worker_run(FeedFactory(format=case.format), case.payload), case)


# --- random bytes on every format ------------------------------------------------------------

RANDOM = random.Random(12).randbytes(8192)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "fmt", ["hub-csv", "partner-csv", "json", "x12", "edifact", "epcis", "ceb"]
)
def test_random_bytes_end_the_run_with_rejects_and_no_exception(fmt: str) -> None:
    run = _worker_run(FeedFactory(format=fmt), RANDOM)
    assert (run.status, run.events_created) == ("failed", 0)
    assert run.rejected == RejectedRecord.objects.filter(run=run).count() >= 1
    assert all(r.reason for r in RejectedRecord.objects.filter(run=run))
    assert TrackingEvent.objects.count() == 0


# --- the bisection: what the checks before the database do not catch -------------------------


@pytest.fixture
def refuse_poison_descriptions() -> Iterator[None]:
    """A CHECK constraint no pre-check knows of, standing in for any value the database refuses."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE shipments_trackingevent ADD CONSTRAINT hub_test_no_poison"
            " CHECK (description <> 'POISON')"
        )
    yield
    if not connection.in_atomic_block:  # else the test's rollback takes the constraint away
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE shipments_trackingevent DROP CONSTRAINT IF EXISTS hub_test_no_poison"
            )


REFUSED = (
    'the database cannot store this record: new row for relation "shipments_trackingevent"'
    ' violates check constraint "hub_test_no_poison"'
)


def _poisoned_rows() -> bytes:
    """25 rows over three batches of 10; rows 3 and 17 (lines 5 and 19) are refused."""
    return hub_csv(*(_csv_row(n, description="POISON" if n in (3, 17) else "") for n in range(25)))


def _check_bisected(run: FeedRun) -> None:
    assert (run.status, run.records, run.events_created, run.rejected) == ("partial", 25, 23, 2)
    rejects = list(RejectedRecord.objects.filter(run=run).order_by("line"))
    assert [(r.line, r.field, r.reason) for r in rejects] == [(5, "", REFUSED), (19, "", REFUSED)]
    assert rejects[0].raw == _csv_row(3, description="POISON")
    stored = set(TrackingEvent.objects.values_list("shipment__tracking_number", flat=True))
    assert stored == {f"TN{n:06d}" for n in range(25)} - {"TN000003", "TN000017"}
    assert run.records_processed == 25


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_halved_until_only_the_bad_records_are_rejected(
    ingest: Ingest, settings: object, refuse_poison_descriptions: None
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    _check_bisected(ingest(FeedFactory(), _poisoned_rows()))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [10, 20_000])
def test_the_worker_path_isolates_the_refused_records_of_a_batch_sent_without_waiting(
    settings: object, refuse_poison_descriptions: None, batch_size: int
) -> None:
    settings.INGEST_BATCH_SIZE = batch_size  # type: ignore[attr-defined]
    run = _worker_run(FeedFactory(), _poisoned_rows())
    _check_bisected(run)
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_when_every_record_of_a_batch_is_refused_the_fault_is_not_theirs_and_the_batch_fails(
    settings: object,
) -> None:
    settings.INGEST_BATCH_SIZE = 10  # type: ignore[attr-defined]
    feed = FeedFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE shipments_trackingevent ADD CONSTRAINT hub_test_nothing"
            " CHECK (source_line < 0)"
        )
    try:
        with pytest.raises(IntegrityError, match="hub_test_nothing"):
            _worker_run(feed, hub_csv(*(_csv_row(n) for n in range(5))))
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE shipments_trackingevent DROP CONSTRAINT IF EXISTS hub_test_nothing"
            )
    assert TrackingEvent.objects.count() == 0
    assert RejectedRecord.objects.count() == 0


# --- the other record kinds (warehouses.ingest.apply) --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (
            "C1,container,TN\x00000009,2026-05-01T00:00:00+08:00,",
            "tracking_number",
            "tracking_number contains a NUL character (0x00) at character 3, which PostgreSQL "
            "cannot store",
        ),
        (
            "C1,container,TN000009,0001-01-01T00:00:00+08:00,",
            "loaded_at",
            "loaded at 0001-01-01T00:00:00+08:00 is out of range in UTC",
        ),
        (
            "C1,container,TN000009,2026-05-01T00:00:00+08:00,9999-12-31T23:00:00-08:00",
            "unloaded_at",
            "unloaded at 9999-12-31T23:00:00-08:00 is out of range in UTC",
        ),
    ],
    ids=["nul", "loaded_at_before_the_calendar", "unloaded_at_after_it"],
)
def test_a_poison_membership_costs_only_itself(
    ingest: Ingest, row: str, field: str, reason: str
) -> None:
    payload = "unit_id,unit_kind,tracking_number,loaded_at,unloaded_at\n" + "".join(
        f"{r}\n"
        for r in (
            "C1,container,TN000001,2026-05-01T00:00:00+08:00,",
            row,
            "C1,container,TN000002,2026-05-01T00:00:00+08:00,",
        )
    )
    run = ingest(FeedFactory(format="manifest-csv"), payload.encode())
    assert (run.status, run.records, run.rejected) == ("partial", 3, 1)
    assert list(RejectedRecord.objects.values_list("line", "field", "reason")) == [
        (3, field, reason)
    ]
    members = UnitMembership.objects.values_list("shipment__tracking_number", flat=True)
    assert sorted(members) == ["TN000001", "TN000002"]


@pytest.mark.django_db
def test_a_file_name_no_text_column_can_hold_is_stored_escaped(feed: Feed) -> None:
    # os.listdir gives a name with bytes that are not UTF-8 as lone surrogates (surrogateescape).
    run = feed_run_create(
        feed=feed,
        content=io.BytesIO(hub_csv(_csv_row(1))),
        original_name="manifest-\udcff\x00.csv",
        enqueue=False,
    )
    run.refresh_from_db()
    assert run.original_name == "manifest-\\udcff\\x00.csv"
