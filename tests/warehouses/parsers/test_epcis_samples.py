"""GS1 EPCIS 2.0 JSON parser: the shared GS1 samples, validated and read record by record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipments.statuses import EVENT_CODES
from tests.warehouses.parsers.epcis_documents import (
    CONTAINER,
    EPCIS,
    errors,
    records,
    run_file,
    tz,
)
from warehouses.parsers.base import ParseItem, Record, RecordError
from warehouses.parsers.epcis import (
    load_validator,
)
from warehouses.parsers.epcis.codes import with_bare_cbv_names

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
