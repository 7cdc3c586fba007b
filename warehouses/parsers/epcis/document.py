"""An EPCIS 2.0 JSON(-LD) document: decoded, its eventList found, each event validated against
the schema on its own and located (the physical line where its JSON object starts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, Final

from warehouses.parsers.base import (
    RAW_LIMIT,
    FormatError,
    ParseItem,
    ParseOptions,
    RecordError,
    RecordRejected,
)
from warehouses.parsers.encodings import UTF8, codec_for
from warehouses.parsers.epcis.codes import with_bare_cbv_names
from warehouses.parsers.epcis.events import event_items
from warehouses.parsers.epcis.fields import DocumentContext, master_data_places
from warehouses.parsers.epcis.schema import json_pointer, load_validator

_DOCUMENT_TYPES: Final = ("EPCISDocument", "EPCISQueryDocument")


def parse(
    stream: IO[bytes], options: ParseOptions, *, validate: bool = True
) -> Iterator[ParseItem]:
    """Parse one EPCIS 2.0 JSON(-LD) document into Records and RecordErrors.

    1. Read and decode the whole document: JSON is one value, so it cannot be streamed with the
       standard library; not JSON -> FormatError at the decoder's line.
    2. Check the envelope (type, epcisBody, eventList) and validate it against the official
       schema shipped in the package (`load_validator`) with the eventList emptied -> FormatError.
       Only an explicit `validate=False` (benchmarks, tests of the parser's own checks) skips it.
    3. Validate each event on its own against the schema's event definition, so that one bad event
       is one RecordError (line = where the event starts, field = JSON pointer) and the others go
       on; then turn it into Records.
    """
    validator = load_validator() if validate else None
    text = _decode(stream.read(), options.encoding)
    doc = _load_json(text)
    events_path, events = _event_list(doc)
    if validator is not None:
        try:
            problem = validator.envelope_error(doc, events_path)
        except RecursionError as exc:
            raise FormatError("document is nested too deeply to validate", line=1) from exc
        if problem is not None:
            raise FormatError(f"not a valid EPCIS document: {problem}", line=1)
    context = DocumentContext(validated=validator is not None, places=master_data_places(doc))
    spans = _event_spans(text, events_path, len(events))
    lines = _span_lines(text, spans)
    base_pointer = json_pointer(events_path)
    for index, event in enumerate(events):
        line, raw = _line_and_raw(text, spans, index, event, lines)
        pointer = f"{base_pointer}/{index}"
        if not isinstance(event, dict):
            yield RecordError(line, raw, "event is not a JSON object", pointer)
            continue
        # The schema forbids the EPCIS 1.x URN spelling of CBV values (urn:epcglobal:cbv:...),
        # but systems converting from EPCIS XML still send it and its meaning is exact; rewrite
        # those values to the bare names first so such events are not rejected for spelling.
        if validator is not None:
            try:
                error = validator.event_error(with_bare_cbv_names(event))
            except RecursionError:
                yield RecordError(line, raw, "event is nested too deeply to validate", pointer)
                continue
            if error is not None:
                where = pointer + json_pointer(error[0])
                reason = "does not match the EPCIS 2.0 schema: " + error[1]
                yield RecordError(line, raw, reason, where)
                continue
        try:
            items = event_items(event, line, raw, context)
        except RecordRejected as rejected:
            where = rejected.field if rejected.field.startswith("/") else "/" + rejected.field
            yield RecordError(line, raw, rejected.reason, pointer + where)
            continue
        for item in items:
            if isinstance(item, RecordError):
                item.field = pointer + "/" + item.field
            elif item.code_field:
                item.code_field = pointer + "/" + item.code_field
            yield item


def _decode(data: bytes, encoding: str) -> str:
    try:
        name = codec_for(encoding)
    except ValueError as exc:
        raise FormatError(f"unknown encoding {encoding!r}") from exc
    if name == UTF8:
        name = "utf-8-sig"  # a byte-order mark is tolerated
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(f"not {encoding} text: {exc.reason}", line=line) from exc


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg}", line=exc.lineno) from exc
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        raise FormatError(f"not usable JSON: {exc}", line=1) from exc


def _event_list(doc: object) -> tuple[tuple[str, ...], list[Any]]:
    if not isinstance(doc, dict):
        raise FormatError("an EPCIS document is a JSON object", line=1)
    kind = doc.get("type")
    if kind not in _DOCUMENT_TYPES:
        raise FormatError(
            f"not an EPCIS document: type is {kind!r}, expected EPCISDocument or "
            "EPCISQueryDocument",
            line=1,
            field="/type",
        )
    if kind == "EPCISDocument":
        path: tuple[str, ...] = ("epcisBody", "eventList")
    else:
        path = ("epcisBody", "queryResults", "resultsBody", "eventList")
    node: object = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise FormatError(f"{kind} without {'.'.join(path)}", line=1, field=json_pointer(path))
        node = node[key]
    if not isinstance(node, list):
        raise FormatError("eventList is not a list", line=1, field=json_pointer(path))
    return path, node


# ------------------------------------------------------------------ where each event starts

_WHITESPACE: Final = " \t\n\r"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


_DECODER: Final = json.JSONDecoder()


def _event_spans(
    text: str, events_path: tuple[str, ...], count: int
) -> list[tuple[int, int]] | None:
    """(start, end) character offsets of each eventList element, or None if not found.

    Walks only the objects on the path to eventList and decodes each element once more with
    `raw_decode`; as in json.loads, the last of duplicate keys wins.
    """
    try:
        pos = _skip_ws(text, 0)
        for key in events_path:
            found = _member_value(text, pos, key)
            if found is None:
                return None
            pos = found
        if text[pos : pos + 1] != "[":
            return None
        spans: list[tuple[int, int]] = []
        pos = _skip_ws(text, pos + 1)
        if text[pos : pos + 1] == "]":
            return spans if count == 0 else None
        while True:
            _, end = _DECODER.raw_decode(text, pos)
            spans.append((pos, end))
            pos = _skip_ws(text, end)
            if text[pos : pos + 1] == "]":
                break
            pos = _skip_ws(text, pos + 1)
    except (ValueError, IndexError, RecursionError):
        return None
    return spans if len(spans) == count else None


def _member_value(text: str, pos: int, wanted: str) -> int | None:
    """Offset of the value of the last `wanted` member of the object starting at `pos`."""
    if text[pos : pos + 1] != "{":
        return None
    found = None
    pos = _skip_ws(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return None
    while True:
        if text[pos : pos + 1] != '"':
            return None
        key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        pos = _skip_ws(text, pos)
        if text[pos : pos + 1] != ":":
            return None
        pos = _skip_ws(text, pos + 1)
        if key == wanted:
            found = pos
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if text[pos : pos + 1] == "}":
            return found
        if text[pos : pos + 1] != ",":
            return None
        pos = _skip_ws(text, pos + 1)


def _span_lines(text: str, spans: list[tuple[int, int]] | None) -> list[int]:
    """The 1-based line of each span's start, counted once over the text (spans are in order):
    counting from the top for every event made a 20,000-event document quadratic."""
    lines: list[int] = []
    line, pos = 1, 0
    for start, _ in spans or []:
        line += text.count("\n", pos, start)
        pos = start
        lines.append(line)
    return lines


def _line_and_raw(
    text: str,
    spans: list[tuple[int, int]] | None,
    index: int,
    event: object,
    lines: list[int] | None = None,
) -> tuple[int, str]:
    if spans is None:
        # Not reachable for a document json.loads accepted; kept so an odd case degrades to the
        # event's 1-based position in eventList instead of failing.
        try:
            raw = json.dumps(event, ensure_ascii=False)[:RAW_LIMIT]
        except (ValueError, RecursionError):
            raw = ""
        return index + 1, raw
    start, end = spans[index]
    line = lines[index] if lines else text.count("\n", 0, start) + 1
    return line, text[start:end][:RAW_LIMIT]
