"""The contract between format parsers and the ingest pipeline.

Parsers are pure: they read bytes, never touch the database, and yield one item per record:
either a `Record` (something the normalizer can turn into an event, a unit membership or a
shipment fact) or a `RecordError` (a precise reason the operator will see). A parser that cannot
go on at all (a corrupt interchange envelope, an undecodable header) raises `FormatError`;
every record yielded before it is still kept.

Line numbers are 1-based physical lines for text formats and 1-based segment numbers for EDI,
so an operator can open the file and find the record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO, Literal, Protocol

# How much of a record's raw text is kept with it (what the operator sees, what a replay sends):
# the first 2,000 characters, in every format.
RAW_LIMIT = 2000

RecordKind = Literal["event", "membership", "shipment", "customs_document", "retraction"]

# How the time zone of an event was known (docs/places.md).
# "location" is no longer written: events stored before the gazetteer keep it.
TzSource = Literal[
    "explicit",
    "separate_field",
    "locode",
    "city",
    "airport",
    "coordinates",
    "country",
    "warehouse",
    "feed_default",
]


class FormatError(Exception):
    """The payload cannot be read any further (broken envelope, unreadable header)."""

    def __init__(self, reason: str, *, line: int = 0, field: str = "", raw: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.field = field
        self.raw = raw

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.reason}"


class RecordRejected(Exception):
    """One record cannot be used; the record beside it goes on (stored as a RejectedRecord).

    The one exception parsers, the normaliser and the appliers raise for a record: `field` is
    the partner's name for the field at fault, `line`/`raw` locate it when the raiser knows
    them better than the record does, `unknown_code` is set when the reason is a partner code
    with no mapping (the admin's "Unknown codes" page lists those).
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str = "",
        line: int = 0,
        raw: str = "",
        unknown_code: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.line = line
        self.raw = raw
        self.unknown_code = unknown_code


@dataclass(slots=True)
class RecordError:
    """One record that could not be used; stored as a RejectedRecord."""

    line: int
    raw: str
    reason: str
    field: str = ""
    # The partner code, as the feed's code mapping writes it, when the record was rejected
    # because that code has no event code (the admin counts and maps these: docs/mapping.md).
    unknown_code: str = ""


@dataclass(slots=True)
class Record:
    """One logical record from a payload, in the hub's vocabulary where the parser knows it.

    `event_time` is either a string the normalizer parses (ISO 8601, with or without offset) or a
    `datetime` the parser built (naive = local to somewhere, aware = explicit offset).

    Codes (one model for every format, docs/mapping.md): `partner_code` is the partner's code as
    the feed's code mapping writes it ("VD", "AF", "bizstep:shipping"); `event_code` is what the
    format's standard table suggests for it ("" when the table has no event for it). The parser
    never rejects a record for its code: the normalizer decides, feed mapping first, then the
    suggestion, then the feed's unknown-code policy. Without a suggestion, `code_note` says why
    ("unknown status code 'VD' (not in UN/ECE Rec 24)"), `code_field` names where the code is
    (STS02, AT7-01, a JSON pointer), and `code_untracked` marks a code the standard knows but that
    is not a tracking event (EPCIS `commissioning`): rejected unless mapped, whatever the policy.
    CSV/JSON parsers leave `event_code` empty; there the hub's own codes are the standard table.
    """

    line: int
    raw: str
    kind: RecordKind = "event"
    tracking_number: str = ""
    unit_id: str = ""
    unit_kind: str = ""  # container, uld, pallet, bag, train, flight
    event_code: str = ""
    partner_code: str = ""
    code_field: str = ""
    code_note: str = ""
    code_untracked: bool = False
    event_time: str | datetime | None = None
    time_zone: str = ""  # IANA zone given by the record itself
    location_name: str = ""
    location_code: str = ""  # UN/LOCODE where known (a 3-letter code is an IATA airport)
    country: str = ""  # ISO 3166-1 alpha-2
    # The place's parts where the format gives them (X12 N4/MS1, EPCIS geo): only the gazetteer
    # reads them, to find the zone of a local time (warehouses/normalize/places.py).
    city: str = ""
    state: str = ""  # state / province / subdivision code
    postal_code: str = ""
    latitude: float | None = None
    longitude: float | None = None
    description: str = ""
    order_number: str = ""
    carrier: str = ""
    transport_mode: str = ""  # air, rail, road, sea, postal
    weight_kg: Decimal | None = None
    # membership records: unit_id + tracking_number, loaded_at in event_time, unloaded_at below
    unloaded_at: str | datetime | None = None
    # anything format-specific worth keeping (references, receipts, customs fields)
    extra: dict[str, object] = field(default_factory=dict)


ParseItem = Record | RecordError


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Per-feed settings a parser may need; parsers ignore what does not apply to them."""

    encoding: str = "utf-8"  # utf-8 (BOM tolerated) or gb18030 (gbk is read as gb18030)
    column_mapping: Mapping[str, str] = field(default_factory=dict)  # our field -> their column
    max_line_bytes: int = 1_000_000
    # Hostile-input limits (parsers.limits): nesting of a JSON record, fields of one record.
    max_json_depth: int = 64
    max_fields: int = 1000


class Parser(Protocol):
    def __call__(self, stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]: ...
