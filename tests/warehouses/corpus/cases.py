"""The corpus's vocabulary: an expected stored Event, a Reject, and the Case of one public file.
The cases themselves are written down per format (cases_x12.py, cases_edifact.py, cases_epcis.py,
cases_ceb.py); test_corpus.py runs them all."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Event:
    """One stored event: who (parcel or unit), what, when (UTC), how its zone was known, where."""

    tracking: str  # the shipment's tracking number, or "" for an event on a transport unit
    code: str
    at: str  # UTC, ISO 8601
    tz_source: str
    place: str = ""
    locode: str = ""
    country: str = ""
    unit: str = ""  # the unit's GS1 key, as the hub numbers units


@dataclass(frozen=True)
class Reject:
    """A rejected record: its line (segment number for EDI) and words its field or reason must
    contain."""

    line: int
    says: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    path: str  # under tests/data/
    fmt: str
    status: str
    events: tuple[Event, ...] = ()
    rejects: tuple[Reject, ...] = ()
    # Every shipment the run leaves behind, with its status: a rejected record leaves none.
    shipments: dict[str, str] = field(default_factory=dict)
    code_mapping: dict[str, str] = field(default_factory=dict)
    missing: str = ""  # issue 13 behaviour not on main yet: the case is xfail(strict=True)


LA = "America/Los_Angeles"  # the receiving warehouse's zone: it must appear nowhere below
