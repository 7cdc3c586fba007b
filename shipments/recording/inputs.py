"""What the recorder is given and what it answers.

`EventInput` is one normalized event (the normalizer builds it from a parsed record);
`ShipmentFacts` is what a batch says about a shipment (its blanks are filled, never
overwritten); `RecordResult` is what a batch did.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(slots=True)
class EventInput:
    """A normalized event, ready to record. `occurred_at` is aware and in UTC."""

    line: int
    code: str
    occurred_at: datetime
    utc_offset_minutes: int
    tz_source: str
    tracking_number: str = ""
    unit_number: str = ""
    unit_kind: str = ""
    location_name: str = ""
    location_code: str = ""
    country: str = ""
    description: str = ""
    order_number: str = ""
    carrier: str = ""
    transport_mode: str = ""
    weight_kg: Decimal | None = None
    raw: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def dedupe_key(self, source: str) -> uuid.UUID:
        """Identity within a source: (source, parcel or unit, code, time, place).

        The first 128 bits of a sha256, stored as a uuid: a 16-byte key keeps the unique index
        small, which is most of the cost of inserting an event.
        """
        return uuid.UUID(dedupe_hex(source, self, self.occurred_at.isoformat()))


def dedupe_hex(source: str, event: EventInput, occurred_at: str) -> str:
    """`EventInput.dedupe_key` as 32 hex digits (PostgreSQL reads them as a uuid).

    The recorder keeps keys as text: building a uuid.UUID per event cost more than hashing it.
    occurred_at must stay in the hash: the events table is unique on (key, occurred_at), per
    monthly partition, and the recorder probes a key in its occurred_at's partition only
    (shipments.recording.statements); both equal "unique key" only while the key fixes the time.
    """
    subject = event.tracking_number or f"unit:{event.unit_number}"
    place = event.location_code or event.location_name.strip().lower()
    text = "|".join((source, subject, event.code, occurred_at, place))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(slots=True)
class RecordResult:
    created: int = 0
    duplicates: int = 0
    status_changes: int = 0
    # (line, line it repeats) for rows that repeat an event of the same run: a duplicate row
    # inside one file, which the operator should hear about (re-deliveries stay silent).
    repeated_lines: list[tuple[int, int]] = field(default_factory=list)


_ORIGIN_STAGES = frozenset({"first_mile", "export_customs"})
_DESTINATION_STAGES = frozenset({"import_customs", "last_mile"})


@dataclass(slots=True)
class ShipmentFacts:
    """What a batch says about a shipment; it only ever fills blanks (first value wins)."""

    order_number: str = ""
    carrier: str = ""
    transport_mode: str = ""
    origin_country: str = ""
    destination_country: str = ""
    weight_kg: Decimal | None = None
    currency: str = ""
    declared_value: Decimal | None = None

    def add(self, event: EventInput, stage: str) -> None:
        # Called once per event in the batch: plain assignments, no temporary object.
        self.order_number = self.order_number or event.order_number
        self.carrier = self.carrier or event.carrier
        self.transport_mode = self.transport_mode or event.transport_mode
        if stage in _ORIGIN_STAGES:
            self.origin_country = self.origin_country or event.country
        elif stage in _DESTINATION_STAGES:
            self.destination_country = self.destination_country or event.country
        if self.weight_kg is None:
            self.weight_kg = event.weight_kg

    def merge(self, other: ShipmentFacts) -> None:
        for name in self.__slots__:
            if getattr(self, name) in ("", None):
                setattr(self, name, getattr(other, name))
