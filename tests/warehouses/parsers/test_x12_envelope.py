"""ANSI X12 parser: envelope failures, and mutated payloads."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.statuses import EVENT_CODES
from tests.warehouses.parsers.x12_interchanges import (
    FIXTURES,
    STATUS_214,
    errors,
    group,
    interchange,
    isa,
    records,
    run,
    status_interchange,
    tx,
)
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.x12 import interchange_ids, parse

# ---------------------------------------------------------------------------------------------
# Envelope failures


def test_a_file_that_ends_before_iea_keeps_its_records_then_raises() -> None:
    data = interchange(*group(tx("214", "0001", *STATUS_214)))
    generator = parse(io.BytesIO(data), ParseOptions())
    first = next(generator)
    assert isinstance(first, Record)
    with pytest.raises(FormatError) as caught:
        next(generator)
    assert (caught.value.line, caught.value.field) == (8, "IEA")
    assert caught.value.reason == (
        "payload ends inside interchange 000000001: no IEA trailer (truncated file?)"
    )


def test_a_set_cut_short_by_the_next_st_is_rejected_and_the_next_set_kept() -> None:
    broken = tx("214", "0001", *STATUS_214)[:-1]  # no SE
    data = interchange(*group(broken, tx("214", "0002", *STATUS_214)), "IEA*1*000000001")
    items = run(data)
    assert [r.extra["set_control"] for r in records(items)] == ["0002"]
    assert errors(items) == [
        (
            3,
            "SE",
            "transaction set 0001 (ST at segment 3) has no SE trailer before ST at segment 7; "
            "set rejected",
        )
    ]


def test_se02_that_differs_from_st02_rejects_the_set() -> None:
    segments = tx("214", "0001", *STATUS_214)
    segments[-1] = "SE*5*0009"
    items = run(interchange(*group(segments), "IEA*1*000000001"))
    assert records(items) == []
    assert errors(items) == [(7, "SE02", "SE02 '0009' does not match ST02 '0001'; set rejected")]


def test_wrong_iea_and_ge_control_numbers_are_reported_but_sets_kept() -> None:
    segments = group(tx("214", "0001", *STATUS_214))
    segments[-1] = "GE*1*7"
    items = run(interchange(*segments, "IEA*2*000000999"))
    assert len(records(items)) == 1
    assert errors(items) == [
        (8, "GE02", "GE02 '7' does not match GS06 '1'"),
        (9, "IEA01", "IEA01 says 2 functional groups but interchange 000000001 holds 1"),
        (9, "IEA02", "IEA02 '000000999' does not match ISA13 '000000001'"),
    ]


def test_a_missing_iea_before_the_next_interchange_is_reported_and_parsing_goes_on() -> None:
    first = interchange(*group(tx("214", "0001", *STATUS_214)))
    second = status_interchange(*STATUS_214, control="000000002")
    items = run(first + second)
    assert len(records(items)) == 2
    assert errors(items) == [
        (1, "IEA", "interchange 000000001 has no IEA trailer before the ISA at segment 9")
    ]


def test_the_same_control_number_from_another_sender_is_not_a_duplicate() -> None:
    first = status_interchange(*STATUS_214)
    other = interchange(*group(tx("214", "0001", *STATUS_214)), "IEA*1*000000001", sender="OTHER")
    items = run(first + other)
    assert len(records(items)) == 2
    assert errors(items) == []


def test_st_outside_a_functional_group_is_rejected() -> None:
    items = run(interchange(*tx("214", "0001", *STATUS_214), "IEA*0*000000001"))
    assert records(items) == []
    assert errors(items) == [
        (
            2,
            "GS",
            "ST transaction set header outside a functional group (no GS); "
            "segments up to the next SE skipped",
        )
    ]


@pytest.mark.parametrize(
    ("header", "field", "reason"),
    [
        (
            isa().replace("SENDER         ", "SENDER        ") + "GS*QM~",
            "ISA06",
            "ISA is not fixed width: expected the element separator '*' after ISA06 at "
            "position 51, found 'Z'",
        ),
        (
            isa()[:-2] + "A~",
            "ISA16",
            "ISA16 component separator 'A' is not a valid separator",
        ),
        (
            isa()[:-1] + "Q",
            "ISA16",
            "segment terminator 'Q' after ISA16 is not a valid separator",
        ),
        (
            isa().replace("000000001", "00000000X"),
            "ISA13",
            "ISA13 interchange control number '00000000X' is not 9 digits",
        ),
        (isa()[:60], "ISA", "ISA header is truncated: 60 characters, expected 106"),
    ],
)
def test_a_corrupt_isa_raises_a_precise_format_error(header: str, field: str, reason: str) -> None:
    with pytest.raises(FormatError) as caught:
        run(header.encode())
    assert (caught.value.line, caught.value.field, caught.value.reason) == (1, field, reason)


def test_an_empty_payload_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="empty payload"):
        run(b"\xef\xbb\xbf\r\n")


def test_trailing_garbage_after_the_last_interchange_is_a_format_error() -> None:
    items: list[ParseItem] = []
    with pytest.raises(FormatError) as caught:
        items.extend(
            parse(io.BytesIO(status_interchange(*STATUS_214) + b"garbage"), ParseOptions())
        )
    assert len(records(items)) == 1
    assert (caught.value.line, caught.value.reason) == (
        10,
        "expected an ISA interchange header, found 'garbage'",
    )


# ---------------------------------------------------------------------------------------------
# Robustness


SAMPLE_BYTES = [
    (FIXTURES / name).read_bytes()
    for name in (
        "Status214.txt",
        "Advice945PlaceholderDate.txt",
        "Notice856.txt",
        "CorruptSt.txt",
        "DuplicateInterchange.txt",
        "MultiGroup.txt",
    )
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLE_BYTES)))
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        if not data:
            break
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        action = draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = draw(st.sampled_from(list(b"*~|^\n\r>0123456789AZ \xff")))
        if action == "replace":
            data[position] = byte
        elif action == "delete":
            del data[position]
        else:
            data.insert(position, byte)
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


@settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_payloads_only_yield_records_errors_or_a_format_error(data: bytes) -> None:
    items: list[ParseItem] = []
    # A FormatError may end the parse; everything yielded before it must still be well formed.
    with contextlib.suppress(FormatError):
        items.extend(parse(io.BytesIO(data), ParseOptions()))
    for item in items:
        assert isinstance(item, Record | RecordError)
        assert item.line >= 1
        assert len(item.raw) <= 2000
        if isinstance(item, RecordError):
            assert item.reason
        elif item.event_code:
            assert item.event_code in EVENT_CODES
        else:
            # No suggestion: the partner's code and why, for the normalizer (docs/mapping.md).
            assert item.partner_code and item.code_note
    with contextlib.suppress(FormatError):
        interchange_ids(io.BytesIO(data))
