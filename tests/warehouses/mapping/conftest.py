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
        "eventTime": "2024-03-05T16:30:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [epc],
        "action": "OBSERVE",
        **fields,
    }


# An X12 214 whose AT7 status code (VD) is outside element 1650's table; times carry an offset
# (time code 08 = UTC+8), so no zone rule is involved.
X12_ISA = (
    "ISA*00*          *00*          *ZZ*CARRIERX       *ZZ*HUBRECEIVER    *240305*1200*U*00401*"
    "000000777*0*P*:~"
)


def x12_214(code: str, tracking: str = "HEK200000001CN") -> bytes:
    return (
        X12_ISA
        + f"""
GS*QM*CARRIERX*HUBRECEIVER*20240305*1200*77*X*004010~
ST*214*0001~
B10*PRO-1*{tracking}*CARX~
LX*1~
AT7*{code}*NS***20240305*1630*08~
SE*5*0001~
GE*1*77~
IEA*1*000000777~
"""
    ).encode()


def iftsta(*statuses: tuple[str, str]) -> bytes:
    """An IFTSTA with one consignment per (consignment number, STS-02 element as sent)."""
    groups = "".join(
        f"CNI+{i}+{number}'\nSTS+1+{code}'\nDTM+334:2024030516{29 + i}?+08:303'\n"
        for i, (number, code) in enumerate(statuses, start=1)
    )
    segments = 3 + 3 * len(statuses)
    return (
        "UNB+UNOC:3+CARRIERE:ZZ+HUB:ZZ+240305:1200+ICR88'\n"
        "UNH+M1+IFTSTA:D:01B:UN'\n"
        "BGM+23+RPT88+9'\n"
        f"{groups}UNT+{segments}+M1'\nUNZ+1+ICR88'\n"
    ).encode()
