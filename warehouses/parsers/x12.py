"""ANSI X12 parser: 214 shipment status, 945 warehouse shipping advice, 856 ship notice.

Envelope rules (X12.5/X12.6):
- The ISA header is fixed width (106 characters with its terminator). The element separator is
  its 4th character, the component separator is ISA16 and the segment terminator is the
  character right after ISA16. Each interchange in a file declares its own separators.
- Counts are checked: SE01 = segments in the set including ST and SE, SE02 = ST02,
  GE01 = sets in the group, GE02 = GS06, IEA01 = groups in the interchange, IEA02 = ISA13.

What is rejected, and how:
- A missing or corrupt ISA (not at the start, truncated, not fixed width, bad separators) stops
  the parse: FormatError. So does a payload that ends before the IEA trailer.
- A set whose SE count or control number is wrong, a set without SE, and a garbled ST header
  (everything up to the next SE is skipped) each yield one RecordError; other sets are kept.
- A wrong GE/IEA count or control number yields a RecordError on that trailer; the sets it
  encloses were individually valid and are kept.
- A repeated interchange (same ISA06 sender, same ISA13 control number) in one file yields a
  RecordError on its ISA and the whole interchange is skipped.
- Transaction sets other than 214/945/856 yield "unsupported transaction set NNN".

Streaming: the payload is read in chunks and split into segments as it arrives; only one
transaction set is held in memory at a time.

Line numbers are 1-based segment numbers counted over the whole file (ISA = 1), so in the
common one-segment-per-line layout they equal the line numbers an operator sees.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO

from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.x12_codes import (
    COUNTRY_ALPHA3,
    ESTIMATE_CODES,
    PLACE_PARTIES,
    REASON_CODES,
    STATUS_CODES,
    TIME_CODES,
    TRANSPORT_METHODS,
    WEIGHT_UNITS,
    StatusCode,
)

__all__ = ["interchange_ids", "parse"]

RAW_LIMIT = 2000
ISA_LENGTH = 106  # the ISA segment including its terminator
_CHUNK = 64 * 1024
# 0-based positions of the element separator inside the fixed-width ISA, with the element that
# ends right before it (for a precise message when a field is too long or too short).
_ISA_SEPARATORS: tuple[tuple[int, str], ...] = (
    (3, "ISA"),
    (6, "ISA01"),
    (17, "ISA02"),
    (20, "ISA03"),
    (31, "ISA04"),
    (34, "ISA05"),
    (50, "ISA06"),
    (53, "ISA07"),
    (69, "ISA08"),
    (76, "ISA09"),
    (81, "ISA10"),
    (83, "ISA11"),
    (89, "ISA12"),
    (99, "ISA13"),
    (101, "ISA14"),
    (103, "ISA15"),
)
_LIST_LIMIT = 1000  # cap on lines/items/packages kept in extra for one record
_SUPPORTED = "214, 856, 945"


# --------------------------------------------------------------------------------------------
# Segments


@dataclass(slots=True)
class _Segment:
    line: int
    text: str
    elements: list[str]
    # Why the segment's bytes could not be decoded ("bytes at offset 7 are not valid utf-8"),
    # or "" when they could. Its text then shows the bytes as \xNN escapes.
    undecodable: str = ""

    @property
    def tag(self) -> str:
        return self.elements[0].strip() if self.elements else ""

    def el(self, index: int) -> str:
        if index < len(self.elements):
            return self.elements[index].strip()
        return ""


class _Segments:
    """Splits a byte stream into X12 segments, one interchange's separators at a time."""

    def __init__(self, stream: IO[bytes], options: ParseOptions) -> None:
        encoding = options.encoding.lower().replace("_", "-")
        if encoding in ("utf-8", "utf8"):
            encoding = "utf-8-sig"  # a UTF-8 BOM before the ISA is common in the wild
        elif encoding == "gbk":
            encoding = "gb18030"
        try:
            decoder_class = codecs.getincrementaldecoder(encoding)
        except LookupError as exc:
            raise FormatError(f"unknown encoding {options.encoding!r}") from exc
        # Undecodable bytes are never replaced: they are carried as lone surrogates (U+DC80..
        # U+DCFF) until the segment holding them is cut, which rejects its transaction set
        # naming the offset (`_undecodable`); the rest of the file is read on.
        self._codec = encoding
        self._decoder = decoder_class(errors="surrogateescape")
        self._stream = stream
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._max = max(options.max_line_bytes, ISA_LENGTH)
        self.number = 0  # segments consumed so far
        self.element = "*"
        self.component = ">"
        self.terminator = "~"

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._stream.read(_CHUNK)
        self._buf = self._buf[self._pos :]
        self._pos = 0
        if not chunk:
            self._eof = True
            self._buf += self._decoder.decode(b"", final=True)
            return False
        self._buf += self._decoder.decode(chunk)
        return True

    def _skip_blank(self) -> bool:
        """Skip whitespace between segments; False when the payload is exhausted."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in " \t\r\n\ufeff":
                self._pos += 1
            if self._pos < len(self._buf):
                return True
            if not self._fill():
                return False

    def at_isa(self) -> bool:
        """True when the next segment is an ISA header (a new interchange starts)."""
        if not self._skip_blank():
            return False
        while len(self._buf) - self._pos < 3 and self._fill():
            pass
        return self._buf.startswith("ISA", self._pos)

    def read_isa(self) -> _Segment | None:
        """Read and validate the fixed-width ISA header; None at the end of the payload."""
        if not self._skip_blank():
            return None
        line = self.number + 1
        while len(self._buf) - self._pos < ISA_LENGTH and self._fill():
            pass
        head = self._buf[self._pos : self._pos + ISA_LENGTH]
        bad = self._undecodable(head)
        if bad:
            # The envelope names the sender and the separators: nothing after it can be trusted.
            raise FormatError(f"ISA: {bad}", line=line, field="ISA", raw=_escaped(head))
        if not head.startswith("ISA"):
            raise FormatError(
                f"expected an ISA interchange header, found {head[:10]!r}",
                line=line,
                field="ISA",
                raw=head[:RAW_LIMIT],
            )
        if len(head) < ISA_LENGTH:
            raise FormatError(
                f"ISA header is truncated: {len(head)} characters, expected {ISA_LENGTH}",
                line=line,
                field="ISA",
                raw=head,
            )
        element = head[3]
        if element.isalnum() or element.isspace():
            raise FormatError(
                f"ISA element separator {element!r} must not be a letter, digit or space",
                line=line,
                field="ISA",
                raw=head,
            )
        for position, before in _ISA_SEPARATORS:
            if head[position] != element:
                raise FormatError(
                    f"ISA is not fixed width: expected the element separator {element!r} after "
                    f"{before} at position {position + 1}, found {head[position]!r}",
                    line=line,
                    field=before,
                    raw=head,
                )
        component, terminator = head[104], head[105]
        if component.isalnum() or component.isspace() or component == element:
            raise FormatError(
                f"ISA16 component separator {component!r} is not a valid separator",
                line=line,
                field="ISA16",
                raw=head,
            )
        if terminator.isalnum() or terminator in (" ", "\t", element, component):
            raise FormatError(
                f"segment terminator {terminator!r} after ISA16 is not a valid separator",
                line=line,
                field="ISA16",
                raw=head,
            )
        elements = head[:105].split(element)
        if len(elements) != 17:
            raise FormatError(
                f"ISA has {len(elements) - 1} elements, expected 16 "
                f"(element separator {element!r} inside a field?)",
                line=line,
                field="ISA",
                raw=head,
            )
        control = elements[13]
        if not (len(control) == 9 and control.isdigit()):
            raise FormatError(
                f"ISA13 interchange control number {control!r} is not 9 digits",
                line=line,
                field="ISA13",
                raw=head,
            )
        self.element, self.component, self.terminator = element, component, terminator
        self._pos += ISA_LENGTH
        self.number = line
        return _Segment(line, head[:105], elements)

    def next_segment(self) -> _Segment | None:
        """The next non-empty segment, or None at the end of the payload."""
        while True:
            if not self._skip_blank():
                return None
            end = self._buf.find(self.terminator, self._pos)
            while end < 0:
                if len(self._buf) - self._pos > self._max:
                    raise FormatError(
                        f"segment longer than {self._max} characters without the terminator "
                        f"{self.terminator!r}",
                        line=self.number + 1,
                        raw=_escaped(self._buf[self._pos : self._pos + RAW_LIMIT]),
                    )
                searched = len(self._buf) - self._pos  # _fill() moves the buffer's start
                if not self._fill():
                    break
                end = self._buf.find(self.terminator, self._pos + searched)
            if end < 0:
                # A last segment without its terminator: tolerated (many writers drop it).
                text = self._buf[self._pos :]
                self._pos = len(self._buf)
            else:
                text = self._buf[self._pos : end]
                self._pos = end + len(self.terminator)
            text = text.strip("\r\n")
            if not text.strip():
                continue
            self.number += 1
            bad = self._undecodable(text)
            if bad:
                text = _escaped(text)
            return _Segment(self.number, text, text.split(self.element), bad)

    def _undecodable(self, text: str) -> str:
        """Why `text` holds undecodable bytes, or "" when it holds none.

        The offset counts in the segment's own bytes, as the CSV reader counts in the line's.
        """
        found = _UNDECODABLE.search(text)
        if found is None:
            return ""
        codec = self._codec.removesuffix("-sig")  # utf-8-sig would count a BOM in
        offset = len(text[: found.start()].encode(codec, "surrogateescape"))
        return f"bytes at offset {offset} are not valid {codec}"


# Lone surrogates the "surrogateescape" error handler puts in place of undecodable bytes.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _escaped(text: str) -> str:
    """Text with undecodable bytes shown as \\xNN escapes (storable, and what the file holds)."""
    if _UNDECODABLE.search(text) is None:
        return text
    return "".join(
        f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in text
    )


# --------------------------------------------------------------------------------------------
# Envelope


@dataclass(slots=True)
class _Envelope:
    interchange: str  # "ISA06/ISA08/ISA13"
    group_control: str = ""
    group_date: str = ""
    group_time: str = ""
    version: str = ""


@dataclass(slots=True)
class _Group:
    header: _Segment
    sets: int = 0


@dataclass(slots=True)
class _Set:
    header: _Segment
    terminator: str
    segments: list[_Segment] = field(default_factory=list)
    undecodable: _Segment | None = None  # its first segment with undecodable bytes

    @property
    def kind(self) -> str:
        return self.header.el(1)

    @property
    def control(self) -> str:
        return self.header.el(2)

    def raw(self, segments: list[_Segment] | None = None) -> str:
        chosen = self.segments if segments is None else segments
        out: list[str] = []
        size = 0
        for segment in chosen:
            out.append(segment.text + self.terminator)
            size += len(segment.text) + 1
            if size >= RAW_LIMIT:
                break
        return "".join(out)[:RAW_LIMIT]


def _interchange_id(isa: _Segment) -> str:
    return f"{isa.el(6)}/{isa.el(8)}/{isa.el(13)}"


def interchange_ids(stream: IO[bytes], options: ParseOptions | None = None) -> list[str]:
    """Every interchange header in the payload as "ISA06/ISA08/ISA13", in file order.

    The parser cannot know which interchanges were received before; the ingest service compares
    these ids with its history to spot a re-sent interchange. Raises FormatError on a corrupt ISA.
    """
    segments = _Segments(stream, options or ParseOptions())
    ids: list[str] = []
    while (isa := segments.read_isa()) is not None:
        ids.append(_interchange_id(isa))
        while not segments.at_isa():
            segment = segments.next_segment()
            if segment is None:
                return ids
            if segment.tag == "IEA":
                break
    return ids


def parse(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Parse an X12 payload of one or more interchanges into Records and RecordErrors."""
    segments = _Segments(stream, options)
    seen: dict[tuple[str, str], int] = {}
    first = True
    while True:
        isa = segments.read_isa()
        if isa is None:
            if first:
                raise FormatError("empty payload: no ISA interchange header", line=1, field="ISA")
            return
        first = False
        yield from _interchange(segments, isa, seen)


