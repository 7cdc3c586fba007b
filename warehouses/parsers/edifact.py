"""UN/EDIFACT IFTSTA (international multimodal status report) parser, directories D.96A-D.21A
and the EANCOM subsets.

Why not pydifact (0.2.3, installed): its `Parser.parse` takes the whole interchange as one `str`
(no streaming from a byte stream), looks for "'UNA" anywhere in the text, does not strip a UTF-8
BOM, and its `EDISyntaxError` carries a physical line/column but never the segment number the
operator needs. Its char-by-char tokenizer also offers no hook to recover from a corrupt segment.
A release-aware splitter is ~60 lines, so this module has its own tokenizer (`read_segments`).

Conventions:
- Segment numbers are 1-based and count the segments of the file, UNB being 1. The UNA service
  string advice is not a segment (ISO 9735) and is not counted; errors in it carry number 1.
- Envelope rules: a missing or corrupt UNB, an unreadable UNA, undecodable bytes, an interchange
  that ends inside a segment or without UNZ raise FormatError (records already yielded stand).
  A corrupt UNH, a missing or wrong UNT, or another message type rejects only that message.
  A UNZ/UNE whose counts or control references disagree is reported as a RecordError on the
  trailer segment: every message was read, but the operator must know the interchange is odd.
- One Record per STS status group. Tracking number: CNI-02 (C503 1004, the consignment's document
  number; in the shared sample `4215A`, `5122C` ... while `RFF+DQ` there is a delivery-note number,
  not a consignment identity). Without it: the first SSCC (GIN BJ) of the status, then RFF CN, BM,
  AAS. `extra["tracking_number_source"]` says which one was used.
- Status code: `partner_code` is STS-02 (C555 4405) as sent, `event_code` the UN/ECE Rec 24
  table's suggestion or "" for a code outside it; the normalizer applies the feed's code mapping
  and unknown-code policy (docs/mapping.md), so a status is never rejected here for its code.
- Event time: DTM 334 (status event), then DTM 7 (effective) of the status group, then of the
  consignment, then the message's DTM 137 (document date; EANCOM en-route reports often carry only
  that). `extra["event_time_qualifier"]` names the DTM used. Formats 303/304/205 carry a zone and
  give an aware datetime; 102/203/204 give a naive local datetime. Every DTM inside the status
  group must be a real date, or the status is rejected.
- Messages are buffered one at a time (the UNT count decides whether a message is kept), so memory
  is bounded by the largest message, not by the file.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO

from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.edifact_codes import (
    CONSIGNMENT_REFERENCE_QUALIFIERS,
    DATE_FORMATS,
    DOCUMENT_DATE_QUALIFIER,
    EVENT_DATE_QUALIFIERS,
    ORDER_REFERENCE_QUALIFIERS,
    SYNTAX_CODECS,
    TRANSPORT_MODES,
    WEIGHT_UNITS_TO_KG,
    event_for_status,
)

__all__ = ["Delimiters", "Segment", "parse", "parse_dtm", "read_segments"]

_CHUNK = 64 * 1024
_RAW_LIMIT = 2000
_MAX_MESSAGE_SEGMENTS = 200_000
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_ZONE = re.compile(r"(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})?")
_UTC_NAMES = frozenset({"Z", "UT", "UTC", "GMT"})


@dataclass(frozen=True, slots=True)
class Delimiters:
    """Service characters (UNA, or the ISO 9735 defaults)."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"  # "" when the UNA declares none (a space)
    terminator: str = "'"


@dataclass(slots=True)
class Segment:
    number: int
    tag: str
    elements: list[list[str]]  # data elements after the tag, each a list of released components
    raw: str

    def get(self, element: int, component: int = 0) -> str:
        """Component of a data element (1-based element as in "STS-02"), "" when absent."""
        if element < 1 or element > len(self.elements):
            return ""
        components = self.elements[element - 1]
        return components[component] if component < len(components) else ""


# --------------------------------------------------------------------------------------------
# Tokenizer


def _codec_for(options: ParseOptions, syntax_id: str) -> str:
    wanted = options.encoding.lower().replace("_", "-")
    if wanted in {"gbk", "gb2312", "gb18030"}:
        return "gb18030"  # GB18030 is a superset; partners label it loosely
    if wanted not in {"utf-8", "utf8"}:
        return wanted  # an explicit feed setting wins over the UNB label
    return SYNTAX_CODECS.get(syntax_id, "utf-8")


