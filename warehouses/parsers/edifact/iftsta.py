"""EDIFACT IFTSTA content: one Record per STS status group of a checked message.

Tracking number: CNI-02 (C503 1004, the consignment's document
number; in the shared sample `4215A`, `5122C` ... while `RFF+DQ` there is a delivery-note number,
not a consignment identity). Without it: the first SSCC (GIN BJ) of the status, then RFF CN, BM,
AAS. `extra["tracking_number_source"]` says which one was used.

Status code: `partner_code` is STS-02 (C555 4405) as sent, `event_code` the UN/ECE Rec 24
table's suggestion or "" for a code outside it; the normalizer applies the feed's code mapping
and unknown-code policy (docs/mapping.md), so a status is never rejected here for its code.

Event time: DTM 334 (status event), then DTM 7 (effective) of the status group, then of the
consignment, then the message's DTM 137 (document date; EANCOM en-route reports often carry only
that). `extra["event_time_qualifier"]` names the DTM used. Formats 303/304/205 carry a zone and
give an aware datetime; 102/203/204 give a naive local datetime. Every DTM inside the status
group must be a real date, or the status is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from warehouses.parsers.base import ParseItem, Record, RecordError, RecordRejected
from warehouses.parsers.edifact.codes import (
    CONSIGNMENT_REFERENCE_QUALIFIERS,
    DATE_FORMATS,
    DOCUMENT_DATE_QUALIFIER,
    EVENT_DATE_QUALIFIERS,
    ORDER_REFERENCE_QUALIFIERS,
    TRANSPORT_MODES,
    WEIGHT_UNITS_TO_KG,
    event_for_status,
)
from warehouses.parsers.edifact.tokenizer import Segment, raw_of

if TYPE_CHECKING:
    from warehouses.parsers.edifact.envelope import Interchange

_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_ZONE = re.compile(r"(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})?")
_UTC_NAMES = frozenset({"Z", "UT", "UTC", "GMT"})


@dataclass(slots=True)
class _Context:
    """What one level (message, consignment, status group) says."""

    dates: list[Segment] = field(default_factory=list)
    references: list[Segment] = field(default_factory=list)
    locations: list[Segment] = field(default_factory=list)
    parties: list[Segment] = field(default_factory=list)
    transports: list[Segment] = field(default_factory=list)
    texts: list[Segment] = field(default_factory=list)
    identities: list[Segment] = field(default_factory=list)
    measures: list[Segment] = field(default_factory=list)

    def add(self, segment: Segment) -> None:
        target = {
            "DTM": self.dates,
            "RFF": self.references,
            "LOC": self.locations,
            "NAD": self.parties,
            "TDT": self.transports,
            "FTX": self.texts,
            "GIN": self.identities,
            "MEA": self.measures,
        }.get(segment.tag)
        if target is not None:
            target.append(segment)


@dataclass(slots=True)
class _Consignment:
    cni: Segment | None
    context: _Context = field(default_factory=_Context)


def parse_dtm(value: str, fmt: str) -> tuple[datetime, str]:
    """(datetime, precision "day"/"minute"/"second") for a DTM value; ValueError with a reason.

    Zone-carrying formats (205, 303, 304) give an aware datetime; the others a naive local one.
    """
    if not fmt:
        fmt = {8: "102", 12: "203", 14: "204"}.get(len(value), "")
        if not fmt or not value.isdigit():
            raise ValueError(f"date/time {value!r} has no format code and an unknown layout")
    layout = DATE_FORMATS.get(fmt)
    if layout is None:
        raise ValueError(f"unsupported date/time format code {fmt!r} (value {value!r})")
    digits = {"102": 8, "203": 12, "205": 12, "303": 12, "204": 14, "304": 14}[fmt]
    local, zone = value[:digits], value[digits:]
    if len(local) != digits or not local.isdigit():
        raise ValueError(f"date/time {value!r} does not match format {fmt} ({layout})")
    if fmt in {"102", "203", "204"} and zone:
        raise ValueError(f"date/time {value!r} is longer than format {fmt} ({layout})")
    try:
        moment = datetime(
            int(local[0:4]),
            int(local[4:6]),
            int(local[6:8]),
            int(local[8:10] or 0),
            int(local[10:12] or 0),
            int(local[12:14] or 0),
        )
    except ValueError:
        raise ValueError(f"impossible date/time {value!r} for format {fmt} ({layout})") from None
    precision = {8: "day", 12: "minute", 14: "second"}[digits]
    if fmt in {"102", "203", "204"}:
        return moment, precision
    return moment.replace(tzinfo=_parse_zone(zone, value, fmt)), precision


def _parse_zone(zone: str, value: str, fmt: str) -> timezone:
    if zone.upper() in _UTC_NAMES:
        return UTC
    match = _ZONE.fullmatch(zone)
    if fmt == "205" and not re.fullmatch(r"[+-]\d{4}", zone):
        match = None
    if match is None:
        # Named zones such as "CST" are ambiguous (China, US Central, Cuba): never guess.
        raise ValueError(f"time zone {zone!r} in {value!r} (format {fmt}) is not an offset")
    minutes = int(match["hh"]) * 60 + int(match["mm"] or 0)
    if minutes > 14 * 60 or int(match["mm"] or 0) >= 60:
        raise ValueError(f"time zone offset {zone!r} in {value!r} is out of range")
    return timezone((-1 if match["sign"] == "-" else 1) * timedelta(minutes=minutes))


class Iftsta:
    """Turns one checked IFTSTA message (UNH..UNT) into records."""

    def __init__(self, body: list[Segment], interchange: Interchange) -> None:
        self.body = body
        self.interchange = interchange
        self.unh = body[0]
        self.message = _Context()
        self.bgm: Segment | None = None

    def records(self) -> Iterator[ParseItem]:
        consignment: _Consignment | None = None
        status: list[Segment] = []
        for segment in self.body[1:-1]:
            if segment.tag in {"CNI", "STS"} and status:
                yield self._status(consignment, status)
                status = []
            if segment.tag == "CNI":
                consignment = _Consignment(cni=segment)
            elif segment.tag == "STS":
                status = [segment]
            elif status:
                status.append(segment)
            elif consignment is not None:
                consignment.context.add(segment)
            elif segment.tag == "BGM":
                self.bgm = segment
            else:
                self.message.add(segment)
        if status:
            yield self._status(consignment, status)

    def _status(self, consignment: _Consignment | None, group: list[Segment]) -> ParseItem:
        lead = [consignment.cni] if consignment and consignment.cni else []
        raw = raw_of(lead + group)
        try:
            return self._build(consignment, group, raw)
        except RecordRejected as exc:
            return RecordError(line=exc.line, raw=raw, field=exc.field, reason=exc.reason)

    def _build(self, consignment: _Consignment | None, group: list[Segment], raw: str) -> Record:
        sts = group[0]
        own = _Context()
        for segment in group[1:]:
            own.add(segment)
        levels = [own, consignment.context if consignment else _Context(), self.message]

        code = sts.get(2, 0).strip()
        if not code:
            raise RecordRejected(
                "status has no status code (STS-02)", field="STS02", line=sts.number
            )
        # The normalizer decides the event (feed mapping, then this table, then the feed's
        # policy): a carrier's own code (`STS+1+VD::22`) is onboarded by mapping it.
        event_code, code_name = event_for_status(code) or ("", "")

        # Every date of the status group must be real, not only the one we use.
        dates: dict[str, str] = {}
        parsed: dict[str, tuple[datetime, str, Segment]] = {}
        for dtm in own.dates:
            qualifier = dtm.get(1, 0)
            moment, precision = self._date(dtm)
            dates[qualifier] = moment.isoformat()
            parsed.setdefault(qualifier, (moment, precision, dtm))
        event_time, precision, qualifier = self._event_time(parsed, levels[1:])

        sscc = [
            number
            for gin in own.identities
            if gin.get(1) == "BJ"
            for element in range(2, len(gin.elements) + 1)
            for number in (gin.get(element, 0),)
            if number
        ]
        references = _references(levels)
        tracking, source = self._tracking_number(consignment, sscc, references)
        if not tracking:
            raise RecordRejected(
                "status has no consignment number (CNI-02), SSCC (GIN BJ) or "
                "consignment reference (RFF CN/BM/AAS)",
                field="CNI02",
                line=sts.number,
            )

        extra: dict[str, object] = {
            "interchange_ref": self.interchange.control_ref,
            "sender": self.interchange.sender,
            "message_ref": self.unh.get(1),
            "message_type": ":".join(c for c in self.unh.elements[1] if c),
            "status_category": sts.get(1, 0),
            "event_time_qualifier": qualifier,
            "event_time_precision": precision,
            "tracking_number_source": source,
        }
        self._details(extra, sts, consignment)
        for key, value in (("sscc", sscc), ("references", references), ("dates", dates)):
            if value:
                extra[key] = value
        self._status_reason(extra, sts)
        texts = [" ".join(c for c in ftx.elements[3] if c) for ftx in own.texts if ftx.elements[3:]]
        if any(texts):
            extra["free_text"] = [t for t in texts if t]
        parties = _parties(levels)
        if parties:
            extra["parties"] = parties

        record = Record(
            line=sts.number,
            raw=raw,
            kind="event",
            tracking_number=tracking,
            event_code=event_code,
            partner_code=code,
            code_field="STS02",
            code_note=""
            if event_code
            else f"unknown status code {code!r} (not mapped from UN/ECE Rec 24)",
            event_time=event_time,
            description=sts.get(2, 3) or code_name,
            extra=extra,
        )
        self._place(record, levels)
        self._transport(record, levels)
        record.order_number = next(
            (references[q][0] for q in ORDER_REFERENCE_QUALIFIERS if q in references), ""
        )
        if "CA" in parties and not record.carrier:
            record.carrier = parties["CA"]
        record.weight_kg = _weight(own.measures)
        return record

    def _details(
        self, extra: dict[str, object], sts: Segment, consignment: _Consignment | None
    ) -> None:
        """The message's document number and function, the consignment's item number."""
        if self.bgm is not None:
            extra["document_number"] = self.bgm.get(2, 0)
            extra["message_function"] = self.bgm.get(3)
        if consignment and consignment.cni:
            extra["consignment_item"] = consignment.cni.get(1)

    @staticmethod
    def _status_reason(extra: dict[str, object], sts: Segment) -> None:
        """The status code's agency and the status reason (STS-03), when sent."""
        if sts.get(2, 2):
            # C555 3055: the agency whose code list the status code is from (6 = UN/ECE).
            extra["status_code_agency"] = sts.get(2, 2)
        if sts.get(3, 0):
            extra["reason_code"] = sts.get(3, 0)
        if sts.get(3, 3):
            extra["reason"] = sts.get(3, 3)

    def _date(self, dtm: Segment) -> tuple[datetime, str]:
        if len(dtm.elements) > 1:
            raise RecordRejected(
                f"DTM has {len(dtm.elements)} data elements, expected 1 "
                "(an unreleased '+' in a time-zone offset?)",
                field="DTM",
                line=dtm.number,
            )
        try:
            return parse_dtm(dtm.get(1, 1), dtm.get(1, 2))
        except ValueError as exc:
            raise RecordRejected(str(exc), field="DTM", line=dtm.number) from None

    def _event_time(
        self,
        own: dict[str, tuple[datetime, str, Segment]],
        outer: list[_Context],
    ) -> tuple[datetime, str, str]:
        for qualifier in EVENT_DATE_QUALIFIERS:
            if qualifier in own:
                moment, precision, _ = own[qualifier]
                return moment, precision, qualifier
        for level, qualifiers in (
            (outer[0], EVENT_DATE_QUALIFIERS),
            (outer[1], (*EVENT_DATE_QUALIFIERS, DOCUMENT_DATE_QUALIFIER)),
        ):
            for qualifier in qualifiers:
                for dtm in level.dates:
                    if dtm.get(1, 0) == qualifier:
                        moment, precision = self._date(dtm)
                        return moment, precision, qualifier
        raise RecordRejected(
            "status has no event date (DTM 334 or 7) and the message no document date (DTM 137)",
            field="DTM",
            line=self.unh.number,
        )

    @staticmethod
    def _tracking_number(
        consignment: _Consignment | None, sscc: list[str], references: dict[str, list[str]]
    ) -> tuple[str, str]:
        if consignment and consignment.cni and consignment.cni.get(2, 0).strip():
            return consignment.cni.get(2, 0).strip(), "CNI"
        if sscc:
            return sscc[0], "GIN BJ"
        for qualifier in CONSIGNMENT_REFERENCE_QUALIFIERS:
            if qualifier in references:
                return references[qualifier][0], f"RFF {qualifier}"
        return "", ""

    @staticmethod
    def _place(record: Record, levels: list[_Context]) -> None:
        locations = next((level.locations for level in levels[:2] if level.locations), [])
        if not locations:
            return
        loc = locations[0]
        code = loc.get(2, 0).strip()
        agency = loc.get(2, 2)
        compact = code.replace(" ", "") if len(code) == 6 and code[2] == " " else code
        record.location_name = loc.get(2, 3).strip()
        record.extra["location_qualifier"] = loc.get(1)
        if _LOCODE.fullmatch(compact) and agency in {"", "6"}:
            record.location_code = compact
            record.country = compact[:2]
        elif code:
            record.extra["location_id"] = code
            record.extra["location_id_agency"] = agency
        if len(locations) > 1:
            record.extra["other_locations"] = [
                {"qualifier": o.get(1), "code": o.get(2, 0), "name": o.get(2, 3)}
                for o in locations[1:]
            ]

    @staticmethod
    def _transport(record: Record, levels: list[_Context]) -> None:
        tdt = next((level.transports[0] for level in levels if level.transports), None)
        if tdt is None:
            return
        record.transport_mode = TRANSPORT_MODES.get(tdt.get(3, 0), "")
        record.carrier = tdt.get(5, 0) or tdt.get(5, 3)
        if tdt.get(8, 0):
            record.extra["transport_id"] = tdt.get(8, 0)


