"""GS1 EPCIS 2.0 JSON parser: our container fixture, from Suifenhe to Malaszewicze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.warehouses.parsers.epcis_documents import (
    CONTAINER,
    CONTAINER_ID,
    PARCEL_1,
    PARCEL_2,
    PARCEL_3,
    errors,
    event_start_lines,
    records,
    run_file,
    tz,
)
from warehouses.parsers.base import ParseItem

# --------------------------------------------------------------------------- our container fixture


@pytest.fixture(scope="module")
def container_items() -> list[ParseItem]:
    return run_file(CONTAINER)


def test_the_container_fixture_validates_and_every_event_start_line_is_reported(
    container_items: list[ParseItem],
) -> None:
    assert errors(container_items) == []
    starts = event_start_lines(CONTAINER.read_text(encoding="utf-8"))
    assert len(starts) == 7
    assert sorted({item.line for item in container_items}) == starts


def test_loading_parcels_into_a_container_gives_memberships_and_a_loaded_event_on_the_unit(
    container_items: list[ParseItem],
) -> None:
    loading = [
        r for r in records(container_items) if str(r.extra.get("event_id", "")).endswith("01")
    ]
    members = [r for r in loading if r.kind == "membership"]
    assert [m.tracking_number for m in members] == [PARCEL_1, PARCEL_2, PARCEL_3]
    assert [m.extra["epc_key"] for m in members] == [
        "sscc:069012340000000115",
        "sscc:069012340000000028",
        "sscc:069012340000000351",
    ]
    for member in members:
        assert member.unit_id == CONTAINER_ID
        assert member.event_time == datetime(2024, 3, 1, 8, 0, tzinfo=tz(8))
        assert member.unloaded_at is None
        assert member.extra["action"] == "ADD"
        assert member.extra["unit_key"] == "giai:6901234TGHU8837461"
    (unit_event,) = [r for r in loading if r.kind == "event"]
    assert (unit_event.unit_id, unit_event.tracking_number) == (CONTAINER_ID, "")
    assert (unit_event.event_code, unit_event.partner_code) == ("loaded", "bizstep:loading")
    # the master data of the document header names the read point and gives its UN/LOCODE
    assert unit_event.location_name == "Suifenhe railway station"
    assert (unit_event.location_code, unit_event.country) == ("CNSFH", "CN")
    assert unit_event.extra["read_point"] == "urn:epc:id:sgln:6901234.00001.0"


def unit_events(items: list[ParseItem]) -> list[tuple[str, datetime | str | None, str]]:
    return [
        (r.event_code, r.event_time, r.location_code)
        for r in records(items)
        if r.kind == "event" and r.unit_id == CONTAINER_ID
    ]


def test_the_container_timeline_runs_from_suifenhe_to_malaszewicze(
    container_items: list[ParseItem],
) -> None:
    assert unit_events(container_items) == [
        ("loaded", datetime(2024, 3, 1, 8, 0, tzinfo=tz(8)), "CNSFH"),
        ("departed", datetime(2024, 3, 1, 10, 30, tzinfo=tz(8)), "CNSFH"),
        ("in_transit", datetime(2024, 3, 8, 9, 0, tzinfo=tz(3)), "BYBRE"),
        ("arrived", datetime(2024, 3, 12, 14, 5, tzinfo=tz(1)), "PLMAL"),
        ("unloaded", datetime(2024, 3, 13, 5, 40, tzinfo=tz(1)), "PLMAL"),
    ]


def test_a_departure_given_in_utc_is_shown_in_the_local_offset_of_suifenhe(
    container_items: list[ParseItem],
) -> None:
    (departed,) = [r for r in records(container_items) if r.event_code == "departed"]
    # The mapping key is the bare CBV name whatever the spelling; extra keeps the value as sent.
    assert departed.partner_code == "bizstep:departing"
    assert departed.extra["biz_step"] == "https://ref.gs1.org/cbv/BizStep-departing"
    assert departed.event_time == datetime(2024, 3, 1, 2, 30, tzinfo=UTC)
    assert departed.extra["offset_disagrees"] is False


def test_an_event_time_disagreeing_with_its_offset_keeps_the_instant_and_records_the_offset(
    container_items: list[ParseItem],
) -> None:
    (arrived,) = [r for r in records(container_items) if r.event_code == "arrived"]
    # eventTime 21:05+08:00 (a Chinese clock) with eventTimeZoneOffset +01:00 (Poland)
    assert arrived.event_time == datetime(2024, 3, 12, 13, 5, tzinfo=UTC)
    assert isinstance(arrived.event_time, datetime)
    assert arrived.event_time.utcoffset() == timedelta(hours=1)
    assert arrived.extra["local_offset"] == "+01:00"
    assert arrived.extra["offset_disagrees"] is True
    # the EPCIS 1.x URN spelling passes the schema and keeps the partner's value
    assert arrived.partner_code == "bizstep:arriving"
    assert arrived.extra["biz_step"] == "urn:epcglobal:cbv:bizstep:arriving"
    assert (arrived.location_name, arrived.country) == (
        "https://hub.example.com/locode/PLMAL",
        "PL",
    )


def test_the_error_declaration_retracts_the_transport_event_by_its_event_id(
    container_items: list[ParseItem],
) -> None:
    (retraction,) = [r for r in records(container_items) if r.kind == "retraction"]
    retracted_id = "urn:uuid:0b7f2a8e-5a1c-4b1e-9d35-000000000003"
    assert retraction.extra["event_id"] == retracted_id
    assert retraction.extra["reason"] == "incorrect_data"
    assert retraction.extra["corrective_event_ids"] == []
    assert retraction.event_time == datetime(2024, 3, 12, 10, 0, tzinfo=tz(1))
    (original,) = [
        r
        for r in records(container_items)
        if r.kind == "event" and r.extra.get("event_id") == retracted_id
    ]
    assert original.event_code == "in_transit"


def test_unloading_ends_the_memberships_of_the_unloaded_parcels_only(
    container_items: list[ParseItem],
) -> None:
    ended = [r for r in records(container_items) if r.kind == "membership" and r.unloaded_at]
    assert [r.tracking_number for r in ended] == [PARCEL_1, PARCEL_2]
    for record in ended:
        assert record.event_time is None
        assert record.unloaded_at == datetime(2024, 3, 13, 5, 40, tzinfo=tz(1))
        assert record.extra["action"] == "DELETE"
        assert record.location_code == "PLMAL"


def test_a_purchase_order_transaction_links_the_parcel_to_its_order(
    container_items: list[ParseItem],
) -> None:
    (shipment,) = [r for r in records(container_items) if r.kind == "shipment"]
    assert shipment.tracking_number == PARCEL_1
    assert shipment.order_number == "urn:epcglobal:cbv:bt:6901234000004:PO-2024-0042"
    assert shipment.extra["biz_transactions"] == [
        {"type": "urn:epcglobal:cbv:btt:po", "id": shipment.order_number},
        {"type": "desadv", "id": "urn:epcglobal:cbv:bt:6901234000004:DA-77"},
    ]
    (dispatched,) = [r for r in records(container_items) if r.event_code == "warehouse_dispatched"]
    assert dispatched.tracking_number == PARCEL_1
    assert dispatched.order_number == shipment.order_number