def _read_head(stream: IO[bytes]) -> bytes:
    head = b""
    while len(head) < 256:
        chunk = stream.read(256)
        if not chunk:
            break
        head += chunk
    return head


def _delimiters_from_head(head: bytes) -> tuple[Delimiters, int]:
    """Delimiters and the byte offset where segment 1 starts."""
    if not head.startswith(b"UNA"):
        return Delimiters(), 0
    advice = head[3:9]
    if len(advice) < 6:
        raise FormatError("UNA service string advice is truncated", line=1, field="UNA")
    try:
        chars = advice.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(
            "UNA service string advice holds non-ASCII characters", line=1, field="UNA"
        ) from None
    component, element, decimal, terminator = chars[0], chars[1], chars[2], chars[5]
    release = "" if chars[3] == " " else chars[3]  # a space declares no release character
    specials = [c for c in (component, element, release, terminator) if c]
    if len(set(specials)) != len(specials) or any(c.isalnum() or c in "\r\n" for c in specials):
        raise FormatError(
            f"UNA service string advice {chars!r} declares clashing or unusable separators",
            line=1,
            field="UNA",
        )
    return Delimiters(component, element, decimal, release, terminator), 9


def declared_encoding(head: bytes) -> str | None:
    """The character set the UNB syntax identifier names (UNOC…UNOK, UNOW, UNOY), or None:
    UNOA/UNOB are ASCII labels partners put on UTF-8 and GB18030 payloads alike."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    head = head.lstrip(b"\r\n")
    try:
        delimiters, start = _delimiters_from_head(head)
    except FormatError:
        return None  # the parser reports the broken UNA
    return SYNTAX_CODECS.get(_syntax_id(head, start, delimiters))


def _syntax_id(head: bytes, start: int, delimiters: Delimiters) -> str:
    text = head[start:].lstrip(b"\r\n \t").decode("ascii", "replace")
    prefix = "UNB" + delimiters.element
    return text[len(prefix) : len(prefix) + 4] if text.startswith(prefix) else ""


def _split_elements(text: str, d: Delimiters) -> list[list[str]]:
    if not d.release or d.release not in text:
        return [element.split(d.component) for element in text.split(d.element)]
    elements: list[list[str]] = []
    components: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == d.release:
            # A release character cannot end a terminated segment (it would have released the
            # terminator); at the very end of a payload it is kept as data.
            current.append(next(chars, ch))
        elif ch == d.component:
            components.append("".join(current))
            current = []
        elif ch == d.element:
            components.append("".join(current))
            elements.append(components)
            components, current = [], []
        else:
            current.append(ch)
    components.append("".join(current))
    elements.append(components)
    return elements


def _segment_texts(
    chunks: Iterable[str], d: Delimiters, max_chars: int
) -> Iterator[tuple[str, str]]:
    """(raw segment text without terminator, state): "ok", "tail" (payload ended inside it) or
    "overlong" (no terminator within max_chars: refuse to buffer an unbounded segment)."""
    buf = ""
    start = 0
    search = 0
    for chunk in chunks:
        buf = buf[start:] + chunk
        search -= start
        start = 0
        while True:
            idx = buf.find(d.terminator, search)
            if idx < 0:
                search = len(buf)
                break
            if d.release:
                # A terminator preceded by an odd run of release characters is data.
                run = 0
                j = idx - 1
                while j >= start and buf[j] == d.release:
                    run += 1
                    j -= 1
                if run % 2:
                    search = idx + 1
                    continue
            yield buf[start:idx], "ok"
            start = search = idx + 1
        if len(buf) - start > max_chars:
            yield buf[start : start + max_chars], "overlong"
            return
    tail = buf[start:]
    if tail.strip():
        yield tail, "tail"


def read_segments(stream: IO[bytes], options: ParseOptions) -> Iterator[Segment]:
    """Stream the segments of an EDIFACT payload, numbered from 1.

    1. Read a small head: strip a UTF-8 BOM, read UNA if present, peek at the UNB syntax
       identifier to choose the character set.
    2. Decode the rest incrementally and split it on unreleased segment terminators,
       tolerating line breaks between segments.
    Raises FormatError for an unreadable UNA, undecodable bytes, or a payload that ends inside
    a segment.
    """
    head = _read_head(stream)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    head = head.lstrip(b"\r\n")
    delimiters, start = _delimiters_from_head(head)
    codec = _codec_for(options, _syntax_id(head, start, delimiters))
    try:
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    except LookupError:
        raise FormatError(f"unknown character encoding {codec!r}", line=1) from None

    number = 0

    def chunks() -> Iterator[str]:
        data = head[start:]
        while True:
            final = not data
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as exc:
                raise FormatError(
                    f"bytes are not valid {codec} after segment {number} ({exc.reason})",
                    line=number + 1,
                ) from None
            if text:
                yield text
            if final:
                return
            data = stream.read(_CHUNK)

    for text, state in _segment_texts(chunks(), delimiters, options.max_line_bytes):
        text = text.lstrip("\r\n")
        if not text:
            continue  # an empty segment (doubled terminator, trailing newline) carries nothing
        number += 1
        if state == "tail":
            raise FormatError(
                f"payload ends inside segment {number} (no {delimiters.terminator!r} terminator)",
                line=number,
                raw=text[:_RAW_LIMIT],
            )
        if state == "overlong":
            raise FormatError(
                f"segment {number} has no {delimiters.terminator!r} terminator within "
                f"{options.max_line_bytes} characters",
                line=number,
                raw=text[:_RAW_LIMIT],
            )
        elements = _split_elements(text, delimiters)
        yield Segment(number, elements[0][0].strip(), elements[1:], text + delimiters.terminator)


# --------------------------------------------------------------------------------------------
# Envelope


@dataclass(slots=True)
class _Interchange:
    control_ref: str
    sender: str
    syntax: str
    units: int = 0  # messages, or functional groups when UNG is used
    groups: int = 0


@dataclass(slots=True)
class _Group:
    segment: Segment
    reference: str
    messages: int = 0


def _raw_of(segments: Iterable[Segment]) -> str:
    out: list[str] = []
    size = 0
    for segment in segments:
        out.append(segment.raw)
        size += len(segment.raw) + 1
        if size > _RAW_LIMIT:
            break
    return "\n".join(out)[:_RAW_LIMIT]


def _check_unb(unb: Segment) -> _Interchange:
    def fail(field: str, reason: str) -> FormatError:
        return FormatError(reason, line=unb.number, field=field, raw=unb.raw[:_RAW_LIMIT])

    syntax, version = unb.get(1, 0), unb.get(1, 1)
    if not re.fullmatch(r"UNO[A-Z]", syntax):
        raise fail("UNB01", f"syntax identifier {syntax!r} is not UNOA..UNOZ")
    if not version.isdigit():
        raise fail("UNB01", f"syntax version {version!r} is not a number")
    if not unb.get(2):
        raise fail("UNB02", "interchange sender identification is empty")
    if not unb.get(3):
        raise fail("UNB03", "interchange recipient identification is empty")
    date, time = unb.get(4, 0), unb.get(4, 1)
    layout = "%y%m%d%H%M" if len(date) == 6 else "%Y%m%d%H%M"
    try:
        if not (date.isdigit() and time.isdigit() and len(date) in (6, 8) and len(time) == 4):
            raise ValueError
        datetime.strptime(date + time, layout)
    except ValueError:
        raise fail(
            "UNB04", f"date/time of preparation {date!r}:{time!r} is not (CC)YYMMDD:HHMM"
        ) from None
    control_ref = unb.get(5)
    if not control_ref or len(control_ref) > 14:
        raise fail("UNB05", f"interchange control reference {control_ref!r} is empty or too long")
    return _Interchange(control_ref=control_ref, sender=unb.get(2), syntax=f"{syntax}:{version}")


_NextSegment = Callable[[], "Segment | None"]
# A message reader yields items and returns the envelope segment that interrupted the message
# (a UNH/UNG/UNE/UNZ met before UNT), which the caller must read again.
_MessageItems = Generator[ParseItem, None, "Segment | None"]


def parse(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Parse an EDIFACT interchange; one Record per IFTSTA status (STS) group.

    1. Segment 1 must be a valid UNB (else FormatError).
    2. Between messages only UNH, UNG, UNE, UNZ (or a new UNB after UNZ) may appear; any other
       segment is a corrupt message header: the message up to its UNT is rejected.
    3. A message is buffered to its UNT, checked (UNT01 count, UNT02 reference) and, if it is an
       IFTSTA, turned into records; other message types yield one RecordError each.
    4. UNZ is checked against the messages (or groups) counted and the UNB reference.
    """
    segments = read_segments(stream, options)
    interchange: _Interchange | None = None
    group: _Group | None = None
    closed = False  # True after UNZ: only a new UNB may follow
    pending: Segment | None = None
    last = 0

    def next_segment() -> Segment | None:
        nonlocal pending, last
        if pending is not None:
            again, pending = pending, None
            return again
        fresh = next(segments, None)
        if fresh is not None:
            last = fresh.number
        return fresh

    while (segment := next_segment()) is not None:
        if interchange is None or closed:
            if segment.tag != "UNB":
                reason = (
                    f"segment tag {segment.tag!r} after UNZ; expected end of file or a new UNB"
                    if closed
                    else f"interchange must begin with UNB, found segment tag {segment.tag!r}"
                )
                raise FormatError(
                    reason, line=segment.number, field="UNB", raw=segment.raw[:_RAW_LIMIT]
                )
            interchange = _check_unb(segment)
            group = None
            closed = False
        elif segment.tag == "UNH":
            pending = yield from _read_message(segment, next_segment, interchange)
            _count_message(interchange, group)
        elif segment.tag == "UNG":
            group = _Group(segment=segment, reference=segment.get(5))
            interchange.groups += 1
        elif segment.tag == "UNE" and group is not None:
            yield from _check_trailer(segment, group.messages, group.reference, "UNE")
            group = None
        elif segment.tag == "UNZ":
            units, what = (
                (interchange.groups, "group(s)")
                if interchange.groups
                else (interchange.units, "message(s)")
            )
            yield from _check_trailer(segment, units, interchange.control_ref, "UNZ", what)
            closed = True
        else:
            # A segment where a message header must be: the UNH itself is corrupt.
            skipped: list[Segment] = [segment]
            reached_unt, pending = _skip_to_unt(next_segment, skipped)
            yield RecordError(
                line=segment.number,
                raw=_raw_of(skipped),
                field="UNH",
                reason=f"expected a message header UNH, found segment tag {segment.tag!r}; "
                "message skipped up to its UNT",
            )
            if reached_unt:
                _count_message(interchange, group)

    if interchange is None:
        raise FormatError("payload holds no segments; expected UNB", line=1, field="UNB")
    if not closed:
        raise FormatError(
            f"interchange {interchange.control_ref!r} ends after segment {last} without UNZ",
            line=last,
            field="UNZ",
        )


