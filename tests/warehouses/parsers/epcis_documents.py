"""Small EPCIS 2.0 documents built in tests, the parser run over them, and the fixture files
and helpers the EPCIS test modules share."""

from __future__ import annotations

import io
import itertools
import json
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from tests.samples import SAMPLES
from warehouses.parsers.base import ParseItem, ParseOptions, Record, RecordError
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
