"""ANSI X12 envelope: interchanges, functional groups and transaction sets, checked and walked.

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

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, RecordError
from warehouses.parsers.x12.advice_945 import warehouse_shipping_advice
from warehouses.parsers.x12.notice_856 import ship_notice
from warehouses.parsers.x12.segments import (
    Envelope,
    Segment,
    SegmentReader,
    TransactionSet,
    interchange_id,
)
from warehouses.parsers.x12.status_214 import shipment_status

_SUPPORTED = "214, 856, 945"

_Handler = Callable[[TransactionSet, Envelope], Iterator[ParseItem]]

_HANDLERS: dict[str, _Handler] = {
    "214": shipment_status,
    "856": ship_notice,
    "945": warehouse_shipping_advice,
}


@dataclass(slots=True)
class _Group:
    header: Segment
    sets: int = 0


def interchange_ids(stream: IO[bytes], options: ParseOptions | None = None) -> list[str]:
    """Every interchange header in the payload as "ISA06/ISA08/ISA13", in file order.

    The parser cannot know which interchanges were received before; the ingest service compares
    these ids with its history to spot a re-sent interchange. Raises FormatError on a corrupt ISA.
    """
    segments = SegmentReader(stream, options or ParseOptions())
    ids: list[str] = []
    while (isa := segments.read_isa()) is not None:
        ids.append(interchange_id(isa))
        while not segments.at_isa():
            segment = segments.next_segment()
            if segment is None:
                return ids
            if segment.tag == "IEA":
                break
    return ids


def parse(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Parse an X12 payload of one or more interchanges into Records and RecordErrors."""
    segments = SegmentReader(stream, options)
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
    segment: Segment, name: str, expected: int, what: str, holder: str
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
    segments: SegmentReader, isa: Segment, seen: dict[tuple[str, str], int]
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
    walk = _Walk(isa, Envelope(interchange_id(isa)), segments)
    while not walk.ended:
        if segments.at_isa():
            line = segments.number + 1
            yield from walk.unclosed("ISA", line)
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
            yield from walk.unclosed("the end of the payload", line)
            raise FormatError(
                f"payload ends inside interchange {control}: no IEA trailer (truncated file?)",
                line=line,
                field="IEA",
            )
        yield from walk.segment(segment)


class _Walk:
    """One interchange's state while its segments are read: the open group and set."""

    def __init__(self, isa: Segment, envelope: Envelope, segments: SegmentReader) -> None:
        self.control = isa.el(13)
        self.envelope = envelope
        self.segments = segments
        self.groups = 0
        self.group: _Group | None = None
        self.open_set: TransactionSet | None = None
        self.skipping = False  # inside a set whose ST header was garbled, until its SE
        self.ended = False  # after the IEA

    def segment(self, segment: Segment) -> Iterator[ParseItem]:
        tag = segment.tag
        if segment.undecodable and self.open_set is None and not self.skipping:
            # An envelope segment (or a stray one) with bytes that do not decode: reported on
            # its own; what it would have opened or closed is checked as if it were missing.
            yield RecordError(segment.line, segment.text, segment.undecodable, tag)
            return
        envelope_segment = {"IEA": self._iea, "GS": self._gs, "GE": self._ge, "ST": self._st}
        handler = envelope_segment.get(tag)
        if handler is not None:
            yield from handler(segment)
            return
        if segment.undecodable and self.open_set is not None and self.open_set.undecodable is None:
            self.open_set.undecodable = segment
        if tag == "SE":
            yield from self._se(segment)
        else:
            yield from self._body(segment)

    def unclosed(self, before: str, line: int) -> Iterator[ParseItem]:
        """The open set, then the open group, reported as unclosed before `before`."""
        yield from self._unclosed_set(before, line)
        yield from self._unclosed_group(before, line)

    def _unclosed_set(self, before: str, line: int) -> Iterator[ParseItem]:
        if self.open_set is not None:
            open_set = self.open_set
            yield RecordError(
                open_set.header.line,
                open_set.raw(),
                f"transaction set {open_set.control} (ST at segment {open_set.header.line}) has "
                f"no SE trailer before {before} at segment {line}; set rejected",
                "SE",
            )
            self.open_set = None

    def _unclosed_group(self, before: str, line: int) -> Iterator[ParseItem]:
        if self.group is not None:
            group = self.group
            yield RecordError(
                group.header.line,
                group.header.text,
                f"functional group {group.header.el(6)} has no GE trailer before {before} at "
                f"segment {line}",
                "GE",
            )
            self.group = None

    def _iea(self, segment: Segment) -> Iterator[ParseItem]:
        yield from self.unclosed("IEA", segment.line)
        error = _count_error(
            segment, "IEA", self.groups, "functional groups", f"interchange {self.control}"
        )
        if error is not None:
            yield error
        if segment.el(2) != self.control:
            yield RecordError(
                segment.line,
                segment.text,
                f"IEA02 {segment.el(2)!r} does not match ISA13 {self.control!r}",
                "IEA02",
            )
        self.ended = True

    def _gs(self, segment: Segment) -> Iterator[ParseItem]:
        yield from self.unclosed("GS", segment.line)
        self.skipping = False
        self.groups += 1
        self.group = _Group(segment)
        self.envelope.group_control = segment.el(6)
        self.envelope.group_date = segment.el(4)
        self.envelope.group_time = segment.el(5)
        self.envelope.version = segment.el(8)

    def _ge(self, segment: Segment) -> Iterator[ParseItem]:
        yield from self._unclosed_set("GE", segment.line)
        self.skipping = False
        group = self.group
        if group is None:
            yield RecordError(
                segment.line, segment.text, "GE trailer without a GS group header", "GE"
            )
            return
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
        self.group = None

    def _st(self, segment: Segment) -> Iterator[ParseItem]:
        yield from self._unclosed_set("ST", segment.line)
        self.skipping = False
        if self.group is None:
            yield RecordError(
                segment.line,
                segment.text,
                "ST transaction set header outside a functional group (no GS); "
                "segments up to the next SE skipped",
                "GS",
            )
            self.skipping = True
            return
        self.group.sets += 1
        self.open_set = TransactionSet(segment, self.segments.terminator, [segment])

    def _se(self, segment: Segment) -> Iterator[ParseItem]:
        if self.open_set is not None:
            self.open_set.segments.append(segment)
            yield from _close_set(self.open_set, self.envelope)
            self.open_set = None
        elif self.skipping:
            self.skipping = False
        else:
            yield RecordError(segment.line, segment.text, "SE trailer without an ST header", "ST")

    def _body(self, segment: Segment) -> Iterator[ParseItem]:
        if self.open_set is not None:
            self.open_set.segments.append(segment)
        elif self.skipping:
            return
        elif self.group is None:
            yield RecordError(
                segment.line,
                segment.text,
                f"expected a GS functional group header, found {segment.tag!r}",
                "GS",
            )
            self.skipping = True
        else:
            # A garbled ST (e.g. "T*850*0001"): the set still counts towards GE01, since the
            # sender did send it, but none of its segments can be trusted.
            self.group.sets += 1
            self.skipping = True
            yield RecordError(
                segment.line,
                segment.text,
                f"expected an ST transaction set header, found {segment.tag!r}; "
                "segments up to the next SE skipped",
                "ST",
            )


def _close_set(tx: TransactionSet, envelope: Envelope) -> Iterator[ParseItem]:
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