def _count_message(interchange: _Interchange, group: _Group | None) -> None:
    if group is not None:
        group.messages += 1
    else:
        interchange.units += 1


def _skip_to_unt(next_segment: _NextSegment, skipped: list[Segment]) -> tuple[bool, Segment | None]:
    """Skip a broken message: (reached its UNT, an envelope segment that must be read again)."""
    while (segment := next_segment()) is not None:
        if segment.tag in {"UNH", "UNZ", "UNE", "UNG", "UNB"}:
            return False, segment
        if len(skipped) < 50:  # enough for Record.raw's 2,000 characters
            skipped.append(segment)
        if segment.tag == "UNT":
            return True, None
    return False, None


def _check_trailer(
    segment: Segment, counted: int, reference: str, tag: str, what: str = "message(s)"
) -> Iterator[RecordError]:
    count = segment.get(1)
    if count != str(counted):
        yield RecordError(
            line=segment.number,
            raw=segment.raw[:_RAW_LIMIT],
            field=f"{tag}01",
            reason=f"{tag}01 control count is {count!r} but the "
            f"{'group' if tag == 'UNE' else 'interchange'} holds {counted} {what}",
        )
    if segment.get(2) != reference:
        yield RecordError(
            line=segment.number,
            raw=segment.raw[:_RAW_LIMIT],
            field=f"{tag}02",
            reason=f"{tag}02 reference {segment.get(2)!r} does not match {reference!r}",
        )


