"""UN/EDIFACT IFTSTA parser: own interchange fixtures, inline fixtures, and fuzzing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.statuses import EVENT_CODES
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.edifact import Delimiters, parse, parse_dtm, read_segments
from warehouses.parsers.edifact.codes import STATUS_EVENTS

EDIFACT = Path(__file__).parent / "fixtures" / "edifact"


def run(payload: bytes, options: ParseOptions | None = None) -> list[ParseItem]:
    return list(parse(io.BytesIO(payload), options or ParseOptions()))


def run_file(name: str) -> list[ParseItem]:
    with (EDIFACT / name).open("rb") as stream:
        return list(parse(stream, ParseOptions()))


def records(items: list[ParseItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def errors(items: list[ParseItem]) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def edi(text: str, encoding: str = "utf-8") -> bytes:
    """Fixture text written one segment per line; the parser must tolerate the line breaks."""
    return text.strip().encode(encoding)


# ------------------------------------------------------------------------------------------
# Our interchange fixtures: a status report with an impossible date, and broken or unsupported
# envelopes. Written by us: the public samples of the same kind (EdiFabric/X12.NET) carry no
# licence, so they are not in the repository.


def test_status_report_yields_its_three_good_statuses() -> None:
    got = [
        (r.line, r.tracking_number, r.event_code, r.partner_code, r.event_time)
        for r in records(run_file("StatusReport.txt"))
    ]

    assert got == [
        (8, "HB1001", "delivered", "21", datetime(2024, 5, 2, 16, 30)),
        # en route carries only DTM 40E: the document date (DTM 137) dates it.
        (13, "HB1002", "in_transit", "31", datetime(2024, 5, 3)),
        (16, "HB1003", "customs_rejected", "17", datetime(2024, 4, 29)),
    ]


def test_status_report_keeps_references_dates_and_place() -> None:
    delivered, en_route, refused = records(run_file("StatusReport.txt"))

    assert delivered.extra["references"] == {"DQ": ["DN-5521"]}
    assert delivered.extra["event_time_qualifier"] == "334"
    assert delivered.extra["parties"] == {
        "DP": "4012345000023",
        "FW": "4012345000009",
        "CZ": "4012345000016",
    }
    assert delivered.extra["message_ref"] == "MSG0077"
    assert delivered.extra["message_type"] == "IFTSTA:D:01A:UN:EAN004"
    assert delivered.extra["document_number"] == "RPT-7781"
    assert delivered.description == "Delivery, completed"
    assert (
        delivered.raw
        == "CNI+1+HB1001'\nSTS+1+21'\nRFF+DQ:DN-5521'\nDTM+334:202405021630:203'\n"
        + ("NAD+DP+4012345000023::9'")
    )
    assert en_route.extra["event_time_qualifier"] == "137"
    assert en_route.extra["event_time_precision"] == "day"
    assert en_route.extra["dates"] == {"40E": "2024-05-06T00:00:00"}
    assert refused.location_name == "CUSTOMS OFFICE FRANKFURT AIRPORT"
    assert refused.location_code == ""
    assert refused.country == ""
    assert refused.extra["reason_code"] == "39"


def test_status_report_rejects_each_status_dated_20240231_and_nothing_else() -> None:
    got = [(e.line, e.field, e.reason) for e in errors(run_file("StatusReport.txt"))]

    reason = "impossible date/time '20240231' for format 102 (CCYYMMDD)"
    assert got == [(21, "DTM", reason), (26, "DTM", reason)]


def test_status_report_rejections_show_the_consignment_and_its_sscc() -> None:
    first = errors(run_file("StatusReport.txt"))[0]

    assert first.raw.startswith("CNI+4+HB1004'\nSTS+1+49'\nDTM+334:20240231:102'")
    assert "GIN+BJ+340123450000000018'" in first.raw


def test_a_corrupt_unb_is_a_format_error_at_segment_1() -> None:
    with pytest.raises(FormatError) as caught:
        run_file("CorruptUnb.txt")

    assert caught.value.line == 1
    assert caught.value.field == "UNB"
    assert caught.value.reason == "interchange must begin with UNB, found segment tag 'NB'"


def test_a_corrupt_unh_rejects_only_the_broken_message() -> None:
    got = [(e.line, e.field, e.reason) for e in run_file("CorruptUnh.txt")]

    assert got == [
        (
            2,
            "UNH",
            "expected a message header UNH, found segment tag 'NH'; message skipped up to its UNT",
        ),
        # The second message is intact but is a purchase order, not a status report.
        (11, "UNH02", "unsupported message type ORDERS"),
    ]


def test_a_despatch_advice_is_an_unsupported_message_not_a_crash() -> None:
    got = [(e.line, e.field, e.reason) for e in run_file("DespatchAdvice.txt")]

    assert got == [
        (2, "UNH02", "unsupported message type DESADV"),
        # The UNZ claims two messages; the interchange holds one.
        (10, "UNZ01", "UNZ01 control count is '2' but the interchange holds 1 message(s)"),
    ]


def test_an_instruction_is_an_unsupported_message() -> None:
    got = [(e.line, e.field, e.reason) for e in run_file("Instruction.txt")]

    assert got == [(2, "UNH02", "unsupported message type IFTMIN")]


# ------------------------------------------------------------------------------------------
# Own fixtures

UNA_D21A = """
UNA^*,! ~
UNB*UNOW^4*HEIHEWH^ZZ*HUB^ZZ*20240305^1200*ICR1~
UNH*M1*IFTSTA^D^21A^UN~
BGM*23*RPT-1*9~
DTM*137^202403051200^203~
CNI*1*HEX2024000001~
STS*1*24~
RFF*ON^SO-778~
DTM*334^202403050830^203~
LOC*5*CNHEK^139^6^Heihe!*Port~
TDT*20**3**CARRIER-A~
STS*1*16^^^Crossed into Russia~
DTM*334^202403051630+08^303~
LOC*16*RU BQS^139^6^Благовещенск!~таможня~
UNT*13*M1~
UNZ*1*ICR1~
"""


def test_una_separators_and_release_characters_are_honoured() -> None:
    departed, crossed = records(run(edi(UNA_D21A)))

    assert departed.location_name == "Heihe*Port"
    assert departed.location_code == "CNHEK"
    assert departed.country == "CN"
    assert crossed.location_name == "Благовещенск~таможня"
    assert crossed.location_code == "RUBQS"
    assert crossed.country == "RU"


def test_a_d21a_message_maps_status_time_order_and_transport() -> None:
    departed, crossed = records(run(edi(UNA_D21A)))

    assert (departed.line, departed.tracking_number, departed.event_code) == (
        6,
        "HEX2024000001",
        "departed",
    )
    assert departed.event_time == datetime(2024, 3, 5, 8, 30)  # DTM 203: naive local time
    assert departed.order_number == "SO-778"
    assert departed.transport_mode == "road"
    assert departed.carrier == "CARRIER-A"
    assert departed.extra["message_type"] == "IFTSTA:D:21A:UN"
    assert crossed.event_code == "border_crossed"
    assert crossed.description == "Crossed into Russia"
    assert crossed.event_time == datetime(2024, 3, 5, 16, 30, tzinfo=timezone(timedelta(hours=8)))


SEVERAL = """
UNB+UNOC:3+SENDER:ZZ+HUB:ZZ+240305:1200+ICR2'
UNH+1+IFTSTA:D:96A:UN'
BGM+23+R2+9'
CNI+1+TRK001'
STS+1+13'
RFF+CU:SHOP-42'
DTM+334:202403050830:203'
LOC+5+CNHRB:139:6:Harbin'
NAD+CA+RAILCO::9'
TDT+20++2'
MEA+WT+AAB+KGM:12,5'
STS+1+24'
DTM+334:202403051230?+0300:205'
LOC+5+CNSFH:139:6:Suifenhe?+Port?'s yard in Zürich?:'
CNI+2'
STS+1+21'
DTM+334:20240306101500?+03:304'
GID+1+2:CT'
GIN+BJ+340123450000000017+340123450000000024'
CNI+3+TRK003'
STS+1+999'
DTM+334:202403061000:203'
UNT+22+1'
UNH+2+IFTSTA:D:01A:UN:EAN004'
BGM+23+R3+9'
CNI+1+TRK004'
STS+1+21'
DTM+334:202403061000:203'
UNT+99+2'
UNZ+2+ICR2'
"""


def several() -> bytes:
    # UTF-8 BOM, CRLF line breaks and a Latin-1 payload (UNOC) at once.
    text = SEVERAL.strip().replace("\n", "\r\n")
    return b"\xef\xbb\xbf" + text.encode("latin-1")


def test_several_consignments_and_statuses_become_one_record_per_status() -> None:
    got = [
        (r.line, r.tracking_number, r.event_code, r.partner_code, r.event_time)
        for r in records(run(several()))
    ]

    assert got == [
        (5, "TRK001", "picked_up", "13", datetime(2024, 3, 5, 8, 30)),
        (
            12,
            "TRK001",
            "departed",
            "24",
            datetime(2024, 3, 5, 12, 30, tzinfo=timezone(timedelta(hours=3))),
        ),
        (
            16,
            "340123450000000017",
            "delivered",
            "21",
            datetime(2024, 3, 6, 10, 15, tzinfo=timezone(timedelta(hours=3))),
        ),
        # Outside UN/ECE Rec 24: no suggestion, the feed's mapping or policy decides.
        (21, "TRK003", "", "999", datetime(2024, 3, 6, 10, 0)),
    ]


def test_released_separators_and_latin1_are_read_from_a_unoc_interchange() -> None:
    departed = records(run(several()))[1]

    assert departed.location_name == "Suifenhe+Port's yard in Zürich:"
    assert departed.location_code == "CNSFH"


def test_a_consignment_without_cni_number_is_tracked_by_its_sscc() -> None:
    delivered = records(run(several()))[2]

    assert delivered.extra["sscc"] == ["340123450000000017", "340123450000000024"]
    assert delivered.extra["tracking_number_source"] == "GIN BJ"


def test_order_reference_carrier_mode_and_weight_are_mapped() -> None:
    picked_up = records(run(several()))[0]

    assert picked_up.order_number == "SHOP-42"
    assert picked_up.carrier == "RAILCO"
    assert picked_up.transport_mode == "rail"
    assert picked_up.weight_kg == Decimal("12.5")


def test_an_unknown_status_code_is_left_to_the_feeds_mapping_with_its_reason() -> None:
    unknown = records(run(several()))[3]

    assert (unknown.partner_code, unknown.event_code, unknown.code_field) == ("999", "", "STS02")
    assert unknown.code_note == "unknown status code '999' (not mapped from UN/ECE Rec 24)"


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


STATUS_WITH_DTM = """
UNB+UNOA:2+S+R+20240305:1200+X'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
STS+1+21'
{dtm}
UNT+5+1'
UNZ+1+X'
"""


@pytest.mark.parametrize(
    ("dtm", "reason"),
    [
        (
            "DTM+334:202403061000+08:303'",
            "DTM has 2 data elements, expected 1 (an unreleased '+' in a time-zone offset?)",
        ),
        (
            "DTM+334:202403061000CST:303'",
            "time zone 'CST' in '202403061000CST' (format 303) is not an offset",
        ),
        (
            "DTM+334:2024030610:203'",
            "date/time '2024030610' does not match format 203 (CCYYMMDDHHMM)",
        ),
        ("DTM+334:240306:101'", "unsupported date/time format code '101' (value '240306')"),
        (
            "DTM+334:202402301000:203'",
            "impossible date/time '202402301000' for format 203 (CCYYMMDDHHMM)",
        ),
    ],
)
def test_a_bad_status_date_rejects_the_status_with_the_value_named(dtm: str, reason: str) -> None:
    items = run(edi(STATUS_WITH_DTM.format(dtm=dtm)))

    assert [(e.line, e.field, e.reason) for e in items] == [(5, "DTM", reason)]


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("20240306", "102", datetime(2024, 3, 6)),
        ("202403061015", "203", datetime(2024, 3, 6, 10, 15)),
        ("20240306101530", "204", datetime(2024, 3, 6, 10, 15, 30)),
        (
            "202403061015-0530",
            "205",
            datetime(2024, 3, 6, 10, 15, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("202403061015UTC", "303", datetime(2024, 3, 6, 10, 15, tzinfo=UTC)),
        (
            "202403061015+08",
            "303",
            datetime(2024, 3, 6, 10, 15, tzinfo=timezone(timedelta(hours=8))),
        ),
        (
            "20240306101530+03:00",
            "304",
            datetime(2024, 3, 6, 10, 15, 30, tzinfo=timezone(timedelta(hours=3))),
        ),
        ("202403061015", "", datetime(2024, 3, 6, 10, 15)),
    ],
)
def test_dtm_formats_give_naive_or_aware_datetimes(
    value: str, fmt: str, expected: datetime
) -> None:
    moment, _precision = parse_dtm(value, fmt)

    assert moment == expected
    assert (moment.tzinfo is None) == (expected.tzinfo is None)


def test_segments_are_numbered_and_released_characters_unescaped() -> None:
    payload = b"\xef\xbb\xbfUNB+UNOA:2+S?'Q+R+20240305:1200+X'\n\nFTX+AAA+++a??b?:c'\r\nUNZ+0+X'"

    got = [
        (s.number, s.tag, s.elements) for s in read_segments(io.BytesIO(payload), ParseOptions())
    ]

    assert got == [
        (1, "UNB", [["UNOA", "2"], ["S'Q"], ["R"], ["20240305", "1200"], ["X"]]),
        (2, "FTX", [["AAA"], [""], [""], ["a?b:c"]]),
        (3, "UNZ", [["0"], ["X"]]),
    ]


def test_default_delimiters_are_the_iso_9735_ones() -> None:
    assert Delimiters() == Delimiters(":", "+", ".", "?", "'")


def test_a_segment_without_terminator_beyond_the_line_limit_is_a_format_error() -> None:
    payload = b"UNB+UNOA:2+S+R+20240305:1200+X'FTX+" + b"x" * 5000

    with pytest.raises(FormatError) as caught:
        run(payload, ParseOptions(max_line_bytes=1000))

    assert caught.value.line == 2
    assert 'no "\'" terminator within 1000 characters' in caught.value.reason


def test_records_stream_before_the_whole_payload_is_read() -> None:
    message = "UNH+{n}+IFTSTA:D:01A:UN'CNI+1+T{n}'STS+1+21'DTM+334:202403061000:203'UNT+5+{n}'"
    count = 5000
    body = "".join(message.format(n=n) for n in range(count))
    payload = f"UNB+UNOA:2+S+R+20240305:1200+X'{body}UNZ+{count}+X'".encode()
    stream = io.BytesIO(payload)

    items = parse(stream, ParseOptions())
    first = next(items)

    assert isinstance(first, Record)
    assert first.tracking_number == "T0"
    assert stream.tell() < len(payload) // 4
    assert sum(1 for _ in items) == count - 1


def test_bytes_that_are_not_utf8_in_a_unow_interchange_are_a_format_error() -> None:
    payload = b"UNB+UNOW:4+S+R+20240305:1200+X'UNH+1+IFTSTA:D:01A:UN'LOC+5+:::Hei\xffhe'"

    with pytest.raises(FormatError) as caught:
        run(payload)

    assert caught.value.reason.startswith("bytes are not valid utf-8")


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


def test_every_mapped_status_code_is_an_event_code_of_the_hub() -> None:
    assert {event for event, _name in STATUS_EVENTS.values()} <= set(EVENT_CODES)


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
