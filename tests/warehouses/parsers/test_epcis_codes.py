"""EPCIS bizStep and disposition values -> hub event codes (warehouses/parsers/epcis/codes.py)."""

from __future__ import annotations

import json

import pytest

from shipments.statuses import EVENT_CODES
from tests.warehouses.parsers.epcis_documents import document, object_event, run
from warehouses.parsers.base import Record, RecordError
from warehouses.parsers.epcis import SCHEMA_DIR
from warehouses.parsers.epcis.codes import BIZSTEP_CODES, DISPOSITION_CODES, cbv_name


@pytest.mark.parametrize(
    "spelling",
    [
        "departing",
        "urn:epcglobal:cbv:bizstep:departing",
        "https://ref.gs1.org/cbv/BizStep-departing",
        "https://gs1.org/voc/BizStep-departing",
        "cbv:BizStep-departing",
    ],
)
def test_every_spelling_of_a_cbv_bizstep_maps_to_the_same_event(spelling: str) -> None:
    (record,) = run(document(object_event(bizStep=spelling)))
    assert isinstance(record, Record)
    assert (record.event_code, record.partner_code) == ("departed", "bizstep:departing")
    assert record.extra["biz_step"] == spelling


@pytest.mark.parametrize(
    ("biz_step", "disposition", "code"),
    [
        ("shipping", "in_transit", "warehouse_dispatched"),
        ("departing", None, "departed"),
        ("arriving", None, "arrived"),
        ("receiving", "in_progress", "warehouse_received"),
        ("loading", None, "loaded"),
        ("unloading", None, "unloaded"),
        ("transporting", None, "in_transit"),
        ("holding", "sellable_not_accessible", "exception"),
        ("accepting", None, "picked_up"),
        ("receiving", "damaged", "damaged"),
        ("receiving", "returned", "returned"),
        ("retail_selling", "retail_sold", "delivered"),
        (None, "in_transit", "in_transit"),
        ("inspecting", "damaged", "damaged"),
        ("storing", "urn:epcglobal:cbv:disp:stolen", "lost"),
    ],
)
def test_bizstep_and_disposition_map_to_hub_event_codes(
    biz_step: str | None, disposition: str | None, code: str
) -> None:
    (record,) = run(document(object_event(bizStep=biz_step, disposition=disposition)))
    assert isinstance(record, Record)
    assert record.event_code == code


@pytest.mark.parametrize(
    ("biz_step", "disposition", "partner", "field", "note", "untracked"),
    [
        ("hub:weighing", None, "bizstep:hub:weighing", "bizStep",
         "unknown bizStep 'hub:weighing'", False),
        ("receiving", "hub:wet", "disp:hub:wet", "disposition",
         "unknown disposition 'hub:wet'", False),
        ("commissioning", None, "bizstep:commissioning", "bizStep",
         "bizStep 'commissioning' is not a parcel tracking event", True),
    ],
)  # fmt: skip
def test_steps_without_a_hub_event_are_left_to_the_feeds_mapping_with_their_name(
    biz_step: str, disposition: str | None, partner: str, field: str, note: str, untracked: bool
) -> None:
    (record,) = run(document(object_event(bizStep=biz_step, disposition=disposition)))
    assert isinstance(record, Record)
    assert (record.event_code, record.partner_code) == ("", partner)
    assert record.code_field == "/epcisBody/eventList/0/" + field
    assert (record.code_note, record.code_untracked) == (note, untracked)


def test_an_event_without_bizstep_or_disposition_is_rejected() -> None:
    (rejected,) = run(document(object_event(bizStep=None, disposition=None)))
    assert isinstance(rejected, RecordError)
    assert rejected.field == "/epcisBody/eventList/0/bizStep"
    assert rejected.reason == "event has neither bizStep nor disposition"


def test_every_mapped_code_is_in_the_hub_vocabulary() -> None:
    mapped = {c for c in [*BIZSTEP_CODES.values(), *DISPOSITION_CODES.values()] if c}
    assert mapped <= set(EVENT_CODES)


def test_the_code_tables_cover_every_value_the_official_schema_allows() -> None:
    def enum(name: str, definition: str) -> set[str]:
        schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        return set(schema["definitions"][definition]["anyOf"][1]["enum"])

    assert enum("bizStep-JSON-Schema.json", "bizStep") == set(BIZSTEP_CODES)
    assert enum("disposition-JSON-Schema.json", "disposition") == set(DISPOSITION_CODES)


def test_a_partners_own_uri_is_not_taken_for_a_cbv_value() -> None:
    assert cbv_name("https://example.com/bizstep/shipping", "bizstep") == (
        "https://example.com/bizstep/shipping"
    )
    assert cbv_name("urn:epcglobal:cbv:btt:po", "btt") == "po"