def _count_error(
    segment: _Segment, name: str, expected: int, what: str, holder: str
) -> RecordError | None:
    value = segment.el(1)
    if not value.isdigit():
        return RecordError(
            segment.line, segment.text, f"{name}01 {value!r} is not a count of {what}", f"{name}01"
        )
    if int(value) != expected:
        return RecordError(
            segment.line,
            segment.text,
            f"{name}01 says {int(value)} {what} but {holder} holds {expected}",
            f"{name}01",
        )
    return None


def _interchange(
    segments: _Segments, isa: _Segment, seen: dict[tuple[str, str], int]
) -> Iterator[ParseItem]:
    """Walk one interchange: groups, sets, trailers; ends after its IEA."""
    sender, control = isa.el(6), isa.el(13)
    key = (sender, control)
    if key in seen:
        yield RecordError(
            isa.line,
            isa.text,
            f"duplicate interchange control number {control} from sender {sender} "
            f"(first seen in the ISA at segment {seen[key]}); interchange skipped",
            "ISA13",
        )
        while not segments.at_isa():
            skipped = segments.next_segment()
            if skipped is None or skipped.tag == "IEA":
                return
        return
    seen[key] = isa.line
    envelope = _Envelope(_interchange_id(isa))
    groups = 0
    group: _Group | None = None
    open_set: _Set | None = None
    skipping = False  # inside a set whose ST header was garbled, until its SE

    def unclosed(before: str, line: int) -> Iterator[ParseItem]:
        nonlocal open_set
        if open_set is not None:
            yield RecordError(
                open_set.header.line,
                open_set.raw(),
                f"transaction set {open_set.control} (ST at segment {open_set.header.line}) has "
                f"no SE trailer before {before} at segment {line}; set rejected",
                "SE",
            )
            open_set = None

    def unclosed_group(before: str, line: int) -> Iterator[ParseItem]:
        nonlocal group
        if group is not None:
            yield RecordError(
                group.header.line,
                group.header.text,
                f"functional group {group.header.el(6)} has no GE trailer before {before} at "
                f"segment {line}",
                "GE",
            )
            group = None

    while True:
        if segments.at_isa():
            line = segments.number + 1
            yield from unclosed("ISA", line)
            yield from unclosed_group("ISA", line)
            yield RecordError(
                isa.line,
                isa.text,
                f"interchange {control} has no IEA trailer before the ISA at segment {line}",
                "IEA",
            )
            return
        segment = segments.next_segment()
        if segment is None:
            line = segments.number
            yield from unclosed("the end of the payload", line)
            yield from unclosed_group("the end of the payload", line)
            raise FormatError(
                f"payload ends inside interchange {control}: no IEA trailer (truncated file?)",
                line=line,
                field="IEA",
            )
        tag = segment.tag
        if segment.undecodable and open_set is None and not skipping:
            # An envelope segment (or a stray one) with bytes that do not decode: reported on
            # its own; what it would have opened or closed is checked as if it were missing.
            yield RecordError(segment.line, segment.text, segment.undecodable, tag)
            continue
        if tag == "IEA":
            yield from unclosed("IEA", segment.line)
            yield from unclosed_group("IEA", segment.line)
            error = _count_error(
                segment, "IEA", groups, "functional groups", f"interchange {control}"
            )
            if error is not None:
                yield error
            if segment.el(2) != control:
                yield RecordError(
                    segment.line,
                    segment.text,
                    f"IEA02 {segment.el(2)!r} does not match ISA13 {control!r}",
                    "IEA02",
                )
            return
        if tag == "GS":
            yield from unclosed("GS", segment.line)
            yield from unclosed_group("GS", segment.line)
            skipping = False
            groups += 1
            group = _Group(segment)
            envelope.group_control = segment.el(6)
            envelope.group_date = segment.el(4)
            envelope.group_time = segment.el(5)
            envelope.version = segment.el(8)
            continue
        if tag == "GE":
            yield from unclosed("GE", segment.line)
            skipping = False
            if group is None:
                yield RecordError(
                    segment.line, segment.text, "GE trailer without a GS group header", "GE"
                )
                continue
            error = _count_error(
                segment,
                "GE",
                group.sets,
                "transaction sets",
                f"functional group {group.header.el(6)}",
            )
            if error is not None:
                yield error
            if segment.el(2) != group.header.el(6):
                yield RecordError(
                    segment.line,
                    segment.text,
                    f"GE02 {segment.el(2)!r} does not match GS06 {group.header.el(6)!r}",
                    "GE02",
                )
            group = None
            continue
        if tag == "ST":
            yield from unclosed("ST", segment.line)
            skipping = False
            if group is None:
                yield RecordError(
                    segment.line,
                    segment.text,
                    "ST transaction set header outside a functional group (no GS); "
                    "segments up to the next SE skipped",
                    "GS",
                )
                skipping = True
                continue
            group.sets += 1
            open_set = _Set(segment, segments.terminator, [segment])
            continue
        if segment.undecodable and open_set is not None and open_set.undecodable is None:
            open_set.undecodable = segment
        if tag == "SE":
            if open_set is not None:
                open_set.segments.append(segment)
                yield from _close_set(open_set, envelope)
                open_set = None
            elif skipping:
                skipping = False
            else:
                yield RecordError(
                    segment.line, segment.text, "SE trailer without an ST header", "ST"
                )
            continue
        if open_set is not None:
            open_set.segments.append(segment)
        elif skipping:
            continue
        elif group is None:
            yield RecordError(
                segment.line,
                segment.text,
                f"expected a GS functional group header, found {tag!r}",
                "GS",
            )
            skipping = True
        else:
            # A garbled ST (e.g. "T*850*0001"): the set still counts towards GE01, since the
            # sender did send it, but none of its segments can be trusted.
            group.sets += 1
            skipping = True
            yield RecordError(
                segment.line,
                segment.text,
                f"expected an ST transaction set header, found {tag!r}; "
                "segments up to the next SE skipped",
                "ST",
            )


