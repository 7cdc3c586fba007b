"""GS1 EPCIS 2.0 JSON parser: the shared GS1 samples, our container fixture, and fuzzing."""

from __future__ import annotations

import copy
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.statuses import EVENT_CODES
from tests.samples import SAMPLES
from tests.warehouses.parsers.epcis_documents import PARCEL_1, document, object_event, run
from warehouses.parsers import epcis
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.epcis import (
    SCHEMA_DIR,
    epc_to_key,
    load_validator,
    parse,
)
from warehouses.parsers.epcis import schema as epcis_schema
from warehouses.parsers.epcis.codes import with_bare_cbv_names

EPCIS = SAMPLES / "epcis"
FIXTURES = Path(__file__).parent / "fixtures" / "epcis"
CONTAINER = FIXTURES / "container_suifenhe_malaszewicze.jsonld"

CONTAINER_ID = "urn:epc:id:giai:6901234.TGHU8837461"
PARCEL_2 = "https://id.gs1.org/00/069012340000000028"
PARCEL_3 = "urn:epc:id:sscc:6901234.0000000035"


def tz(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def run_file(path: Path) -> list[ParseItem]:
    with path.open("rb") as stream:
        return list(parse(stream, ParseOptions()))


def records(items: list[ParseItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def errors(items: list[ParseItem]) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def event_start_lines(text: str) -> list[int]:
    """1-based lines of the eventList members in our pretty-printed fixtures."""
    lines = text.splitlines()
    return [
        number
        for number, (line, following) in enumerate(itertools.pairwise(lines), start=1)
        if line.strip() == "{" and following.strip().endswith('Event",')
    ]


# --------------------------------------------------------------------------- the GS1 samples

SAMPLE_FILES = sorted(EPCIS.glob("*.jsonld"))
# Kept in their last Apache-2.0 version, which predates the final schema by one field.
PRE_FINAL_DRAFTS = {
    "aggregation_event_all_possible_fields.jsonld",
    "object_event_all_possible_fields.jsonld",
    "transaction_event_all_possible_fields.jsonld",
}


def test_the_shared_samples_are_all_there() -> None:
    assert len(SAMPLE_FILES) == 9


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_document_and_event_validates_against_the_official_schema(
    path: Path,
) -> None:
    validator = load_validator()
    assert validator is not None
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert validator.envelope_error(doc, ("epcisBody", "eventList")) is None
    for event in doc["epcisBody"]["eventList"]:
        if path.name in PRE_FINAL_DRAFTS:
            assert validator.event_error(event) == (
                ("sensorElementList", 0, "type"),
                "unknown field 'type' (neither an EPCIS field nor a prefixed extension)",
            )
        else:
            assert validator.event_error(event) is None


def _broken_copies(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The event with one field dropped, retyped or spoilt, or one field added."""
    for key in event:
        yield {k: v for k, v in event.items() if k != key}
        for wrong in (42, "x", [], {}, None, [42], {"id": 42}):
            yield {**event, key: wrong}
    yield {**event, "hub_note": "x"}
    yield {**event, "ex:note": "x"}  # a prefixed extension: allowed
    for when in ("2024-03-01T08:00:00", "2024-03-01 08:00+08:00", "2024-13-01T08:00:00Z"):
        yield {**event, "eventTime": when}
    yield {**event, "readPoint": {"id": "not a uri"}}
    yield {**event, "bizLocation": {"id": "urn:epc:id:sgln:6901234.00001.0"}}


def test_the_fast_schema_check_agrees_with_jsonschema_on_valid_and_broken_events() -> None:
    validator = load_validator()
    assert validator is not None
    verdicts = {True: 0, False: 0}
    for path in [*SAMPLE_FILES, CONTAINER]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for event in doc["epcisBody"]["eventList"]:
            for case in [event, *_broken_copies(event)]:
                case = with_bare_cbv_names(case)
                valid = not list(validator.event.iter_errors(case))
                assert validator.event_fast.is_valid(case) == valid, case
                verdicts[valid] += 1
    # Both verdicts are well represented, or the comparison proves little.
    assert verdicts[True] > 100 and verdicts[False] > 1000, verdicts


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_record_from_a_sample_says_it_was_schema_validated(path: Path) -> None:
    for record in records(run_file(path)):
        assert record.extra["schema_validated"] is True
        assert record.event_code == "" or record.event_code in EVENT_CODES


# (line, kind or "error", tracking_number or unit_id, event_code or error field, time)
SAMPLE_EXPECTATIONS: dict[str, list[tuple[int, str, str, str, datetime | None]]] = {
    "Example_9.6.1-ObjectEvent.jsonld": [
        (10, "event", "urn:epc:id:sgtin:0614141.107346.2017", "warehouse_dispatched",
         datetime(2005, 4, 3, 20, 33, 31, 116000, tzinfo=tz(-6))),
        (10, "event", "urn:epc:id:sgtin:0614141.107346.2018", "warehouse_dispatched",
         datetime(2005, 4, 3, 20, 33, 31, 116000, tzinfo=tz(-6))),
        (23, "event", "urn:epc:id:sgtin:0614141.107346.2018", "warehouse_received",
         datetime(2005, 4, 4, 20, 33, 31, 116000, tzinfo=tz(-6))),
    ],
    # quantityList only: no EPC, so no parcel; ignored without an error
    "Example_9.6.2-ObjectEvent.jsonld": [],
    "Example_9.6.3-AggregationEvent.jsonld": [
        (10, "event", "urn:epc:id:sscc:0614141.1234567890", "warehouse_received",
         datetime(2013, 6, 8, 16, 58, 56, 591000, tzinfo=tz(2))),
    ],
    "Example_9.6.4-TransformationEvent.jsonld": [
        (10, "error", "", "/epcisBody/eventList/0/type", None),
    ],
    "ErrorDeclarationAndCorrectiveEvent.jsonld": [
        (10, "retraction", "", "", datetime(2020, 1, 15, tzinfo=tz(1))),
        (46, "error", "", "/epcisBody/eventList/1/type", None),
    ],
    "Example-TransactionEvents-2020_07_03y.jsonld": [
        # A bizStep outside the CBV: no suggestion, the feed's mapping or policy decides.
        (7, "event", "urn:epc:id:gsrn:95252084.000000001", "",
         datetime(2019, 10, 4, 14, 12, tzinfo=tz(1))),
        (17, "event", "urn:epc:id:giai:952005385.w2", "in_transit",
         datetime(2014, 12, 12, 12, 0, tzinfo=tz(2))),
    ],
    # The Apache-2.0 drafts (see tests/data/README.md) still give each sensor element a "type",
    # which the final 2.0 schema dropped: the one event is rejected at that field.
    "aggregation_event_all_possible_fields.jsonld": [
        (7, "error", "", "/epcisBody/eventList/0/sensorElementList/0/type", None),
    ],
    "object_event_all_possible_fields.jsonld": [
        (7, "error", "", "/epcisBody/eventList/0/sensorElementList/0/type", None),
    ],
    "transaction_event_all_possible_fields.jsonld": [
        (7, "error", "", "/epcisBody/eventList/0/sensorElementList/0/type", None),
    ],
}  # fmt: skip


def summarise(item: ParseItem) -> tuple[int, str, str, str, datetime | None]:
    if isinstance(item, RecordError):
        return (item.line, "error", "", item.field, None)
    when = item.event_time if isinstance(item.event_time, datetime) else None
    return (item.line, item.kind, item.tracking_number or item.unit_id, item.event_code, when)


@pytest.mark.parametrize("name", sorted(SAMPLE_EXPECTATIONS))
def test_each_sample_yields_exactly_the_expected_records_and_rejections(name: str) -> None:
    items = run_file(EPCIS / name)
    assert [summarise(item) for item in items] == SAMPLE_EXPECTATIONS[name]


def test_sample_times_keep_the_instant_and_carry_the_local_offset() -> None:
    (record,) = records(run_file(EPCIS / "Example_9.6.3-AggregationEvent.jsonld"))
    assert isinstance(record.event_time, datetime)
    # eventTime 14:58:56.591Z with eventTimeZoneOffset +02:00
    assert record.event_time == datetime(2013, 6, 8, 14, 58, 56, 591000, tzinfo=UTC)
    assert record.event_time.utcoffset() == timedelta(hours=2)
    assert record.extra["local_offset"] == "+02:00"
    assert record.extra["offset_disagrees"] is False
    assert record.extra["tz_source"] == "explicit"


def test_an_object_event_keeps_event_id_bizstep_location_and_the_single_purchase_order() -> None:
    first = records(run_file(EPCIS / "Example_9.6.1-ObjectEvent.jsonld"))[0]
    assert first.partner_code == "bizstep:shipping"
    assert first.extra["event_id"] == (
        "ni:///sha-256;df7bb3c352fef055578554f09f5e2aa41782150ced7bd0b8af24dd3ccb30ba69?ver=CBV2.0"
    )
    assert first.extra["epc_key"] == "sgtin:10614141073464.2017"
    assert first.extra["disposition"] == "in_transit"
    assert first.location_name == "urn:epc:id:sgln:0614141.07346.1234"
    assert first.location_code == ""
    assert first.order_number == "http://transaction.acme.com/po/12345678"
    assert first.extra["biz_transactions"] == [
        {"type": "po", "id": "http://transaction.acme.com/po/12345678"}
    ]
    assert first.raw.startswith("{")
    assert '"eventID"' in first.raw


def test_an_observed_aggregation_is_an_event_on_the_unit_with_its_children_listed() -> None:
    (record,) = records(run_file(EPCIS / "Example_9.6.3-AggregationEvent.jsonld"))
    assert record.kind == "event"
    assert record.tracking_number == ""
    assert record.unit_id == "urn:epc:id:sscc:0614141.1234567890"
    assert record.extra["unit_key"] == "sscc:106141412345678908"
    assert record.extra["child_epcs"] == [
        "urn:epc:id:sgtin:0614141.107346.2017",
        "urn:epc:id:sgtin:0614141.107346.2018",
    ]


def test_error_declarations_in_the_samples_become_retractions_of_the_declared_event() -> None:
    retraction, corrective = run_file(EPCIS / "ErrorDeclarationAndCorrectiveEvent.jsonld")
    assert isinstance(retraction, Record)
    assert retraction.kind == "retraction"
    assert retraction.extra["event_id"] == "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8"
    assert retraction.extra["corrective_event_ids"] == [
        "urn:uuid:404d95fc-9457-4a51-bd6a-0bba133845a8"
    ]
    assert retraction.extra["reason"] == "incorrect_data"
    assert isinstance(corrective, RecordError)
    assert corrective.reason == "unsupported EPCIS event type 'TransformationEvent'"


def test_an_unknown_bizstep_is_left_to_the_feeds_mapping_with_its_name() -> None:
    items = run_file(EPCIS / "Example-TransactionEvents-2020_07_03y.jsonld")
    assert errors(items) == []
    unknown = records(items)[0]
    step = "http://epcis.example.org/hc/bizstep/summarising_discharge"
    assert (unknown.event_code, unknown.partner_code) == ("", f"bizstep:{step}")
    assert unknown.code_field == "/epcisBody/eventList/0/bizStep"
    assert unknown.code_note == f"unknown bizStep {step!r}"
    assert not unknown.code_untracked


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


# --------------------------------------------------------------------------- schema failures

GOOD_AND_BAD = """{
  "@context": "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
  "type": "EPCISDocument",
  "schemaVersion": "2.0",
  "creationDate": "2024-03-01T00:00:00Z",
  "epcisBody": {
    "eventList": [
      {
        "type": "ObjectEvent", "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00", "epcList": ["urn:epc:id:sscc:6901234.0000000011"],
        "action": "OBSERVE", "bizStep": "receiving"
      },
      {
        "type": "ObjectEvent", "eventTime": "2024-03-01T09:00:00+08:00",
        "eventTimeZoneOffset": "+8", "epcList": ["urn:epc:id:sscc:6901234.0000000028"],
        "action": "OBSERVE", "bizStep": "shipping"
      },
      {
        "type": "ObjectEvent", "eventTime": "2024-03-01T10:00:00+08:00",
        "eventTimeZoneOffset": "+08:00", "epcList": ["urn:epc:id:sscc:6901234.0000000035"],
        "action": "OBSERVE", "bizStep": "shipping"
      }
    ]
  }
}
"""


def test_one_schema_invalid_event_is_rejected_and_its_neighbours_are_kept() -> None:
    items = run(GOOD_AND_BAD)
    assert [type(item).__name__ for item in items] == ["Record", "RecordError", "Record"]
    rejected = items[1]
    assert isinstance(rejected, RecordError)
    assert rejected.line == 13  # the physical line where the bad event's "{" is
    assert rejected.field == "/epcisBody/eventList/1/eventTimeZoneOffset"
    assert "does not match the EPCIS 2.0 schema" in rejected.reason
    assert "'+8'" in rejected.reason
    assert rejected.raw.startswith("{")
    assert '"+8"' in rejected.raw
    assert [r.line for r in records(items)] == [8, 18]


@pytest.mark.parametrize(
    ("change", "field", "reason_part"),
    [
        ({"action": "MOVE"}, "/epcisBody/eventList/0/action", "'MOVE' is not one of"),
        ({"hub_note": "x"}, "/epcisBody/eventList/0/hub_note", "unknown field 'hub_note'"),
        ({"eventTime": "2024-03-01 08:00"}, "/epcisBody/eventList/0/eventTime", "date-time"),
        ({"eventTime": "2024-03-01T08:00:00"}, "/epcisBody/eventList/0/eventTime", "date-time"),
        ({"readPoint": {"name": "x"}}, "/epcisBody/eventList/0/readPoint", "'id' is a required"),
        ({"epcList": None}, "/epcisBody/eventList/0", "'epcList' is a required property"),
    ],
)
def test_schema_failures_name_the_json_pointer_of_the_offending_field(
    change: dict[str, Any], field: str, reason_part: str
) -> None:
    (rejected,) = run(document(object_event(**change)))
    assert isinstance(rejected, RecordError)
    assert rejected.field == field
    assert reason_part in rejected.reason


@pytest.mark.parametrize(
    ("data", "line", "reason_part"),
    [
        (b'{"type": "EPCISDocument",\n "epcisBody": {\n', 3, "not JSON"),
        (b"\xff\xfe{}", 1, "not utf-8 text"),
        (b"[]", 1, "an EPCIS document is a JSON object"),
        (b'{"type": "ObjectEvent"}', 1, "not an EPCIS document: type is 'ObjectEvent'"),
        (b'{"type": "EPCISDocument", "epcisBody": {}}', 1, "without epcisBody.eventList"),
    ],
)
def test_a_broken_document_raises_format_error_at_its_line(
    data: bytes, line: int, reason_part: str
) -> None:
    with pytest.raises(FormatError) as raised:
        run(data)
    assert raised.value.line == line
    assert reason_part in str(raised.value)


def test_an_invalid_envelope_raises_format_error_naming_the_field() -> None:
    doc = document(object_event())
    doc["schemaVersion"] = 2
    with pytest.raises(FormatError) as raised:
        run(doc)
    assert "/schemaVersion" in raised.value.reason
    doc = document(object_event())
    del doc["creationDate"]
    with pytest.raises(FormatError, match="'creationDate' is a required property"):
        run(doc)


def test_a_byte_order_mark_is_tolerated() -> None:
    items = run(b"\xef\xbb\xbf" + json.dumps(document(object_event())).encode())
    assert [r.event_code for r in records(items)] == ["warehouse_received"]


def test_a_query_document_is_read_from_its_results_body() -> None:
    doc = document()
    doc["type"] = "EPCISQueryDocument"
    del doc["schemaVersion"], doc["creationDate"]
    doc["epcisBody"] = {
        "queryResults": {
            "queryName": "SimpleEventQuery",
            "resultsBody": {"eventList": [object_event()]},
        }
    }
    (record,) = run(doc)
    assert isinstance(record, Record)
    assert record.event_code == "warehouse_received"


# --------------------------------------------------------------------------- without the schema


def test_without_validation_records_say_they_were_not_validated() -> None:
    items = run(CONTAINER.read_bytes(), validate=False)
    assert len(records(items)) == len(run_file(CONTAINER))
    assert all(r.extra["schema_validated"] is False for r in records(items))


def test_without_the_schema_the_parsers_own_checks_still_reject_bad_events() -> None:
    items = run(
        document(
            object_event(eventTimeZoneOffset="+8"),
            object_event(epcList="not a list"),
            object_event(eventTime="yesterday"),
            object_event(eventTime="2024-02-30T08:00:00+08:00"),
        ),
        validate=False,
    )
    assert [(e.field, e.reason) for e in errors(items)] == [
        ("/epcisBody/eventList/0/eventTimeZoneOffset", "invalid time zone offset '+8'"),
        ("/epcisBody/eventList/1/epcList", "epcList is not a list of identifiers"),
        ("/epcisBody/eventList/2/eventTime", "invalid date-time 'yesterday'"),
        (
            "/epcisBody/eventList/3/eventTime",
            "impossible date-time '2024-02-30T08:00:00+08:00': day is out of range for month",
        ),
    ]


def test_without_the_schema_an_event_time_without_offset_takes_the_separate_offset() -> None:
    (record,) = run(
        document(object_event(eventTime="2024-03-01T08:00:00", eventTimeZoneOffset="+08:00")),
        validate=False,
    )
    assert isinstance(record, Record)
    assert record.event_time == datetime(2024, 3, 1, 8, 0, tzinfo=tz(8))
    assert record.extra["tz_source"] == "separate_field"


def test_without_any_offset_the_event_time_stays_naive() -> None:
    (record,) = run(
        document(object_event(eventTime="2024-03-01T08:00:00", eventTimeZoneOffset=None)),
        validate=False,
    )
    assert isinstance(record, Record)
    assert record.event_time == datetime(2024, 3, 1, 8, 0)
    assert "tz_source" not in record.extra


def test_validation_is_active_by_default_from_the_schema_shipped_in_the_package() -> None:
    # An unprefixed unknown field passes the parser's own checks; only the official schema's
    # propertyNames rule refuses it, so this fails whenever validation is skipped.
    event = object_event(hub_note="x")
    (rejected,) = run(document(event))
    assert isinstance(rejected, RecordError)
    assert rejected.field == "/epcisBody/eventList/0/hub_note"
    assert rejected.reason.startswith("does not match the EPCIS 2.0 schema: unknown field")
    assert [type(item) for item in run(document(event), validate=False)] == [Record]
    assert SCHEMA_DIR.parent == Path(epcis.__file__).resolve().parent
    assert (SCHEMA_DIR / "LICENSE").is_file()


def test_a_missing_schema_is_an_error_not_a_skipped_validation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(epcis_schema, "SCHEMA_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="EPCIS JSON Schema is missing from the package"):
        epcis_schema._read_schemas()


def test_the_startup_check_reports_a_missing_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from warehouses.checks import epcis_schema_check

    assert epcis_schema_check() == []

    def missing() -> None:
        raise RuntimeError("the EPCIS JSON Schema is missing from the package")

    monkeypatch.setattr(epcis, "load_validator", missing)
    (error,) = epcis_schema_check()
    assert error.id == "warehouses.E001"


# --------------------------------------------------------------------------- event types


def aggregation(action: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "AggregationEvent",
        "eventTime": "2024-03-13T05:40:00+01:00",
        "eventTimeZoneOffset": "+01:00",
        "parentID": CONTAINER_ID,
        "action": action,
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}


def test_a_delete_without_children_ends_the_membership_of_every_child() -> None:
    items = run(document(aggregation("DELETE", bizStep="unpacking")))
    (member,) = records(items)
    assert member.kind == "membership"
    assert (member.unit_id, member.tracking_number) == (CONTAINER_ID, "")
    assert member.extra["all_children"] is True
    assert member.unloaded_at == datetime(2024, 3, 13, 5, 40, tzinfo=tz(1))


def test_an_add_with_a_step_the_hub_does_not_track_gives_only_memberships() -> None:
    items = run(document(aggregation("ADD", childEPCs=[PARCEL_1], bizStep="packing")))
    assert [r.kind for r in records(items)] == ["membership"]
    assert errors(items) == []


def test_an_add_with_an_unknown_step_gives_the_memberships_and_a_unit_event_to_map() -> None:
    items = run(document(aggregation("ADD", childEPCs=[PARCEL_1], bizStep="hub:stuffing")))
    assert errors(items) == []
    membership, unit_event = records(items)
    assert membership.kind == "membership"
    assert (unit_event.kind, unit_event.unit_id, unit_event.event_code) == (
        "event",
        CONTAINER_ID,
        "",
    )
    assert unit_event.partner_code == "bizstep:hub:stuffing"
    assert unit_event.code_field == "/epcisBody/eventList/0/bizStep"
    assert unit_event.code_note == "unknown bizStep 'hub:stuffing'"


def test_an_observe_without_a_parent_reports_the_children_one_by_one() -> None:
    items = run(document(aggregation("OBSERVE", parentID=None, childEPCs=[PARCEL_1, PARCEL_3],
                                     bizStep="arriving")))  # fmt: skip
    assert [(r.tracking_number, r.unit_id, r.event_code) for r in records(items)] == [
        (PARCEL_1, "", "arrived"),
        (PARCEL_3, "", "arrived"),
    ]


def test_an_error_declaration_without_event_id_cannot_retract_anything() -> None:
    event = object_event(eventID=None, errorDeclaration={"declarationTime": "2024-03-02T00:00:00Z"})
    (rejected,) = run(document(event))
    assert isinstance(rejected, RecordError)
    assert rejected.field == "/epcisBody/eventList/0/eventID"


def test_a_transaction_without_a_purchase_order_or_tracked_step_is_rejected() -> None:
    event = {
        "type": "TransactionEvent",
        "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "bizTransactionList": [{"type": "inv", "bizTransaction": "urn:example:inv:1"}],
        "epcList": [PARCEL_1],
        "action": "ADD",
        "bizStep": "stocking",
    }
    (rejected,) = run(document(event))
    assert isinstance(rejected, RecordError)
    assert rejected.field == "/epcisBody/eventList/0/bizTransactionList"
    assert "links no purchase order" in rejected.reason


def test_association_events_are_reported_as_unsupported() -> None:
    event = {
        "type": "AssociationEvent",
        "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "parentID": "urn:epc:id:grai:4012345.55555.987",
        "childEPCs": ["urn:epc:id:giai:4000001.12345"],
        "action": "ADD",
        "bizStep": "assembling",
    }
    (rejected,) = run(document(event))
    assert isinstance(rejected, RecordError)
    assert rejected.reason == "unsupported EPCIS event type 'AssociationEvent'"


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("epc", "key"),
    [
        ("urn:epc:id:sscc:0614141.1234567890", "sscc:106141412345678908"),
        ("https://id.gs1.org/00/106141412345678908", "sscc:106141412345678908"),
        ("https://brand.example.com/00/106141412345678908", "sscc:106141412345678908"),
        ("106141412345678908", "sscc:106141412345678908"),
        # the GS1 EPC Tag Data Standard's own examples
        ("urn:epc:id:sgtin:0614141.812345.6789", "sgtin:80614141123458.6789"),
        ("https://id.gs1.org/01/80614141123458/21/6789", "sgtin:80614141123458.6789"),
        ("urn:epc:id:sgtin:0614141.812345.A%2FB", "sgtin:80614141123458.A/B"),
        ("urn:epc:id:sgln:0614141.12345.0", "sgln:0614141123452"),
        ("urn:epc:id:sgln:0614141.12345.400", "sgln:0614141123452.400"),
        ("https://id.gs1.org/414/0614141123452", "sgln:0614141123452"),
        ("urn:epc:id:giai:952005385.w2", "giai:952005385w2"),
        ("urn:epc:id:grai:0614141.12345.400", "grai:0614141.12345.400"),
        ("  PARCEL-42 ", "PARCEL-42"),
    ],
)
def test_epc_spellings_normalise_to_one_canonical_key(epc: str, key: str) -> None:
    assert epc_to_key(epc) == key


# --------------------------------------------------------------------------- robustness

FIXTURE_BYTES = CONTAINER.read_bytes()
FIXTURE_DOC = json.loads(FIXTURE_BYTES)


def only_declared_outcomes(data: bytes, validate: bool) -> None:
    try:
        for item in parse(io.BytesIO(data), ParseOptions(), validate=validate):
            assert isinstance(item, Record | RecordError)
            assert len(item.raw) <= 2000
            assert item.line >= 1
    except FormatError as exc:
        # the only exception a parser may raise, and it must say why
        reason = exc.reason
        assert reason


@settings(max_examples=200, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(FIXTURE_BYTES)),
    flips=st.lists(
        st.tuples(st.integers(0, len(FIXTURE_BYTES) - 1), st.integers(0, 255)), max_size=4
    ),
    validate=st.booleans(),
)
def test_truncated_or_corrupted_bytes_give_only_records_errors_or_format_errors(
    cut: int, flips: list[tuple[int, int]], validate: bool
) -> None:
    data = bytearray(FIXTURE_BYTES)
    for position, value in flips:
        data[position] = value
    only_declared_outcomes(bytes(data[:cut]), validate)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=10,
)  # fmt: skip
EVENT_KEYS = sorted({key for event in FIXTURE_DOC["epcisBody"]["eventList"] for key in event})


@settings(max_examples=200, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(FIXTURE_DOC["epcisBody"]["eventList"]) - 1),
    key=st.sampled_from([*EVENT_KEYS, "childEPCs", "quantityList", "errorDeclaration"]),
    value=JSON_VALUES,
    validate=st.booleans(),
)
def test_any_json_value_in_any_event_field_gives_only_declared_outcomes(
    index: int, key: str, value: object, validate: bool
) -> None:
    doc = copy.deepcopy(FIXTURE_DOC)
    doc["epcisBody"]["eventList"][index][key] = value
    only_declared_outcomes(json.dumps(doc).encode(), validate)


@settings(max_examples=100, deadline=500)
@given(envelope_key=st.sampled_from(["type", "epcisBody", "epcisHeader", "schemaVersion"]),
       value=JSON_VALUES)  # fmt: skip
def test_any_json_value_in_the_envelope_gives_only_declared_outcomes(
    envelope_key: str, value: object
) -> None:
    doc = copy.deepcopy(FIXTURE_DOC)
    doc[envelope_key] = value
    only_declared_outcomes(json.dumps(doc).encode(), False)
    only_declared_outcomes(json.dumps(doc).encode(), True)
