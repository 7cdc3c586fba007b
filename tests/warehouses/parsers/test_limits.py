"""Parser limits and storable text on hostile input: never a crash, only declared errors."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.models import Shipment
from warehouses.normalize import storable
from warehouses.parsers import get_parser
from warehouses.parsers.base import FormatError, ParseOptions, Record, RecordError
from warehouses.parsers.limits import json_depth_over, json_value_end


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ('{"a": [1, {"b": 2}]}', 3, None),
        ('{"a": [1, {"b": 2}]}', 2, 3),
        ('{"a": "[[[[[[[[[[[["}', 2, None),  # brackets inside a string do not nest
        ('{"a": "\\"[[[[", "b": [[[]]]}', 3, 4),  # nor after an escaped quote
        ("[" * 100_000 + "]" * 100_000, 64, 65),
    ],
)
def test_json_depth_is_counted_outside_strings(text: str, limit: int, expected: int | None) -> None:
    assert json_depth_over(text, limit) == expected


def test_the_end_of_a_json_value_is_found_by_its_brackets_or_not_yet() -> None:
    text = 'x [{"a": "]"}, [[]]] tail'
    assert text[json_value_end(text, 2) or 0 :] == " tail"
    assert json_value_end("[[[", 0) is None


def _parse(fmt: str, data: bytes, **options: int) -> list[Record | RecordError]:
    return list(get_parser(fmt)(io.BytesIO(data), ParseOptions(**options)))


def test_a_json_line_nested_past_the_limit_is_rejected_and_the_next_line_read() -> None:
    good = json.dumps({"tracking_number": "TN1", "event_code": "picked_up"})
    items = _parse("json", f"{good}\n{'[' * 70}{']' * 70}\n{good}\n".encode())
    assert [type(item) for item in items] == [Record, RecordError, Record]
    assert isinstance(items[1], RecordError)
    assert (items[1].line, items[1].reason) == (
        2,
        "JSON nested more than 64 levels deep (the limit, INGEST_MAX_JSON_DEPTH)",
    )


def test_a_json_object_with_more_fields_than_the_limit_is_rejected() -> None:
    wide = json.dumps({f"k{i}": i for i in range(11)})
    (item,) = _parse("json", f"{wide}\n".encode(), max_fields=10)
    assert isinstance(item, RecordError)
    assert item.reason == "JSON object has 11 fields, more than the limit of 10 (INGEST_MAX_FIELDS)"


def test_a_csv_header_wider_than_the_limit_is_one_file_level_error() -> None:
    header = ",".join(f"c{i}" for i in range(11)) + "\n"
    with pytest.raises(FormatError, match="header has 11 columns, more than the limit of 10"):
        _parse("hub-csv", header.encode() + b"x\n", max_fields=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["hub-csv", "partner-csv", "manifest-csv", "json"]),
    data=st.one_of(
        st.binary(max_size=2000),
        st.text(alphabet='[]{}",:\\u0d8 \n\x00abc', max_size=2000).map(str.encode),
    ),
)
def test_text_parsers_never_crash_on_hostile_bytes(fmt: str, data: bytes) -> None:
    try:
        items = _parse(fmt, data, max_json_depth=8)
    except FormatError:
        return
    assert all(isinstance(item, Record | RecordError) for item in items)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_made_storable_and_a_record_holding_it_is_either_clean_or_rejected(
    text: str,
) -> None:
    safe = storable.storable_text(text)
    assert "\x00" not in safe
    safe.encode("utf-8")  # no lone surrogate left
    record = Record(line=7, raw="raw", description=text)
    problem = storable.record_problem(record)
    bad = "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert (problem is not None) == bad
    if problem:
        assert (problem.line, problem.field) == (7, "description")


def test_a_nul_in_extra_is_found_at_its_path() -> None:
    record = Record(line=3, raw="r", kind="shipment", extra={"refs": [{"note": "a\x00"}]})
    problem = storable.record_problem(record)
    assert problem is not None
    assert (problem.field, problem.reason) == (
        "extra.refs[0].note",
        "extra.refs[0].note contains a NUL character (0x00) at character 2, which PostgreSQL "
        "cannot store",
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("999999999.999"), None),
        (
            Decimal("999999999.9995"),
            "w 999999999.9995 is out of range (the limit is less than 1,000,000,000)",
        ),
        (Decimal("-1e9"), "w -1E+9 is out of range (the limit is less than 1,000,000,000)"),
        (Decimal("1e400"), "w 1E+400 is out of range (the limit is less than 1,000,000,000)"),
        (Decimal("NaN"), "w NaN is not a finite number"),
    ],
)
def test_numbers_are_checked_against_their_column_precision(
    value: Decimal, problem: str | None
) -> None:
    column = Shipment._meta.get_field("weight_kg")  # numeric(12, 3)
    assert storable.decimal_problem("w", value, column) == problem  # type: ignore[arg-type]