_Handler = Callable[["_Set", _Envelope], Iterator[ParseItem]]


def _close_set(tx: _Set, envelope: _Envelope) -> Iterator[ParseItem]:
    if tx.undecodable is not None:
        # Bytes were never replaced: the set's records cannot be read as sent.
        bad = tx.undecodable
        yield RecordError(
            bad.line,
            tx.raw(),
            f"segment {bad.line} ({bad.tag}): {bad.undecodable}; "
            f"transaction set {tx.control} rejected",
            bad.tag,
        )
        return
    trailer = tx.segments[-1]
    count = trailer.el(1)
    if not count.isdigit():
        yield RecordError(
            trailer.line,
            tx.raw(),
            f"SE01 {count!r} is not a segment count; transaction set {tx.control} rejected",
            "SE01",
        )
        return
    if int(count) != len(tx.segments):
        yield RecordError(
            trailer.line,
            tx.raw(),
            f"SE01 says {int(count)} segments but transaction set {tx.control} has "
            f"{len(tx.segments)} (ST to SE); set rejected",
            "SE01",
        )
        return
    if trailer.el(2) != tx.control:
        yield RecordError(
            trailer.line,
            tx.raw(),
            f"SE02 {trailer.el(2)!r} does not match ST02 {tx.control!r}; set rejected",
            "SE02",
        )
        return
    handler = _HANDLERS.get(tx.kind)
    if handler is None:
        reason = (
            f"unsupported transaction set {tx.kind} (supported: {_SUPPORTED})"
            if tx.kind
            else "ST01 transaction set identifier is empty"
        )
        yield RecordError(tx.header.line, tx.raw(), reason, "ST01")
        return
    yield from handler(tx, envelope)


