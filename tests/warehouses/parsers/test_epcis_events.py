"""GS1 EPCIS 2.0 JSON parser: event types and actions, EPC identifiers, and fuzzing."""

from __future__ import annotations

import copy
import io
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.warehouses.parsers.epcis_documents import (
    CONTAINER,
    CONTAINER_ID,
    PARCEL_1,
    PARCEL_3,
    document,
    errors,
    object_event,
    records,
    run,
    tz,
)
from warehouses.parsers.base import FormatError, ParseOptions, Record, RecordError
from warehouses.parsers.epcis import (
    epc_to_key,
    parse,
)

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
