"""UN/EDIFACT IFTSTA parser: status records from our interchange fixtures and inline fixtures."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shipments.statuses import EVENT_CODES
from tests.warehouses.parsers.edifact_interchanges import (
    UNA_D21A,
    edi,
    errors,
    records,
    run,
    run_file,
    several,
)
from warehouses.parsers.base import FormatError
from warehouses.parsers.edifact.codes import STATUS_EVENTS

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


def test_every_mapped_status_code_is_an_event_code_of_the_hub() -> None:
    assert {event for event, _name in STATUS_EVENTS.values()} <= set(EVENT_CODES)