# --------------------------------------------------------------------------------------------
# Values


def _date(value: str) -> date | None:
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _time(value: str) -> time | None:
    """X12 TM: HHMM, HHMMSS, HHMMSSD or HHMMSSDD."""
    if len(value) not in (4, 6, 7, 8) or not value.isdigit():
        return None
    hour, minute = int(value[:2]), int(value[2:4])
    second = int(value[4:6]) if len(value) >= 6 else 0
    fraction = value[6:]
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second, micro)


@dataclass(slots=True)
class _When:
    value: datetime
    zone: str = ""  # IANA zone when the time code names a zone
    code: str = ""  # the 623 time code as sent


def _when(
    segment: _Segment, date_index: int, time_index: int | None, code_index: int | None
) -> _When | RecordError:
    """Date + time + optional time code of a segment as a datetime (no time: midnight).

    No time code: local time of the place (naive). LT: same, said explicitly. A fixed-offset
    code: aware datetime. A bare zone (CT, ET ...): naive wall clock plus the IANA zone.
    """
    name = segment.tag
    raw_date = segment.el(date_index)
    day = _date(raw_date)
    if day is None:
        reason = "date is missing" if not raw_date else f"invalid date {raw_date!r}"
        return RecordError(
            segment.line,
            segment.text,
            f"{reason}, expected CCYYMMDD",
            f"{name}-{date_index:02d}",
        )
    raw_time = segment.el(time_index) if time_index is not None else ""
    clock = _time(raw_time) if raw_time else time(0, 0)
    if clock is None and time_index is not None:
        return RecordError(
            segment.line,
            segment.text,
            f"invalid time {raw_time!r}, expected HHMM or HHMMSS",
            f"{name}-{time_index:02d}",
        )
    value = datetime.combine(day, clock or time(0, 0))
    code = segment.el(code_index) if code_index is not None else ""
    if not code:
        return _When(value)
    meaning = TIME_CODES.get(code)
    if meaning is None:
        return RecordError(
            segment.line,
            segment.text,
            f"unknown time code {code!r} (element 623)",
            f"{name}-{code_index:02d}",
        )
    if meaning.kind == "offset":
        offset = timezone(timedelta(minutes=meaning.offset_minutes))
        return _When(value.replace(tzinfo=offset), code=code)
    if meaning.kind == "zone":
        return _When(value, zone=meaning.zone, code=code)
    return _When(value, code=code)


