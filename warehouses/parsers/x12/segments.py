"""X12 segments: the fixed-width ISA header, the segments after it, and the sets they form.

The ISA header is fixed width (106 characters with its terminator). The element separator is its
4th character, the component separator is ISA16 and the segment terminator is the character
right after ISA16. Each interchange in a file declares its own separators, so the reader switches
separators at every ISA.

Streaming: the payload is read in chunks and split into segments as it arrives. Undecodable bytes
are never replaced: they are carried as lone surrogates until the segment holding them is cut, and
the segment says why (`Segment.undecodable`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import IO

from warehouses.parsers.base import RAW_LIMIT, FormatError, ParseOptions
from warehouses.parsers.encodings import UTF8, codec_for

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


@dataclass(slots=True)
class Segment:
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


class SegmentReader:
    """Splits a byte stream into X12 segments, one interchange's separators at a time."""

    def __init__(self, stream: IO[bytes], options: ParseOptions) -> None:
        try:
            encoding = codec_for(options.encoding)
        except ValueError as exc:
            raise FormatError(f"unknown encoding {options.encoding!r}") from exc
        if encoding == UTF8:
            encoding = "utf-8-sig"  # a UTF-8 BOM before the ISA is common in the wild
        decoder_class = codecs.getincrementaldecoder(encoding)
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

    def read_isa(self) -> Segment | None:
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
            raise FormatError(f"ISA: {bad}", line=line, field="ISA", raw=escaped(head))
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
        return Segment(line, head[:105], elements)

    def next_segment(self) -> Segment | None:
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
                        raw=escaped(self._buf[self._pos : self._pos + RAW_LIMIT]),
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
                text = escaped(text)
            return Segment(self.number, text, text.split(self.element), bad)

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


def escaped(text: str) -> str:
    """Text with undecodable bytes shown as \\xNN escapes (storable, and what the file holds)."""
    if _UNDECODABLE.search(text) is None:
        return text
    return "".join(
        f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in text
    )


# --------------------------------------------------------------------------------------------
# What the segments form: an interchange's envelope and one transaction set


@dataclass(slots=True)
class Envelope:
    interchange: str  # "ISA06/ISA08/ISA13"
    group_control: str = ""
    group_date: str = ""
    group_time: str = ""
    version: str = ""


@dataclass(slots=True)
class TransactionSet:
    header: Segment
    terminator: str
    segments: list[Segment] = field(default_factory=list)
    undecodable: Segment | None = None  # its first segment with undecodable bytes

    @property
    def kind(self) -> str:
        return self.header.el(1)

    @property
    def control(self) -> str:
        return self.header.el(2)

    def raw(self, segments: list[Segment] | None = None) -> str:
        chosen = self.segments if segments is None else segments
        out: list[str] = []
        size = 0
        for segment in chosen:
            out.append(segment.text + self.terminator)
            size += len(segment.text) + 1
            if size >= RAW_LIMIT:
                break
        return "".join(out)[:RAW_LIMIT]


def interchange_id(isa: Segment) -> str:
    return f"{isa.el(6)}/{isa.el(8)}/{isa.el(13)}"
