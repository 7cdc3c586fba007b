"""ANSI X12 parser: our one-set fixtures and our multi-group fixture."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import IO, cast

import pytest

from tests.warehouses.parsers.x12_interchanges import (
    DUPLICATE_ID,
    FIXTURE_ID,
    FIXTURES,
    STATUS_ID,
    errors,
    records,
    run_file,
)
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, RecordError
from warehouses.parsers.x12 import interchange_ids, parse

# ---------------------------------------------------------------------------------------------
# Our one-set fixtures: each file carries one trap a partner's interchange can hold (a wrong GE01
# count, a placeholder date, a garbled header, a repeated interchange). Written by us: the public
# samples of the same kind (EdiFabric/X12.NET) carry no licence, so they are not in the repository.


def test_status_fixture_yields_the_x3_arrival_in_chicago_time_at_dubuque() -> None:
    items = run_file(FIXTURES / "Status214.txt")
    [record] = records(items)
    assert record.line == 12
    assert record.tracking_number == "PRO778"  # B10-02 is empty, so B10-01
    assert record.event_code == "arrived"
    assert record.partner_code == "X3"
    assert record.event_time == datetime(2024, 9, 18, 7, 15)
    assert record.time_zone == "America/Chicago"  # AT7-07 CT
    assert record.location_name == "DUBUQUE, IA"
    assert record.country == "US"
    assert record.carrier == "HBCX"
    assert record.description == "Arrived at pick-up location"
    assert record.raw.startswith("B10*PRO778**HBCX**RU*ROUTE9~AT7*X3*NS")
    assert record.extra["interchange"] == STATUS_ID
    assert record.extra["references"] == {"L11:EQ": "TRL4821", "B10-01": "PRO778"}
    assert record.extra["time_code"] == "CT"
    assert record.extra["location_source"] == "N1:SF"
    # MS1 0903952 W / 0423000 N: 90 deg 39' 52" W, 42 deg 30' 00" N
    assert record.extra["latitude"] == pytest.approx(42.5)
    assert record.extra["longitude"] == pytest.approx(-90.664444)
    # GE01 claims two sets for one: reported, the good set is kept.
    assert errors(items) == [
        (15, "GE01", "GE01 says 2 transaction sets but functional group 731 holds 1")
    ]


def test_warehouse_shipping_advice_with_a_placeholder_ship_date_is_rejected() -> None:
    items = run_file(FIXTURES / "Advice945PlaceholderDate.txt")
    assert records(items) == []
    assert errors(items) == [
        (4, "W06-03", "invalid date 'CCYYMMDD', expected CCYYMMDD"),
        (10, "GE01", "GE01 says 2 transaction sets but functional group 732 holds 1"),
    ]
    rejected = items[0]
    assert isinstance(rejected, RecordError)
    assert rejected.raw.startswith("ST*945*0001~W06*N*ORD5521*CCYYMMDD")


def test_ship_notice_fixture_yields_one_info_received_record_for_its_shipment_hl() -> None:
    items = run_file(FIXTURES / "Notice856.txt")
    [record] = records(items)
    assert record.line == 5  # HL*1**S
    assert record.event_code == "info_received"
    assert record.partner_code == "856"
    assert record.tracking_number == "SHP90210"  # BSN-02
    assert record.event_time == datetime(2024, 4, 2, 9, 30)
    assert record.time_zone == ""
    assert record.weight_kg == Decimal("54.431")  # 120 LB x 0.45359237
    assert record.carrier == "ODFL"
    assert record.transport_mode == "road"  # TD5-04 M
    assert record.location_name == "ACME SUPPLY"
    # two purchase orders in one shipment: listed, none picked arbitrarily
    assert record.order_number == ""
    assert record.extra["order_numbers"] == ["PO1111", "PO2222"]
    assert record.extra["packages"] == ["00012345670000000017", "00012345670000000024"]
    references = record.extra["references"]
    assert isinstance(references, dict)
    assert references["REF:BM"] == "BOL90210"
    assert references["REF:CN"] == "PRO4455"
    assert record.extra["warnings"] == [
        "DTM*011 at segment 10: invalid date '2024', expected CCYYMMDD"
    ]
    assert errors(items) == [
        (29, "GE01", "GE01 says 2 transaction sets but functional group 733 holds 1")
    ]


def test_a_rail_carrier_shipment_is_reported_as_an_unsupported_set() -> None:
    items = run_file(FIXTURES / "Rail404.txt")
    assert records(items) == []
    assert errors(items) == [
        (3, "ST01", "unsupported transaction set 404 (supported: 214, 856, 945)"),
    ]


def test_a_corrupt_isa_raises_a_format_error_on_segment_one() -> None:
    with pytest.raises(FormatError) as caught:
        run_file(FIXTURES / "CorruptIsa.txt")
    assert caught.value.line == 1
    assert caught.value.field == "ISA"
    assert caught.value.reason == "expected an ISA interchange header, found 'SA*00*    '"


def test_a_corrupt_st_rejects_the_garbled_set_and_reports_the_next_one() -> None:
    items = run_file(FIXTURES / "CorruptSt.txt")
    assert records(items) == []
    # GE*2 counts the garbled set too, so no group error follows.
    assert errors(items) == [
        (
            3,
            "ST",
            "expected an ST transaction set header, found 'T'; segments up to the next SE skipped",
        ),
        (9, "ST01", "unsupported transaction set 850 (supported: 214, 856, 945)"),
    ]


def test_a_duplicate_interchange_is_skipped_the_second_time() -> None:
    items = run_file(FIXTURES / "DuplicateInterchange.txt")
    assert errors(items) == [
        (3, "ST01", "unsupported transaction set 850 (supported: 214, 856, 945)"),
        (
            11,
            "ISA13",
            "duplicate interchange control number 000000737 from sender HUBCARRIER "
            "(first seen in the ISA at segment 1); interchange skipped",
        ),
    ]
    with (FIXTURES / "DuplicateInterchange.txt").open("rb") as stream:
        assert interchange_ids(stream) == [DUPLICATE_ID, DUPLICATE_ID]


@pytest.mark.parametrize(
    ("name", "control"),
    [
        ("Status214.txt", "731"),
        ("Advice945PlaceholderDate.txt", "732"),
        ("Notice856.txt", "733"),
        ("CorruptSt.txt", "736"),
    ],
)
def test_interchange_ids_lists_the_sender_receiver_and_control_number(
    name: str, control: str
) -> None:
    with (FIXTURES / name).open("rb") as stream:
        assert interchange_ids(stream) == [f"HUBCARRIER/HUBRECEIVER/000000{control}"]


# ---------------------------------------------------------------------------------------------
# Our multi-group fixture: "|" elements, "^" components, "\n" terminators, then a second
# interchange with "*", ":" and "~" + CRLF.


@pytest.fixture(scope="module")
def multi() -> list[ParseItem]:
    return run_file(FIXTURES / "MultiGroup.txt")


def test_multi_group_fixture_yields_every_good_record_in_order(multi: list[ParseItem]) -> None:
    got = [
        (r.line, r.tracking_number, r.event_code, r.partner_code, r.event_time, r.time_zone)
        for r in records(multi)
    ]
    plus_8 = timezone(timedelta(hours=8))
    minus_6 = timezone(timedelta(hours=-6))
    assert got == [
        (13, "SHIP-1001", "picked_up", "AF", datetime(2024, 3, 1, 8, 15), ""),
        (16, "SHIP-1001", "in_transit", "X6", datetime(2024, 3, 2, 23, 15, tzinfo=UTC), ""),
        (19, "SHIP-1001", "delivered", "D1", datetime(2024, 3, 10, 16, 42), ""),
        (21, "SHIP-1001", "eta_updated", "AG", datetime(2024, 3, 5, 9, 30), ""),
        # A code outside element 1650's table: no suggestion, the normalizer decides.
        (32, "PRO-780", "", "ZZ", datetime(2024, 3, 4, 10, 0), "America/Chicago"),
        (34, "PRO-780", "departed", "P1", datetime(2024, 3, 4, 11, 30, tzinfo=plus_8), ""),
        (
            41,
            "SHP-42",
            "warehouse_dispatched",
            "945",
            datetime(2024, 3, 1, 14, 5, tzinfo=minus_6),
            "",
        ),
        (52, "ASN-9001", "info_received", "856", datetime(2024, 2, 29, 18, 0), ""),
        (60, "ASN-9001", "info_received", "856", datetime(2024, 2, 29, 18, 0), ""),
        (73, "SHIP-1003", "arrived", "X4", datetime(2024, 3, 6, 6, 45, tzinfo=minus_6), ""),
    ]


def test_multi_group_fixture_rejects_only_the_bad_count_set(multi: list[ParseItem]) -> None:
    bad_count = "SE01 says 9 segments but transaction set 0002 has 5 (ST to SE); set rejected"
    assert errors(multi) == [(28, "SE01", bad_count)]


def test_an_unknown_status_code_is_left_to_the_feeds_mapping_with_its_reason(
    multi: list[ParseItem],
) -> None:
    unknown = records(multi)[4]
    assert (unknown.partner_code, unknown.event_code, unknown.code_field) == ("ZZ", "", "AT7-01")
    assert unknown.code_note == "unknown shipment status code 'ZZ' (element 1650)"


def test_lt_time_code_and_a_missing_time_code_both_give_naive_local_times(
    multi: list[ParseItem],
) -> None:
    first, _, delivered, *_ = records(multi)
    assert first.event_time == datetime(2024, 3, 1, 8, 15)
    assert first.extra["time_code"] == "LT"
    assert first.location_name == "HEIHE, HL"
    assert first.country == "CN"
    assert first.order_number == "PO-5566"
    assert first.transport_mode == "road"
    assert first.extra["references"] == {
        "L11:PO": "PO-5566",
        "L11:BM": "BOL-9",
        "B10-01": "PRO-778",
        "B10-02": "SHIP-1001",
    }
    assert "time_code" not in delivered.extra
    # no MS1: a delivery status happens at the ship-to address
    assert delivered.location_name == "CHICAGO, IL"
    assert delivered.country == "US"
    assert delivered.extra["location_source"] == "N1:ST"


def test_an_estimated_delivery_is_an_eta_update_dated_by_its_group(
    multi: list[ParseItem],
) -> None:
    estimate = records(multi)[3]
    assert estimate.event_code == "eta_updated"
    assert estimate.extra["estimated_delivery"] == "2024-03-10T17:00:00"
    assert estimate.extra["estimated_delivery_time_zone"] == "America/New_York"
    assert estimate.extra["event_time_source"] == "GS04/GS05"
    references = estimate.extra["references"]
    assert isinstance(references, dict)
    assert references["L11:EQ"] == "LOOPREF-4"  # a reference inside its own LX loop


def test_iso_offset_time_code_alpha3_country_and_loop_weight_are_understood(
    multi: list[ParseItem],
) -> None:
    departed = records(multi)[5]
    assert departed.tracking_number == "PRO-780"  # B10-02 empty
    assert departed.country == "CN"  # MS1 sent CHN
    assert departed.weight_kg == Decimal("12.500")


def test_warehouse_shipping_advice_uses_the_shipped_g62_and_the_warehouse_n1(
    multi: list[ParseItem],
) -> None:
    advice = records(multi)[6]
    assert advice.order_number == "ORD-42"
    assert advice.location_name == "HEIHE, HL"
    assert advice.country == "CN"
    assert advice.carrier == "HBCX"
    assert advice.weight_kg == Decimal("3.200")
    assert advice.extra["event_time_source"] == "G62:11"
    assert advice.extra["warehouse_id"] == "9:HEK01"
    assert advice.extra["lines"] == [
        {
            "status": "CC",
            "quantity_ordered": "2",
            "quantity_shipped": "2",
            "unit": "EA",
            "upc": "123456789012",
        }
    ]


def test_ship_notice_gives_one_record_per_shipment_hl_with_its_own_weight(
    multi: list[ParseItem],
) -> None:
    first, second = records(multi)[7:9]
    assert (first.extra["hl"], first.order_number, first.weight_kg) == (
        "1",
        "PO-7001",
        Decimal("4.536"),
    )
    assert first.transport_mode == "air"
    assert (second.extra["hl"], second.order_number, second.weight_kg) == (
        "3",
        "",
        Decimal("2.500"),
    )
    assert second.extra["order_numbers"] == ["PO-7002", "PO-7003"]


def test_every_record_names_its_interchange_with_that_interchanges_separators(
    multi: list[ParseItem],
) -> None:
    ids = {str(r.extra["interchange"]) for r in records(multi)}
    assert ids == {FIXTURE_ID, "HUBSENDER/HUBRECEIVER/000000902"}
    assert "|" in records(multi)[0].raw
    assert records(multi)[-1].raw.startswith("B10*PRO-781")
    with (FIXTURES / "MultiGroup.txt").open("rb") as stream:
        assert interchange_ids(stream) == [FIXTURE_ID, "HUBSENDER/HUBRECEIVER/000000902"]


class OneByteStream(io.RawIOBase):
    """Delivers the payload one byte per read, to prove segments survive any chunk boundary."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data[self._pos : self._pos + 1]
        self._pos += len(chunk)
        return chunk


def test_parsing_a_stream_one_byte_at_a_time_gives_the_same_result(
    multi: list[ParseItem],
) -> None:
    data = (FIXTURES / "MultiGroup.txt").read_bytes()
    assert list(parse(cast(IO[bytes], OneByteStream(data)), ParseOptions())) == multi