def _weight_kg(value: str, unit: str) -> Decimal | None:
    factor = WEIGHT_UNITS.get(unit.upper())
    if factor is None or not value:
        return None
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            return None
        # quantize raises InvalidOperation for absurd magnitudes (e.g. "9E+40"): not a weight
        return (amount * factor).quantize(Decimal("0.001"))
    except InvalidOperation:
        return None


def _country(code: str) -> str:
    code = code.upper()
    if len(code) == 2 and code.isalpha():
        return code
    return COUNTRY_ALPHA3.get(code, "")


def _dms(value: str, direction: str, limit: int) -> float | None:
    """MS1 latitude/longitude DDDMMSS (degrees, minutes, seconds) -> signed decimal degrees."""
    if len(value) < 5 or not value.isdigit():
        return None
    degrees, minutes, seconds = int(value[:-4]), int(value[-4:-2]), int(value[-2:])
    if degrees > limit or minutes > 59 or seconds > 59:
        return None
    result = degrees + minutes / 60 + seconds / 3600
    if direction.upper() in ("S", "W"):
        result = -result
    return round(result, 6)


@dataclass(slots=True)
class _Party:
    entity: str
    name: str = ""
    id_qualifier: str = ""
    id: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    postal: str = ""
    country: str = ""

    def place_name(self) -> str:
        city = ", ".join(part for part in (self.city, self.state) if part)
        return city or self.name

    def place(self, record: Record) -> None:
        """The party's N4 address as the record's place (its zone is the city's)."""
        record.location_name = self.place_name()
        record.country = _country(self.country)
        record.city, record.state, record.postal_code = self.city, self.state, self.postal

    def as_dict(self) -> dict[str, str]:
        keys = ("entity", "name", "id_qualifier", "id", "address", "city", "state", "postal")
        out = {key: getattr(self, key) for key in keys if getattr(self, key)}
        if self.country:
            out["country"] = self.country
        return out


def _party(segment: _Segment) -> _Party:
    return _Party(segment.el(1), segment.el(2), segment.el(3), segment.el(4))


def _address(party: _Party | None, segment: _Segment) -> None:
    if party is None:
        return
    if segment.tag == "N3":
        party.address = " ".join(p for p in (segment.el(1), segment.el(2)) if p)
    elif segment.tag == "N4":
        party.city, party.state, party.postal = segment.el(1), segment.el(2), segment.el(3)
        party.country = segment.el(4)


def _add_reference(references: dict[str, str], key: str, value: str) -> None:
    if not value:
        return
    if key not in references:
        references[key] = value
        return
    if references[key] == value:
        return
    number = 2
    while f"{key}#{number}" in references:
        number += 1
    references[f"{key}#{number}"] = value


def _base_extra(tx: _Set, envelope: _Envelope) -> dict[str, object]:
    return {
        "interchange": envelope.interchange,
        "group": envelope.group_control,
        "transaction_set": tx.kind,
        "set_control": tx.control,
        "version": envelope.version,
    }


# --------------------------------------------------------------------------------------------
# 214 Transportation carrier shipment status


@dataclass(slots=True)
class _Status:
    at7: _Segment
    segments: list[_Segment]
    ms1: _Segment | None = None


@dataclass(slots=True)
class _Lx:
    segments: list[_Segment] = field(default_factory=list)
    statuses: list[_Status] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)
    parties: dict[str, _Party] = field(default_factory=dict)
    weight: _Segment | None = None


def _shipment_status(tx: _Set, envelope: _Envelope) -> Iterator[ParseItem]:
    """214: one Record per AT7 status (inside LX loops)."""
    b10: _Segment | None = None
    ms3: _Segment | None = None
    references: dict[str, str] = {}
    parties: dict[str, _Party] = {}
    loops: list[_Lx] = []
    party: _Party | None = None
    status: _Status | None = None
    for segment in tx.segments[1:-1]:
        tag = segment.tag
        loop = loops[-1] if loops else None
        if loop is not None:
            loop.segments.append(segment)
        if tag == "B10" and b10 is None:
            b10 = segment
        elif tag == "L11":
            target = loop.references if loop is not None else references
            _add_reference(target, f"L11:{segment.el(2)}", segment.el(1))
        elif tag == "N1":
            party = _party(segment)
            (loop.parties if loop is not None else parties).setdefault(party.entity, party)
        elif tag in ("N3", "N4"):
            _address(party, segment)
        elif tag == "MS3" and ms3 is None:
            ms3 = segment
        elif tag == "LX":
            loops.append(_Lx(segments=[segment]))
            party = status = None
        elif tag == "AT7":
            if loop is None:  # an AT7 without LX: tolerated as its own loop
                loop = _Lx(segments=[segment])
                loops.append(loop)
            status = _Status(segment, [segment])
            loop.statuses.append(status)
        elif tag in ("MS1", "MS2") and status is not None:
            status.segments.append(segment)
            if tag == "MS1" and status.ms1 is None:
                status.ms1 = segment
        elif tag == "AT8" and loop is not None and loop.weight is None:
            loop.weight = segment

    if b10 is None:
        yield RecordError(
            tx.header.line, tx.raw(), "214 has no B10 segment (no shipment reference)", "B10"
        )
        return
    tracking = b10.el(2) or b10.el(1)
    if not tracking:
        yield RecordError(
            b10.line, b10.text, "B10-01 and B10-02 are both empty: no shipment reference", "B10-02"
        )
        return
    _add_reference(references, "B10-01", b10.el(1))
    _add_reference(references, "B10-02", b10.el(2))
    statuses = [(loop, item) for loop in loops for item in loop.statuses]
    if not statuses:
        yield RecordError(tx.header.line, tx.raw(), "214 has no AT7 shipment status", "AT7")
        return
    carrier = b10.el(3) or (ms3.el(1) if ms3 is not None else "")
    mode = TRANSPORT_METHODS.get(ms3.el(4), "") if ms3 is not None else ""
    for loop, item in statuses:
        yield _status_record(
            tx, envelope, b10, item, loop, references, parties, tracking, carrier, mode
        )


