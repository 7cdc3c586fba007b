"""ANSI X12 parser: 214 shipment status details (time codes, AT7 forms, status codes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shipments.statuses import EVENT_CODES
from tests.warehouses.parsers.x12_interchanges import (
    errors,
    records,
    run,
    status_interchange,
)
from warehouses.parsers.x12.codes import STATUS_CODES, TIME_CODES

# ---------------------------------------------------------------------------------------------
# 214 details


def test_an_unknown_time_code_rejects_that_status() -> None:
    items = run(status_interchange("B10*PRO1*SHIP1*HBCX", "LX*1", "AT7*X4*NS***20240306*0645*QQ"))
    assert errors(items) == [(6, "AT7-07", "unknown time code 'QQ' (element 623)")]


def test_a_status_without_its_time_is_rejected() -> None:
    items = run(status_interchange("B10*PRO1*SHIP1*HBCX", "LX*1", "AT7*X4*NS***20240306"))
    assert errors(items) == [(6, "AT7-06", "AT7-06 time is missing")]


def test_an_impossible_status_date_is_rejected() -> None:
    items = run(status_interchange("B10*PRO1*SHIP1*HBCX", "LX*1", "AT7*X4*NS***20240231*0645"))
    assert errors(items) == [(6, "AT7-05", "invalid date '20240231', expected CCYYMMDD")]


def test_an_appointment_only_at7_is_reported_not_guessed() -> None:
    items = run(status_interchange("B10*PRO1*SHIP1*HBCX", "LX*1", "AT7***AA*NS*20240306*0645"))
    assert errors(items) == [
        (
            6,
            "AT7-01",
            "appointment status code 'AA' (AT7-03) is an appointment, not a tracking event; "
            "not mapped",
        )
    ]


def test_pre_4010_at7_with_a_century_element_is_read() -> None:
    items = run(status_interchange("B10*PRO1*SHIP1*HBCX", "LX*1", "AT7*D1*NS***240306*20*0645*ES"))
    [record] = records(items)
    assert record.event_time == datetime(2024, 3, 6, 6, 45, tzinfo=timezone(timedelta(hours=-5)))


def test_a_214_without_b10_is_rejected_as_a_whole() -> None:
    items = run(status_interchange("LX*1", "AT7*X4*NS***20240306*0645"))
    assert errors(items) == [(3, "B10", "214 has no B10 segment (no shipment reference)")]


def test_hawaii_alaska_and_newfoundland_letters_are_mapped() -> None:
    assert TIME_CODES["AT"].zone == "America/Anchorage"
    assert TIME_CODES["AS"].offset_minutes == -9 * 60
    assert TIME_CODES["HT"].zone == "Pacific/Honolulu"
    assert TIME_CODES["NS"].offset_minutes == -210
    assert TIME_CODES["01"].offset_minutes == 60
    assert TIME_CODES["12"].offset_minutes == 12 * 60
    assert TIME_CODES["13"].offset_minutes == -12 * 60
    assert TIME_CODES["24"].offset_minutes == -60


def test_every_mapped_status_code_is_in_the_hub_vocabulary() -> None:
    assert {code.event_code for code in STATUS_CODES.values()} <= set(EVENT_CODES)
    assert STATUS_CODES["X3"].event_code == "arrived"
    assert STATUS_CODES["AF"].event_code == "picked_up"
    assert STATUS_CODES["J1"].event_code == "in_transit"
    assert STATUS_CODES["A7"].event_code == "delivery_failed"
    assert STATUS_CODES["AG"].event_code == "eta_updated"
