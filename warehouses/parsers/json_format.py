"""JSON feeds: a top-level array of objects, or JSON Lines; the feed maps fields to ours.

Arrays are read incrementally with `raw_decode` over a sliding buffer, so a file of a million
events needs memory for one element, not the file. A mapping value may be a dotted path
(`"location.code"`) into nested objects.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator, Mapping
from typing import IO

from typing_extensions import Buffer

from warehouses.parsers.base import (
    FormatError,
    ParseItem,
    ParseOptions,
    Record,
    RecordError,
)
from warehouses.parsers.csv_formats import RECORD_FIELDS
from warehouses.parsers.encodings import clip, codec_for, decoded_lines
from warehouses.parsers.limits import json_depth_over, json_value_end

_CHUNK = 1 << 16
_WS = " \t\r\n"


def _lookup(obj: Mapping[str, object], path: str) -> object:
    current: object = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _too_deep(line: int, raw: str, options: ParseOptions) -> RecordError:
    return RecordError(
        line=line,
        raw=clip(raw),
        reason=f"JSON nested more than {options.max_json_depth} levels deep"
        " (the limit, INGEST_MAX_JSON_DEPTH)",
    )


def _record(
    line: int, raw: str, obj: object, mapping: Mapping[str, str], options: ParseOptions
) -> Record | RecordError:
    if not isinstance(obj, dict):
        return RecordError(
            line=line,
            raw=clip(raw),
            reason=f"expected a JSON object, got {type(obj).__name__}",
        )
    if len(obj) > options.max_fields:
        return RecordError(
            line=line,
            raw=clip(raw),
            reason=f"JSON object has {len(obj)} fields, more than the limit of "
            f"{options.max_fields} (INGEST_MAX_FIELDS)",
        )
    values = {name: _text(_lookup(obj, mapping.get(name, name))) for name in RECORD_FIELDS}
    event_time: object = _lookup(obj, mapping.get("event_time", "event_time"))
    return Record(
        line=line,
        raw=clip(raw),
        tracking_number=values["tracking_number"],
        unit_id=values["unit_id"],
        unit_kind=values["unit_kind"],
        partner_code=values["event_code"],
        # Epoch numbers are UTC by definition; the normalizer knows how to read them.
        event_time=values["event_time"]
        if not isinstance(event_time, int | float)
        else str(event_time),
        time_zone=values["time_zone"],
        location_name=values["location_name"],
        location_code=values["location_code"],
        country=values["country"],
        description=values["description"],
        order_number=values["order_number"],
        carrier=values["carrier"],
        transport_mode=values["transport_mode"],
        extra={"weight": values["weight_kg"]} if values["weight_kg"] else {},
    )


def _array(
    stream: IO[bytes], options: ParseOptions, mapping: Mapping[str, str]
) -> Iterator[ParseItem]:
    reader = _ArrayReader(stream, options)
    reader.open()
    first = True
    while reader.next_element(first):
        first = False
        line = reader.line
        obj, end, deep = reader.element()
        raw = reader.buf[reader.pos : end]
        if deep or json_depth_over(raw, options.max_json_depth):
            yield _too_deep(line, raw, options)
        else:
            yield _record(line, raw, obj, mapping, options)
        reader.line += raw.count("\n")
        reader.pos = end


class _ArrayReader:
    """A JSON array read from a byte stream one element at a time: only the text of the element
    being decoded (and what the last chunk brought after it) is held in memory."""

    def __init__(self, stream: IO[bytes], options: ParseOptions) -> None:
        self.codec = codec_for(options.encoding)
        self.decoder = codecs.getincrementaldecoder(self.codec)(errors="strict")
        self.json_decoder = json.JSONDecoder()
        self.stream = stream
        self.options = options
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.offset = 0  # bytes consumed, for error messages
        self.eof = False

    def more(self) -> bool:
        """Read the next chunk onto the buffer (dropping what was consumed); False at the end."""
        if self.eof:
            return False
        chunk = self.stream.read(_CHUNK)
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"bytes at offset {self.offset + exc.start} are not valid {self.codec}",
                line=self.line + self.buf[self.pos :].count("\n"),
            ) from exc
        self.offset += len(chunk)
        if not chunk:
            self.eof = True
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(chunk) or bool(text)

    def skip(self, chars: str) -> None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in chars:
                if self.buf[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return

    def open(self) -> None:
        """Read up to and past the array's opening bracket (a UTF-8 BOM tolerated)."""
        self.more()
        if self.buf.startswith("\ufeff"):
            self.pos = 1
        self.skip(_WS)
        if self.pos >= len(self.buf) or self.buf[self.pos] != "[":
            raise FormatError("expected a JSON array", line=self.line)
        self.pos += 1

    def next_element(self, first: bool) -> bool:
        """Move to the start of the next element; False at the closing bracket."""
        self.skip(_WS)
        if self.pos >= len(self.buf):
            raise FormatError("the JSON array is not closed (truncated file?)", line=self.line)
        if self.buf[self.pos] == "]":
            return False
        if not first:
            if self.buf[self.pos] != ",":
                raise FormatError(
                    f"expected ',' or ']' but found {self.buf[self.pos]!r}", line=self.line
                )
            self.pos += 1
            self.skip(_WS)
        return True

    def element(self) -> tuple[object, int, bool]:
        """(decoded value, end offset in the buffer, nested too deep to decode) of the element
        starting at `pos`, reading more of the stream until it is complete."""
        options = self.options
        while True:
            try:
                obj, end = self.json_decoder.raw_decode(self.buf, self.pos)
                return obj, end, False
            except RecursionError:
                # Nested past what the decoder can: skip the element by its brackets.
                found = json_value_end(self.buf, self.pos)
                if found is not None:
                    return None, found, True
                if len(self.buf) - self.pos > options.max_line_bytes or not self.more():
                    raise FormatError(
                        f"a JSON element nested more than {options.max_json_depth} levels deep"
                        " does not end within the line limit",
                        line=self.line,
                        raw=clip(self.buf[self.pos : self.pos + 200]),
                    ) from None
            except json.JSONDecodeError as exc:
                too_big = len(self.buf) - self.pos > options.max_line_bytes
                if too_big or not self.more():
                    raise FormatError(
                        f"invalid JSON: {exc.msg}",
                        line=self.line + self.buf[self.pos : exc.pos].count("\n"),
                        raw=clip(self.buf[self.pos : self.pos + 200]),
                    ) from exc