def _status_record(
    tx: _Set,
    envelope: _Envelope,
    b10: _Segment,
    item: _Status,
    loop: _Lx,
    heading_refs: dict[str, str],
    heading_parties: dict[str, _Party],
    tracking: str,
    carrier: str,
    mode: str,
) -> ParseItem:
    at7 = item.at7
    raw = tx.raw([b10, *item.segments])
    code = at7.el(1)
    if not code:
        appointment = at7.el(3)
        reason = (
            f"appointment status code {appointment!r} (AT7-03) is an appointment, not a "
            "tracking event; not mapped"
            if appointment
            else "AT7 has neither a shipment status (AT7-01) nor an appointment (AT7-03)"
        )
        return RecordError(at7.line, raw, reason, "AT7-01")
    # A code outside the table is the normalizer's to decide (feed mapping, then the feed's
    # unknown-code policy): a carrier's own code is onboarded by mapping it (docs/mapping.md).
    mapped = STATUS_CODES.get(code) or StatusCode("", "")
    # Versions before 004010 wrote AT7-05 as YYMMDD followed by a century element, shifting the
    # time and time code one place to the right.
    if len(at7.el(5)) == 6 and len(at7.el(6)) == 2:
        legacy = _Segment(
            at7.line,
            at7.text,
            [at7.el(0), *at7.elements[1:5], at7.el(6) + at7.el(5), *at7.elements[7:]],
        )
        when = _when(legacy, 5, 6, 7)
    else:
        if at7.el(5) and not at7.el(6):
            return RecordError(at7.line, raw, "AT7-06 time is missing", "AT7-06")
        when = _when(at7, 5, 6, 7)
    if isinstance(when, RecordError):
        when.raw = raw
        return when

    references = dict(heading_refs)
    for key, value in loop.references.items():
        _add_reference(references, key, value)
    reason_code = at7.el(2)
    description = mapped.description
    if reason_code in REASON_CODES and reason_code != "NS":
        reason_text = REASON_CODES[reason_code]
        description = f"{description} ({reason_text})" if description else reason_text
    extra = _base_extra(tx, envelope)
    extra["references"] = references
    extra["status_reason"] = reason_code
    if when.code:
        extra["time_code"] = when.code
    if loop.segments and loop.segments[0].tag == "LX":
        extra["lx"] = loop.segments[0].el(1)

    record = Record(
        line=at7.line,
        raw=raw,
        tracking_number=tracking,
        event_code=mapped.event_code,
        partner_code=code,
        code_field="AT7-01",
        code_note=""
        if mapped.event_code
        else f"unknown shipment status code {code!r} (element 1650)",
        event_time=when.value,
        time_zone=when.zone,
        description=description,
        order_number=references.get("L11:PO", "") or references.get("L11:CO", ""),
        carrier=carrier,
        transport_mode=mode,
    )
    if code in ESTIMATE_CODES:
        # An estimate is not something that happened: the estimated time goes to extra and the
        # event is dated by when the carrier issued it (GS date/time, the sender's clock).
        extra["estimated_delivery"] = when.value.isoformat()
        if when.zone:
            extra["estimated_delivery_time_zone"] = when.zone
        sent = _date(envelope.group_date)
        clock = _time(envelope.group_time)
        record.event_time = datetime.combine(sent, clock) if sent and clock else None
        record.time_zone = ""
        extra["event_time_source"] = "GS04/GS05"

    _status_location(record, item, loop, heading_parties, mapped.place, extra)
    if loop.weight is not None:
        weight = _weight_kg(loop.weight.el(3), loop.weight.el(2))
        if weight is not None:
            record.weight_kg = weight
            extra["weight"] = {"value": loop.weight.el(3), "unit": loop.weight.el(2)}
    record.extra = extra
    return record


def _status_location(
    record: Record,
    item: _Status,
    loop: _Lx,
    heading_parties: dict[str, _Party],
    place: str,
    extra: dict[str, object],
) -> None:
    """Location of an AT7: its MS1 city, else the pick-up/delivery party the code implies."""
    ms1 = item.ms1
    if ms1 is not None:
        latitude = _dms(ms1.el(5), ms1.el(7), 90)
        longitude = _dms(ms1.el(4), ms1.el(6), 180)
        if latitude is not None and longitude is not None:
            extra["latitude"] = latitude
            extra["longitude"] = longitude
            record.latitude, record.longitude = latitude, longitude
        if ms1.el(1):
            record.location_name = ", ".join(p for p in (ms1.el(1), ms1.el(2)) if p)
            record.country = _country(ms1.el(3))
            record.city, record.state = ms1.el(1), ms1.el(2)
            extra["location"] = {
                k: v
                for k, v in (("city", ms1.el(1)), ("state", ms1.el(2)), ("country", ms1.el(3)))
                if v
            }
            extra["location_source"] = "MS1"
            return
    for entity in PLACE_PARTIES.get(place, ()):
        party = loop.parties.get(entity) or heading_parties.get(entity)
        if party is not None:
            party.place(record)
            extra["location"] = party.as_dict()
            extra["location_source"] = f"N1:{entity}"
            return