def _read_message(
    unh: Segment, next_segment: _NextSegment, interchange: _Interchange
) -> _MessageItems:
    """Read one message from its UNH to its UNT, check it, and yield its items."""
    reference = unh.get(1)
    message_type = unh.get(2, 0)
    header_ok = bool(reference) and all(unh.get(2, i) for i in range(4))
    wanted = header_ok and message_type == "IFTSTA"
    body: list[Segment] = [unh]
    unt: Segment | None = None
    interrupted: Segment | None = None
    count = 1
    while (segment := next_segment()) is not None:
        if segment.tag in {"UNH", "UNZ", "UNG", "UNE", "UNB"}:
            interrupted = segment
            break
        count += 1
        if segment.tag == "UNT":
            unt = segment
            body.append(segment)
            break
        # Only an IFTSTA body is kept; other messages are counted, not buffered.
        if wanted and count <= _MAX_MESSAGE_SEGMENTS:
            body.append(segment)
    raw = _raw_of(body)

    def reject(line: int, field: str, reason: str) -> _MessageItems:
        yield RecordError(line=line, raw=raw, field=field, reason=reason)
        return interrupted

    if not header_ok:
        identifier = ":".join(unh.elements[1]) if len(unh.elements) > 1 else ""
        return (
            yield from reject(
                unh.number,
                "UNH",
                f"message header is incomplete: reference {reference!r}, identifier "
                f"{identifier!r} (needs type:version:release:agency)",
            )
        )
    if message_type != "IFTSTA":
        return (yield from reject(unh.number, "UNH02", f"unsupported message type {message_type}"))
    if unt is None:
        return (yield from reject(unh.number, "UNT", f"message {reference!r} has no UNT trailer"))
    if unt.get(1) != str(count):
        return (
            yield from reject(
                unt.number,
                "UNT01",
                f"UNT01 segment count is {unt.get(1)!r} but message {reference!r} has "
                f"{count} segments (UNH to UNT); message rejected",
            )
        )
    if unt.get(2) != reference:
        return (
            yield from reject(
                unt.number,
                "UNT02",
                f"UNT02 reference {unt.get(2)!r} does not match UNH01 {reference!r}; "
                "message rejected",
            )
        )
    if count > _MAX_MESSAGE_SEGMENTS:
        return (
            yield from reject(
                unh.number,
                "UNH",
                f"message {reference!r} has {count} segments, more than the "
                f"{_MAX_MESSAGE_SEGMENTS} this parser buffers",
            )
        )
    yield from _Iftsta(body, interchange).records()
    return None


