"""Streaming a CEB XML message: the payload transcoded to UTF-8 where needed, fed in chunks to a
defused expat parser, each record element cut from the tree as soon as it ends (with its raw
text and line numbers) and handed to its message handler."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from typing import IO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from warehouses.parsers.base import (
    RAW_LIMIT,
    FormatError,
    ParseItem,
    ParseOptions,
    RecordError,
    RecordRejected,
)
from warehouses.parsers.ceb.messages import handle_record
from warehouses.parsers.ceb.record import CEB_NS, Fields, Rec
from warehouses.parsers.encodings import encoding_name

_CHUNK = 64 * 1024
_ROOT_RE = re.compile(r"CEB(\d{3})(?:Message)?")
_DECL_ENCODING_RE = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")

# Envelope parts that are not records.
_NOT_RECORDS = frozenset({"BaseTransfer", "BaseSubscribe", "ExtendMessage"})


def local_name(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


class _Collector:
    """Parser target: builds each root child, remembers where it started, queues it at its end."""

    def __init__(self) -> None:
        self.parser: DefusedXMLParser | None = None
        self.builder = TreeBuilder()
        self.depth = 0
        self.root: Element | None = None
        self.msg = 0
        self.lines: dict[Element, int] = {}
        self.record_start = 0
        self.record_line = 0
        # (element, line, first byte, byte index of its end tag)
        self.done: list[tuple[Element, int, int, int]] = []

    def _position(self) -> tuple[int, int]:
        assert self.parser is not None
        expat = self.parser.parser
        return expat.CurrentLineNumber, expat.CurrentByteIndex

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = self.builder.start(tag, attrs)
        self.depth += 1
        line, index = self._position()
        if self.depth == 1:
            namespace, name = local_name(tag)
            match = _ROOT_RE.fullmatch(name)
            if namespace != CEB_NS or match is None:
                raise FormatError(
                    f"root element {name!r} (namespace {namespace!r}) is not a CEB message "
                    f"in {CEB_NS}",
                    line=line,
                    field=name,
                )
            self.root = element
            self.msg = int(match.group(1))
        else:
            if self.depth == 2:
                self.record_start, self.record_line = index, line
            self.lines[element] = line
        return element

    def end(self, tag: str) -> Element:
        element = self.builder.end(tag)
        if self.depth == 2 and self.root is not None:
            _, index = self._position()
            self.done.append((element, self.record_line, self.record_start, index))
            self.root.remove(element)  # records are handed on one by one, never kept
        self.depth -= 1
        return element

    def data(self, text: str) -> None:
        self.builder.data(text)

    def close(self) -> Element:
        return self.builder.close()


def _refuse_dtd(*_args: object) -> None:
    raise FormatError(
        "DTD (<!DOCTYPE ...>) refused: CEB messages never carry a DTD", field="DOCTYPE"
    )


def _defused_reason(exc: DefusedXmlException) -> str:
    name = getattr(exc, "name", "")
    if getattr(exc, "sysid", None) or getattr(exc, "pubid", None):
        return f"external entity {name!r} refused (XML external entity / XXE protection)"
    if name:
        return f"entity declaration {name!r} refused (entity expansion / billion laughs protection)"
    return f"refused by XML protection: {exc}"


def declared_encoding(head: bytes) -> str | None:
    """The encoding the XML declaration names, or None when there is no declaration."""
    match = _DECL_ENCODING_RE.search(head[:512])
    if not match:
        return None
    # GBK, GB2312 and CP936 read as GB18030 (the one table of encoding names).
    return encoding_name(match.group(1).decode("ascii"))


def _encoding_of(head: bytes, options: ParseOptions) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return declared_encoding(head) or encoding_name(options.encoding)


def _chunks(stream: IO[bytes], options: ParseOptions) -> Iterator[bytes]:
    """The payload as UTF-8 (or ASCII) chunks: other encodings are transcoded, since expat reads
    only a few encodings natively and no multi-byte Chinese one."""
    first = stream.read(_CHUNK)
    if not first:
        raise FormatError("empty payload: no CEB message")
    encoding = _encoding_of(first, options)
    try:
        codec = codecs.lookup(encoding)
    except LookupError as exc:
        raise FormatError(f"unknown encoding {encoding!r}", line=1, field="encoding") from exc
    # A UTF-8 BOM wins over the declaration (XML 1.0 appendix F), as when the ingest pipeline
    # hands over a UTF-16 payload transcoded to UTF-8: the declaration is rewritten below.
    relabel = first.startswith(codecs.BOM_UTF8) and declared_encoding(first) not in (None, "utf-8")
    if codec.name in {"utf-8", "ascii"} and not relabel:
        yield first
        while chunk := stream.read(_CHUNK):
            yield chunk
        return
    decoder = codec.incrementaldecoder("strict")
    chunk, first_chunk = first, True
    while True:
        final = not chunk
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise FormatError(f"payload is not valid {codec.name}: {exc.reason}") from exc
        if first_chunk:
            # The bytes handed to expat are UTF-8 now, so the declaration must say so.
            text = re.sub(
                r"""^\ufeff?(<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""",
                r"\g<1>UTF-8\g<2>",
                text.lstrip("\ufeff"),
            )
            first_chunk = False
        if text:
            yield text.encode("utf-8")
        if final:
            return
        chunk = stream.read(_CHUNK)


def _flatten(element: Element, lines: Mapping[Element, int], default: int) -> Fields:
    fields: Fields = {}
    for child in element:
        _, name = local_name(child.tag)
        if len(child) == 0 and name not in fields:
            fields[name] = ((child.text or "").strip(), lines.get(child, default))
    return fields


def _to_rec(element: Element, msg: int, line: int, raw: str, lines: Mapping[Element, int]) -> Rec:
    _, name = local_name(element.tag)
    head_element = element
    lists: list[Fields] = []
    for child in element:
        _, child_name = local_name(child.tag)
        if child_name.endswith("Head") and len(child):
            head_element = child
        elif child_name.endswith("List"):
            lists.append(_flatten(child, lines, lines.get(child, line)))
    return Rec(
        msg=msg,
        name=name,
        line=line,
        raw=raw,
        head=_flatten(head_element, lines, line),
        lists=lists,
    )


def parse(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Records of one CEB message; FormatError when the document itself is unusable.

    1. Feed the payload in chunks to a defused expat parser (DTDs and entities refused).
    2. Each completed root child is cut from the tree with its raw text and line number.
    3. Envelope parts (BaseTransfer, signature) are skipped; records go to their handler, and a
       handler's rejection becomes a RecordError while parsing goes on.
    """
    collector = _Collector()
    parser = DefusedXMLParser(
        target=collector, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    collector.parser = parser
    # Entity declarations are refused by defusedxml as they are read; any DTD left is refused
    # when it closes, so the reason names the attack when there is one.
    parser.parser.EndDoctypeDeclHandler = _refuse_dtd
    buffer = bytearray()
    base = 0  # absolute byte offset of buffer[0]

    def drain() -> Iterator[ParseItem]:
        nonlocal buffer, base
        while collector.done:
            element, line, start, end_index = collector.done.pop(0)
            stop = buffer.find(b">", end_index - base) + 1 or len(buffer)
            raw = bytes(buffer[start - base : stop])[: RAW_LIMIT * 4]
            raw_text = raw.decode("utf-8", errors="replace")[:RAW_LIMIT]
            del buffer[:stop]
            base += stop
            lines = collector.lines
            namespace, name = local_name(element.tag)
            try:
                if namespace != CEB_NS or name in _NOT_RECORDS:
                    continue
                rec = _to_rec(element, collector.msg, line, raw_text, lines)
                try:
                    yield from handle_record(rec)
                except RecordRejected as exc:
                    yield RecordError(exc.line or line, raw_text, exc.reason, exc.field)
            finally:
                for node in element.iter():
                    lines.pop(node, None)

    def fail(exc: Exception) -> FormatError:
        if isinstance(exc, FormatError):
            return exc
        if isinstance(exc, DefusedXmlException):
            return FormatError(_defused_reason(exc), line=_line(parser), field="DOCTYPE")
        if isinstance(exc, ParseError):
            position = getattr(exc, "position", (0, 0))
            return FormatError(f"malformed XML: {exc}", line=position[0])
        return FormatError(f"malformed XML: {exc}", line=_line(parser))

    # DefusedXmlException is a ValueError; expat raises LookupError or ValueError for a declared
    # encoding it cannot read (e.g. a UTF-8 BOM followed by encoding="Shift_JIS").
    for chunk in _chunks(stream, options):
        buffer += chunk
        try:
            parser.feed(chunk)
        except (FormatError, ParseError, LookupError, ValueError) as exc:
            yield from drain()
            raise fail(exc) from exc
        yield from drain()
    try:
        parser.close()
    except (FormatError, ParseError, LookupError, ValueError) as exc:
        yield from drain()
        raise fail(exc) from exc
    yield from drain()
    if collector.root is None:
        raise FormatError("no CEB message element found")


def _line(parser: DefusedXMLParser) -> int:
    try:
        return int(parser.parser.CurrentLineNumber)
    except AttributeError:
        return 0