# --------------------------------------------------------------------------------------------
# 945 Warehouse shipping advice


def _warehouse_shipping_advice(tx: _Set, envelope: _Envelope) -> Iterator[ParseItem]:
    """945: one `warehouse_dispatched` Record per set.

    Tracking number: W06-04 (shipment identification number, the id the warehouse ships under);
    when it is empty, W06-02 (depositor order number). Order number: W06-02. Time: the G62
    "shipped on this date" (qualifier 11) with its time and time code, else the W06-03 date.
    """
    w06: _Segment | None = None
    w27: _Segment | None = None
    w03: _Segment | None = None
    shipped: _Segment | None = None
    references: dict[str, str] = {}
    dates: dict[str, str] = {}
    parties: dict[str, _Party] = {}
    lines: list[dict[str, object]] = []
    party: _Party | None = None
    current: dict[str, object] | None = None
    for segment in tx.segments[1:-1]:
        tag = segment.tag
        if tag == "W06" and w06 is None:
            w06 = segment
        elif tag == "N1":
            party = _party(segment)
            parties.setdefault(party.entity, party)
        elif tag in ("N3", "N4"):
            _address(party, segment)
        elif tag == "N9":
            if current is not None:
                line_refs = current.setdefault("references", {})
                if isinstance(line_refs, dict):
                    _add_reference(line_refs, f"N9:{segment.el(1)}", segment.el(2))
            else:
                _add_reference(references, f"N9:{segment.el(1)}", segment.el(2))
        elif tag == "W27" and w27 is None:
            w27 = segment
        elif tag == "G62":
            dates[f"G62:{segment.el(1)}"] = segment.el(2) + (
                f"T{segment.el(4)}" if segment.el(4) else ""
            )
            if segment.el(1) == "11" and shipped is None:
                shipped = segment
        elif tag == "LX":
            current = None
        elif tag == "W12":
            current = {
                k: v
                for k, v in (
                    ("status", segment.el(1)),
                    ("quantity_ordered", segment.el(2)),
                    ("quantity_shipped", segment.el(3)),
                    ("unit", segment.el(5)),
                    ("upc", segment.el(6)),
                    ("product_id_qualifier", segment.el(7)),
                    ("product_id", segment.el(8)),
                    ("lot", segment.el(9)),
                    ("weight", segment.el(10)),
                    ("weight_unit", segment.el(12)),
                )
                if v
            }
            if len(lines) < _LIST_LIMIT:
                lines.append(current)
        elif tag == "G69" and current is not None:
            current["description"] = segment.el(1)
        elif tag == "W03" and w03 is None:
            w03 = segment
            party = None

    if w06 is None:
        yield RecordError(tx.header.line, tx.raw(), "945 has no W06 segment", "W06")
        return
    tracking = w06.el(4) or w06.el(2)
    if not tracking:
        yield RecordError(
            w06.line, tx.raw(), "W06-02 and W06-04 are both empty: no shipment reference", "W06-04"
        )
        return
    when = _when(shipped, 2, 4, 5) if shipped is not None else _when(w06, 3, None, None)
    if isinstance(when, RecordError):
        when.raw = tx.raw()
        yield when
        return

    _add_reference(references, "W06-02", w06.el(2))
    _add_reference(references, "W06-04", w06.el(4))
    _add_reference(references, "W06-05", w06.el(5))
    _add_reference(references, "W06-06", w06.el(6))
    extra = _base_extra(tx, envelope)
    extra["references"] = references
    extra["event_time_source"] = "G62:11" if shipped is not None else "W06-03"
    if shipped is None or not shipped.el(4):
        # A date without a time of day: midnight is a placeholder, not an observed time.
        extra["date_only"] = True
    if when.code:
        extra["time_code"] = when.code
    if dates:
        extra["dates"] = dates
    if lines:
        extra["lines"] = lines
    extra["parties"] = {entity: p.as_dict() for entity, p in parties.items()}

    record = Record(
        line=w06.line,
        raw=tx.raw(),
        tracking_number=tracking,
        event_code="warehouse_dispatched",
        partner_code="945",
        event_time=when.value,
        time_zone=when.zone,
        description="Warehouse shipping advice",
        order_number=w06.el(2),
    )
    warehouse = parties.get("WH") or parties.get("SF")
    if warehouse is not None:
        warehouse.place(record)
        if warehouse.name:
            extra["warehouse"] = warehouse.name
        if warehouse.id:
            extra["warehouse_id"] = f"{warehouse.id_qualifier}:{warehouse.id}"
    if w27 is not None:
        record.carrier = w27.el(2)
        record.transport_mode = TRANSPORT_METHODS.get(w27.el(1), "")
    if w03 is not None:
        weight = _weight_kg(w03.el(2), w03.el(3))
        if weight is not None:
            record.weight_kg = weight
            extra["weight"] = {"value": w03.el(2), "unit": w03.el(3)}
        if w03.el(1):
            extra["units_shipped"] = w03.el(1)
    record.extra = extra
    yield record


# --------------------------------------------------------------------------------------------
# 856 Ship notice / manifest


@dataclass(slots=True)
class _Shipment:
    hl: _Segment
    segments: list[_Segment] = field(default_factory=list)


