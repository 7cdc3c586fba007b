"""GS1 EPCIS 2.0 JSON parser: schema failures, and the parser's own checks without the schema."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.warehouses.parsers.epcis_documents import (
    CONTAINER,
    document,
    errors,
    object_event,
    records,
    run,
    run_file,
    tz,
)
from warehouses.parsers import epcis
from warehouses.parsers.base import FormatError, Record, RecordError
from warehouses.parsers.epcis import (
    SCHEMA_DIR,
)
from warehouses.parsers.epcis import schema as epcis_schema

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