def _lines(
    stream: IO[bytes], options: ParseOptions, mapping: Mapping[str, str]
) -> Iterator[ParseItem]:
    for number, item in decoded_lines(stream, options.encoding, options.max_line_bytes):
        if isinstance(item, RecordError):
            yield item
            continue
        if not item.strip():
            continue
        if json_depth_over(item, options.max_json_depth):
            yield _too_deep(number, item, options)
            continue
        try:
            obj = json.loads(item)
        except json.JSONDecodeError as exc:
            yield RecordError(line=number, raw=clip(item), reason=f"invalid JSON: {exc.msg}")
            continue
        except RecursionError:  # only with INGEST_MAX_JSON_DEPTH near a thousand or more
            yield _too_deep(number, item, options)
            continue
        yield _record(number, item, obj, mapping, options)


def parse_json(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """A JSON array (streamed) or JSON Lines, told apart by the first non-blank character."""
    mapping = dict(options.column_mapping)
    head = stream.read(256)
    replay = io.BufferedReader(_Prepend(head, stream))
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise FormatError("the file is empty", line=1)
    if text.startswith(b"["):
        yield from _array(replay, options, mapping)
    else:
        yield from _lines(replay, options, mapping)


class _Prepend(io.RawIOBase):
    """Replays bytes already read, then the rest of the underlying stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)