# --------------------------------------------------------------------------------------------
# IFTSTA content


class _RejectError(Exception):
    def __init__(self, segment: Segment, field: str, reason: str) -> None:
        super().__init__(reason)
        self.segment = segment
        self.field = field
        self.reason = reason


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


class _Iftsta:
    """Turns one checked IFTSTA message (UNH..UNT) into records."""

    def __init__(self, body: list[Segment], interchange: _Interchange) -> None:
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
        raw = _raw_of(lead + group)
        try:
            return self._build(consignment, group, raw)
        except _RejectError as exc:
            return RecordError(line=exc.segment.number, raw=raw, field=exc.field, reason=exc.reason)

    def _build(self, consignment: _Consignment | None, group: list[Segment], raw: str) -> Record:
        sts = group[0]
        own = _Context()
        for segment in group[1:]:
            own.add(segment)
        levels = [own, consignment.context if consignment else _Context(), self.message]

        code = sts.get(2, 0).strip()
        if not code:
            raise _RejectError(sts, "STS02", "status has no status code (STS-02)")
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
            raise _RejectError(
                sts,
                "CNI02",
                "status has no consignment number (CNI-02), SSCC (GIN BJ) or "
                "consignment reference (RFF CN/BM/AAS)",
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
        if self.bgm is not None:
            extra["document_number"] = self.bgm.get(2, 0)
            extra["message_function"] = self.bgm.get(3)
        if consignment and consignment.cni:
            extra["consignment_item"] = consignment.cni.get(1)
        if sscc:
            extra["sscc"] = sscc
        if references:
            extra["references"] = references
        if dates:
            extra["dates"] = dates
        if sts.get(2, 2):
            # C555 3055: the agency whose code list the status code is from (6 = UN/ECE).
            extra["status_code_agency"] = sts.get(2, 2)
        if sts.get(3, 0):
            extra["reason_code"] = sts.get(3, 0)
        if sts.get(3, 3):
            extra["reason"] = sts.get(3, 3)
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

    def _date(self, dtm: Segment) -> tuple[datetime, str]:
        if len(dtm.elements) > 1:
            raise _RejectError(
                dtm,
                "DTM",
                f"DTM has {len(dtm.elements)} data elements, expected 1 "
                "(an unreleased '+' in a time-zone offset?)",
            )
        try:
            return parse_dtm(dtm.get(1, 1), dtm.get(1, 2))
        except ValueError as exc:
            raise _RejectError(dtm, "DTM", str(exc)) from None

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
        raise _RejectError(
            self.unh,
            "DTM",
            "status has no event date (DTM 334 or 7) and the message no document date (DTM 137)",
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
            raise _RejectError(mea, "MEA", f"weight {value!r} is not a number") from None
    return None
