"""EDIFACT envelope: UNB/UNZ interchanges, UNG/UNE groups and UNH/UNT messages, checked.

Envelope rules: a missing or corrupt UNB, an unreadable UNA, undecodable bytes, an interchange
that ends inside a segment or without UNZ raise FormatError (records already yielded stand).
A corrupt UNH, a missing or wrong UNT, or another message type rejects only that message.
A UNZ/UNE whose counts or control references disagree is reported as a RecordError on the
trailer segment: every message was read, but the operator must know the interchange is odd.

Messages are buffered one at a time (the UNT count decides whether a message is kept), so memory
is bounded by the largest message, not by the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from warehouses.parsers.base import RAW_LIMIT, FormatError, ParseItem, ParseOptions, RecordError
from warehouses.parsers.edifact.iftsta import Iftsta
from warehouses.parsers.edifact.tokenizer import Segment, raw_of, read_segments

_MAX_MESSAGE_SEGMENTS = 200_000


@dataclass(slots=True)
class Interchange:
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


def _check_unb(unb: Segment) -> Interchange:
    def fail(field: str, reason: str) -> FormatError:
        return FormatError(reason, line=unb.number, field=field, raw=unb.raw[:RAW_LIMIT])

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
    return Interchange(control_ref=control_ref, sender=unb.get(2), syntax=f"{syntax}:{version}")


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
    interchange: Interchange | None = None
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
                    reason, line=segment.number, field="UNB", raw=segment.raw[:RAW_LIMIT]
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
                raw=raw_of(skipped),
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


def _count_message(interchange: Interchange, group: _Group | None) -> None:
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
            raw=segment.raw[:RAW_LIMIT],
            field=f"{tag}01",
            reason=f"{tag}01 control count is {count!r} but the "
            f"{'group' if tag == 'UNE' else 'interchange'} holds {counted} {what}",
        )
    if segment.get(2) != reference:
        yield RecordError(
            line=segment.number,
            raw=segment.raw[:RAW_LIMIT],
            field=f"{tag}02",
            reason=f"{tag}02 reference {segment.get(2)!r} does not match {reference!r}",
        )


def _read_message(
    unh: Segment, next_segment: _NextSegment, interchange: Interchange
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
    raw = raw_of(body)

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
    yield from Iftsta(body, interchange).records()
    return None
