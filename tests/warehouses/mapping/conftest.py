"""Payload builders for the mapping, identifier and phantom-row tests (issue 13)."""

from __future__ import annotations

import json
from typing import Any

EPCIS_CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def epcis(*events: dict[str, Any]) -> bytes:
    """An EPCIS 2.0 JSON-LD document with these events."""
    return json.dumps(
        {
            "@context": EPCIS_CONTEXT,
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-03-01T00:00:00Z",
            "epcisBody": {"eventList": list(events)},
        },
        indent=2,
    ).encode()


def object_event(epc: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2024-03-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [epc],
        "action": "OBSERVE",
        **fields,
    }
