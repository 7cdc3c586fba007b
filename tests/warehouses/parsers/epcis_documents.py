"""Small EPCIS 2.0 documents built in tests, and the parser run over them."""

from __future__ import annotations

import io
import json
from typing import Any

from warehouses.parsers.base import ParseItem, ParseOptions
from warehouses.parsers.epcis import parse

PARCEL_1 = "urn:epc:id:sscc:6901234.0000000011"


def run(data: bytes | str | dict[str, Any], *, validate: bool = True) -> list[ParseItem]:
    if isinstance(data, dict):
        data = json.dumps(data, indent=2)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return list(parse(io.BytesIO(data), ParseOptions(), validate=validate))


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T00:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def object_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:11111111-2222-3333-4444-555555555555",
        "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [PARCEL_1],
        "action": "OBSERVE",
        "bizStep": "receiving",
        "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}