def _references(levels: list[_Context]) -> dict[str, list[str]]:
    """RFF qualifier -> values, the status group's first, then consignment, then message."""
    out: dict[str, list[str]] = {}
    for level in levels:
        for rff in level.references:
            qualifier, value = rff.get(1, 0), rff.get(1, 1)
            if qualifier and value and value not in out.get(qualifier, []):
                out.setdefault(qualifier, []).append(value)
    return out


def _parties(levels: list[_Context]) -> dict[str, str]:
    """NAD party qualifier -> identification (or name), the nearest level winning."""
    out: dict[str, str] = {}
    for level in levels:
        for nad in level.parties:
            qualifier = nad.get(1)
            name = " ".join(c for c in (nad.elements[3] if len(nad.elements) > 3 else []) if c)
            value = nad.get(2, 0) or name
            if qualifier and value and qualifier not in out:
                out[qualifier] = value
    return out


def _weight(measures: list[Segment]) -> Decimal | None:
    for mea in measures:
        unit, value = mea.get(3, 0), mea.get(3, 1)
        factor = WEIGHT_UNITS_TO_KG.get(unit)
        if factor is None or not value:
            continue
        try:
            return Decimal(value.replace(",", ".")) * Decimal(factor)
        except InvalidOperation:
            raise RecordRejected(
                f"weight {value!r} is not a number", field="MEA", line=mea.number
            ) from None
    return None