def _ship_notice(tx: _Set, envelope: _Envelope) -> Iterator[ParseItem]:
    """856: one `info_received` Record per shipment-level HL (HL-03 = S).

    Tracking number: BSN-02 (shipment identification); time: BSN-03 date + BSN-04 time, which
    carry no time code and so are local (naive). Weight: sum of the shipment-level TD1 weights.
    """
    bsn: _Segment | None = None
    shipments: list[_Shipment] = []
    for segment in tx.segments[1:-1]:
        if segment.tag == "BSN" and bsn is None:
            bsn = segment
        elif segment.tag == "HL" and segment.el(3) == "S":
            shipments.append(_Shipment(segment, [segment]))
        elif shipments:
            shipments[-1].segments.append(segment)
    if bsn is None:
        yield RecordError(tx.header.line, tx.raw(), "856 has no BSN segment", "BSN")
        return
    if not bsn.el(2):
        yield RecordError(bsn.line, bsn.text, "BSN-02 shipment identification is empty", "BSN-02")
        return
    if not shipments:
        yield RecordError(
            tx.header.line, tx.raw(), "856 has no shipment-level HL (HL-03 = S)", "HL-03"
        )
        return
    when = _when(bsn, 3, 4, None)
    if isinstance(when, RecordError):
        when.raw = bsn.text
        yield when
        return
    for shipment in shipments:
        yield _shipment_record(tx, envelope, bsn, when, shipment)


def _shipment_record(
    tx: _Set, envelope: _Envelope, bsn: _Segment, when: _When, shipment: _Shipment
) -> Record:
    references: dict[str, str] = {}
    orders: list[str] = []
    parties: dict[str, _Party] = {}
    packages: list[str] = []
    items: list[dict[str, str]] = []
    warnings: list[str] = []
    party: _Party | None = None
    level = "S"
    weight: Decimal | None = None
    weights: list[dict[str, str]] = []
    carrier = mode = ""
    shipped_at = ""
    for segment in shipment.segments:
        tag = segment.tag
        if tag == "HL":
            level = segment.el(3)
            party = None
        elif tag == "TD1" and level == "S":
            kg = _weight_kg(segment.el(7), segment.el(8))
            if kg is not None:
                weight = kg if weight is None else weight + kg
                weights.append({"value": segment.el(7), "unit": segment.el(8)})
            elif segment.el(7):
                warnings.append(
                    f"TD1 at segment {segment.line}: weight {segment.el(7)!r} "
                    f"{segment.el(8)!r} not understood"
                )
        elif tag == "TD5" and not carrier:
            carrier = segment.el(3) if segment.el(2) == "2" else ""
            mode = TRANSPORT_METHODS.get(segment.el(4), "")
        elif tag == "REF":
            if segment.el(1) in ("PO", "ON") and segment.el(2) not in orders:
                orders.append(segment.el(2))
            prefix = "REF" if level == "S" else f"REF[{level}]"
            _add_reference(references, f"{prefix}:{segment.el(1)}", segment.el(2))
        elif tag == "PRF" and segment.el(1) and segment.el(1) not in orders:
            orders.append(segment.el(1))
        elif tag == "DTM" and level == "S" and segment.el(1) == "011":
            shipped = _when(segment, 2, 3, 4)
            if isinstance(shipped, RecordError):
                # The shipped date is a detail of the notice, not its event: keep the record.
                warnings.append(f"DTM*011 at segment {segment.line}: {shipped.reason}")
            else:
                shipped_at = shipped.value.isoformat()
        elif tag == "N1":
            party = _party(segment)
            if level == "S":
                parties.setdefault(party.entity, party)
        elif tag in ("N3", "N4"):
            _address(party, segment)
        elif tag == "MAN" and len(packages) < _LIST_LIMIT and segment.el(2):
            packages.append(segment.el(2))
        elif tag == "LIN" and len(items) < _LIST_LIMIT:
            items.append({"qualifier": segment.el(2), "product_id": segment.el(3)})
        elif tag == "SN1" and items:
            items[-1]["quantity"] = segment.el(2)
            items[-1]["unit"] = segment.el(3)

    extra = _base_extra(tx, envelope)
    _add_reference(references, "BSN-02", bsn.el(2))
    extra["references"] = references
    extra["hl"] = shipment.hl.el(1)
    if len(orders) > 1:
        extra["order_numbers"] = orders
    if shipped_at:
        extra["shipped_at"] = shipped_at
    if packages:
        extra["packages"] = packages
    if items:
        extra["items"] = items
    if weights:
        extra["weight"] = weights
    if warnings:
        extra["warnings"] = warnings
    if not bsn.el(4):
        extra["date_only"] = True
    extra["parties"] = {entity: p.as_dict() for entity, p in parties.items()}
    record = Record(
        line=shipment.hl.line,
        raw=tx.raw(shipment.segments),
        tracking_number=bsn.el(2),
        event_code="info_received",
        partner_code="856",
        event_time=when.value,
        description="Advance ship notice",
        # One order per shipment is the common case; a consolidated shipment lists its orders in
        # extra["order_numbers"] rather than picking one arbitrarily.
        order_number=orders[0] if len(orders) == 1 else "",
        carrier=carrier,
        transport_mode=mode,
        weight_kg=weight,
        extra=extra,
    )
    origin = parties.get("SF") or parties.get("SH")
    if origin is not None:
        origin.place(record)
    return record


_HANDLERS: dict[str, _Handler] = {
    "214": _shipment_status,
    "856": _ship_notice,
    "945": _warehouse_shipping_advice,
}
