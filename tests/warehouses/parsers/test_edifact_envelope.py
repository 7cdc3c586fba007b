"""UN/EDIFACT IFTSTA parser: envelope failures (UNB, UNH/UNT, UNG/UNE, UNZ), and fuzzing."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.warehouses.parsers.edifact_interchanges import (
    EDIFACT,
    UNA_D21A,
    edi,
    errors,
    records,
    run,
    several,
)
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.edifact import parse


def test_a_bad_unt_count_is_a_precise_rejection() -> None:
    got = [(e.line, e.field, e.reason) for e in errors(run(several()))]

    assert got == [
        (
            29,
            "UNT01",
            "UNT01 segment count is '99' but message '2' has 6 segments (UNH to UNT); "
            "message rejected",
        ),
    ]


def test_a_wrong_unt_reference_rejects_that_message() -> None:
    payload = edi("""
UNB+UNOA:2+S+R+20240305:1200+X'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
STS+1+21'
DTM+334:202403061000:203'
UNT+5+7'
UNZ+1+X'
""")

    assert [(e.line, e.field, e.reason) for e in run(payload)] == [
        (6, "UNT02", "UNT02 reference '7' does not match UNH01 '1'; message rejected")
    ]


def test_a_missing_unz_is_a_format_error_after_the_good_records() -> None:
    payload = edi("""
UNB+UNOA:2+S+R+20240305:1200+X'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
STS+1+21'
DTM+334:202403061000:203'
UNT+5+1'
""")
    seen: list[ParseItem] = []

    with pytest.raises(FormatError) as caught:
        seen.extend(parse(io.BytesIO(payload), ParseOptions()))

    assert [r.tracking_number for r in records(seen)] == ["T1"]
    assert (caught.value.line, caught.value.field) == (6, "UNZ")
    assert caught.value.reason == "interchange 'X' ends after segment 6 without UNZ"


def test_a_payload_cut_inside_a_segment_is_a_format_error() -> None:
    payload = b"UNB+UNOA:2+S+R+20240305:1200+X'UNH+1+IFTSTA:D:01A:UN'CNI+1+T"

    with pytest.raises(FormatError) as caught:
        run(payload)

    assert caught.value.line == 3
    assert caught.value.reason == 'payload ends inside segment 3 (no "\'" terminator)'


def test_a_message_interrupted_by_the_next_unh_is_rejected_and_the_next_kept() -> None:
    payload = edi("""
UNB+UNOA:2+S+R+20240305:1200+X'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
UNH+2+IFTSTA:D:01A:UN'
CNI+1+T2'
STS+1+1'
DTM+334:202403061000:203'
UNT+5+2'
UNZ+2+X'
""")
    items = run(payload)

    assert [(e.line, e.field, e.reason) for e in errors(items)] == [
        (2, "UNT", "message '1' has no UNT trailer")
    ]
    assert [(r.tracking_number, r.event_code) for r in records(items)] == [("T2", "arrived")]


@pytest.mark.parametrize(
    ("unb", "field", "reason"),
    [
        ("UNB+XXXX:2+S+R+20240305:1200+X'", "UNB01", "syntax identifier 'XXXX' is not UNOA..UNOZ"),
        ("UNB+UNOA:2++R+20240305:1200+X'", "UNB02", "interchange sender identification is empty"),
        (
            "UNB+UNOA:2+S++20240305:1200+X'",
            "UNB03",
            "interchange recipient identification is empty",
        ),
        (
            "UNB+UNOA:2+S+R+20241305:1200+X'",
            "UNB04",
            "date/time of preparation '20241305':'1200' is not (CC)YYMMDD:HHMM",
        ),
        (
            "UNB+UNOA:2+S+R+20240305:1200'",
            "UNB05",
            "interchange control reference '' is empty or too long",
        ),
    ],
)
def test_a_corrupt_unb_names_the_broken_element(unb: str, field: str, reason: str) -> None:
    with pytest.raises(FormatError) as caught:
        run(unb.encode() + b"UNZ+0+X'")

    assert (caught.value.line, caught.value.field, caught.value.reason) == (1, field, reason)


def test_a_truncated_una_is_a_format_error() -> None:
    with pytest.raises(FormatError) as caught:
        run(b"UNA:+")

    assert caught.value.field == "UNA"
    assert caught.value.reason == "UNA service string advice is truncated"


def test_a_wrong_unz_reference_is_reported_on_the_unz_segment() -> None:
    payload = edi("""
UNB+UNOA:2+S+R+20240305:1200+X'
UNZ+0+Y'
""")

    assert [(e.line, e.field, e.reason) for e in run(payload)] == [
        (2, "UNZ02", "UNZ02 reference 'Y' does not match 'X'")
    ]


def test_functional_groups_are_counted_by_une_and_unz() -> None:
    payload = edi("""
UNB+UNOA:2+S+R+20240305:1200+X'
UNG+IFTSTA+S+R+240305:1200+G1+UN+D:01A'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
STS+1+21'
DTM+334:202403061000:203'
UNT+5+1'
UNE+2+G1'
UNZ+1+X'
""")
    items = run(payload)

    assert [r.tracking_number for r in records(items)] == ["T1"]
    assert [(e.line, e.field, e.reason) for e in errors(items)] == [
        (8, "UNE01", "UNE01 control count is '2' but the group holds 1 message(s)")
    ]


# ------------------------------------------------------------------------------------------
# Fuzzing


def _samples() -> list[bytes]:
    return [
        (EDIFACT / "StatusReport.txt").read_bytes(),
        edi(UNA_D21A),
        several(),
    ]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(draw(st.sampled_from(_samples())))
    for _ in range(draw(st.integers(0, 6))):
        if not base:
            break
        pos = draw(st.integers(0, len(base) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        special = st.sampled_from([ord(c) for c in "'+:?\n^*!~UNHTZ0"]) | st.integers(0, 255)
        if action == "delete":
            del base[pos]
        elif action == "insert":
            base.insert(pos, draw(special))
        elif action == "replace":
            base[pos] = draw(special)
        else:
            del base[pos:]
    return bytes(base)


@settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_payloads_yield_only_records_rejections_or_a_format_error(payload: bytes) -> None:
    items: list[ParseItem] = []
    failure: FormatError | None = None
    try:
        items.extend(parse(io.BytesIO(payload), ParseOptions()))
    except FormatError as exc:
        failure = exc

    assert all(isinstance(item, Record | RecordError) for item in items)
    assert all(item.line >= 1 and len(item.raw) <= 2000 for item in items)
    assert failure is None or (failure.reason and failure.line >= 1)
