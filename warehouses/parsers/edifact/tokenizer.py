"""EDIFACT tokenizer: service characters (UNA or the defaults), the character set (UNB syntax
identifier or the feed's encoding), and the payload streamed as numbered segments.

Why not pydifact (0.2.3, installed): its `Parser.parse` takes the whole interchange as one `str`
(no streaming from a byte stream), looks for "'UNA" anywhere in the text, does not strip a UTF-8
BOM, and its `EDISyntaxError` carries a physical line/column but never the segment number the
operator needs. Its char-by-char tokenizer also offers no hook to recover from a corrupt segment.
A release-aware splitter is ~60 lines, so the parser has its own tokenizer (`read_segments`).

Segment numbers are 1-based and count the segments of the file, UNB being 1. The UNA service
string advice is not a segment (ISO 9735) and is not counted; errors in it carry number 1.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from warehouses.parsers.base import RAW_LIMIT, FormatError, ParseOptions
from warehouses.parsers.edifact.codes import SYNTAX_CODECS
from warehouses.parsers.encodings import UTF8, encoding_name

_CHUNK = 64 * 1024


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


def _codec_for(options: ParseOptions, syntax_id: str) -> str:
    wanted = encoding_name(options.encoding)
    if wanted != UTF8:
        return wanted  # an explicit feed setting (GB18030 ...) wins over the UNB label
    return SYNTAX_CODECS.get(syntax_id, UTF8)


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
                raw=text[:RAW_LIMIT],
            )
        if state == "overlong":
            raise FormatError(
                f"segment {number} has no {delimiters.terminator!r} terminator within "
                f"{options.max_line_bytes} characters",
                line=number,
                raw=text[:RAW_LIMIT],
            )
        elements = _split_elements(text, delimiters)
        yield Segment(number, elements[0][0].strip(), elements[1:], text + delimiters.terminator)


def raw_of(segments: Iterable[Segment]) -> str:
    out: list[str] = []
    size = 0
    for segment in segments:
        out.append(segment.raw)
        size += len(segment.raw) + 1
        if size > RAW_LIMIT:
            break
    return "\n".join(out)[:RAW_LIMIT]
