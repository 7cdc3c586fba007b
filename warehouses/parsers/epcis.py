"""GS1 EPCIS 2.0 JSON / JSON-LD documents (EPCISDocument and EPCISQueryDocument).

What comes out, per event of the document's eventList:

- ObjectEvent: one Record of kind "event" per EPC in epcList (tracking_number = the EPC exactly as
  given; extra["epc_key"] = `epc_to_key(epc)` for the feed's identifier mapping). The event code
  comes from bizStep and disposition through `epcis_codes` as a suggestion: partner_code is
  "bizstep:<name>" or "disp:<name>" and the normalizer applies the feed's code mapping and
  unknown-code policy first (docs/mapping.md); a value outside the CBV has no suggestion, a CBV
  step that tracks nothing (commissioning) is rejected unless mapped. An event with only a
  quantityList (class-level quantities, no EPCs) names no parcel and yields nothing, without
  an error.
- AggregationEvent:
  - ADD: one Record of kind "membership" per childEPC (unit_id = parentID, event_time = the time
    the child was loaded, extra["action"] = "ADD");
  - DELETE: the same with `unloaded_at` = eventTime (event_time left empty) and
    extra["action"] = "DELETE"; a DELETE without childEPCs means "every child" in EPCIS and gives
    one membership Record with an empty tracking_number and extra["all_children"] = True;
  - ADD and DELETE also give an "event" Record on the unit (unit_id = parentID, empty
    tracking_number) when their bizStep maps to an event code (loading -> loaded, unloading ->
    unloaded) or is outside the CBV (the feed's mapping or policy decides); a CBV step without
    an event (packing) adds nothing;
  - OBSERVE: one "event" Record on the unit (unit_id = parentID, empty tracking_number); the
    pipeline spreads it to the parcels inside the unit at that moment. Without a parentID the
    children are reported one by one, like an ObjectEvent.
- TransactionEvent: for every bizTransaction of type po, one Record of kind "shipment" per EPC
  (order_number = the bizTransaction identifier as given, unit_id = parentID if any). If the event
  also has a bizStep/disposition with an event code, "event" Records per EPC as for ObjectEvent.
- An event carrying an errorDeclaration is a retraction of the event with that eventID (in EPCIS
  2.0 an error declaration repeats the erroneous event, eventID included, and adds the
  declaration): one Record of kind "retraction", nothing else. Every other Record carries
  extra["event_id"] when the event has an eventID, so the pipeline can find what a later
  retraction withdraws.
- TransformationEvent, AssociationEvent and extension event types: a RecordError "unsupported
  EPCIS event type". Association links things (a sensor and a pallet) without containing them,
  so treating it as a unit membership would put a data logger on a parcel's timeline.

extra keys on Records: event_id, event_type, action, biz_step, disposition (as given),
local_offset, offset_disagrees, tz_source, read_point, biz_location, epc_key, unit_key,
biz_transactions ([{"type", "id"}]), child_epcs (OBSERVE aggregation), schema_validated;
retractions: event_id, corrective_event_ids, reason, declaration_time.

Times: `eventTime` is an instant; `eventTimeZoneOffset` is the local offset where it happened.
They legitimately differ (eventTime in Z) and in the wild also disagree (a +08:00 eventTime with
a +01:00 local offset). The instant always comes from eventTime and is expressed in the local
offset, so the datetime carries both; extra["local_offset"] keeps the declared offset and
extra["offset_disagrees"] says whether eventTime carried a different non-UTC offset of its own.
An eventTime without any offset takes eventTimeZoneOffset; with neither it stays naive.

Locations: readPoint (where the event was seen) is preferred over bizLocation. location_name is
the master-data name from the document header when present, else the id as given; location_code
is a UN/LOCODE when the master data carries one or the id spells one (".../locode/CNSFH").

Line numbers: every Record and RecordError of an event carries the 1-based physical line on which
that event's JSON object starts; RecordError.field is a JSON pointer into the document
("/epcisBody/eventList/3/bizStep").
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import unquote

import jsonschema_rs
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from warehouses.parsers.base import (
    FormatError,
    ParseItem,
    ParseOptions,
    Record,
    RecordError,
)
from warehouses.parsers.epcis_codes import (
    BIZSTEP_CODES,
    DISPOSITION_CODES,
    OVERRIDING_DISPOSITIONS,
    PURCHASE_ORDER_TYPES,
    VocabularyKind,
    cbv_name,
)

RAW_LIMIT: Final = 2000
# The official schema ships inside the package, with GS1's notice (epcis_schema/LICENSE).
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "epcis_schema"
_ROOT_SCHEMA_FILE: Final = "EPCIS-JSON-Schema-root.json"
_EVENT_SCHEMA_ID: Final = "https://gs1.github.io/EPCIS/JSON-Schema/EPCIS-Event-JSON-Schema.json"
_DOCUMENT_TYPES: Final = ("EPCISDocument", "EPCISQueryDocument")
_SUPPORTED_TYPES: Final = ("ObjectEvent", "AggregationEvent", "TransactionEvent")


# --------------------------------------------------------------------------- schema validation


def _is_date_time(value: object) -> bool:
    # RFC 3339 (what the schema's "date-time" means) requires the offset.
    if not isinstance(value, str):
        return True
    match = _TIME_RE.fullmatch(value)
    return match is not None and match.group(8) is not None


# RFC 3986 absolute URI, loosely: a scheme, a colon, no whitespace or characters URIs never hold.
_URI_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*")


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI_RE.fullmatch(value) is not None


def _format_checker() -> FormatChecker:
    # jsonschema checks "date-time" and "uri" only with optional packages we do not install, and
    # the EPCIS schema relies on "uri" to reject unknown top-level fields (propertyNames). The GS1
    # tooling validates with ajv-formats, so both are checked here with our own small checks.
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    return checker


# The schema's only formats are these two ("date-time" once, "uri" nine times); jsonschema-rs
# gets the same checks as jsonschema's FormatChecker above, not its own.
_FAST_FORMATS: Final = {"date-time": _is_date_time, "uri": _is_uri}


@dataclass(frozen=True, slots=True)
class EpcisValidator:
    """The official EPCIS 2.0 JSON Schema, split into the envelope and the single event.

    Each event is checked twice over only when it fails: `event_fast` (jsonschema-rs, compiled
    Rust) answers "valid?" in microseconds, where jsonschema took over a millisecond an event;
    a failure is then described by `event` (jsonschema), whose messages operators read and
    tests pin, and whose verdict is final. The two use the same schema files and the same two
    format checks (a test holds their verdicts equal over valid and broken events).
    """

    document: Draft7Validator
    event: Draft7Validator
    event_fast: jsonschema_rs.Validator

    def envelope_error(self, doc: Mapping[str, Any], events_path: tuple[str, ...]) -> str | None:
        """The first schema error of the document with its eventList emptied, as "pointer: why"."""
        shell = _with_empty_events(doc, events_path)
        found = _describe(list(self.document.iter_errors(shell)))
        if found is None:
            return None
        return _pointer(found[0]) + ": " + found[1]

    def event_error(self, event: object) -> tuple[tuple[object, ...], str] | None:
        """(path inside the event, why) of the most telling schema error, or None if valid."""
        if self.event_fast.is_valid(event):
            return None
        return _describe(list(self.event.iter_errors(event)))


_COMBINATORS: Final = frozenset({"anyOf", "oneOf", "allOf", "if", "then", "$ref"})


def _describe(errors: list[ValidationError]) -> tuple[tuple[object, ...], str] | None:
    """The error an operator can act on: the deepest one, a concrete check over "any of".

    An unknown top-level field fails the schema's propertyNames rule with a message about the
    name only; it is reported as "unknown field" at that field's path.
    """
    if not errors:
        return None
    error = max(errors, key=lambda e: (len(e.absolute_path), e.validator not in _COMBINATORS))
    path = tuple(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        return (
            (*path, error.instance),
            f"unknown field {error.instance!r} (neither an EPCIS field nor a prefixed extension)",
        )
    if error.validator in ("anyOf", "oneOf") and error.context:
        # "<the whole event> is not valid under any of the given schemas" helps nobody; the
        # alternatives' own failures say what is missing ("'childEPCs' is a required property").
        reasons = dict.fromkeys(_short(e.message, 120) for e in error.context)
        return path, _short("none of the alternatives holds: " + " / ".join(reasons))
    return path, _short(error.message)


def _read_schemas() -> list[tuple[str, Any]]:
    """($id, contents) of every schema file shipped in `epcis_schema/`, the root's first.

    The files ship inside the package (see epcis_schema/README.md): a missing or unreadable
    file is an installation error and raises here, at import, rather than letting EPCIS
    events through unvalidated.
    """
    schemas: list[tuple[str, Any]] = []
    root: list[tuple[str, Any]] = []
    files = sorted(p for p in SCHEMA_DIR.iterdir() if p.name.endswith(".json"))
    if not any(p.name == _ROOT_SCHEMA_FILE for p in files):
        raise RuntimeError(
            f"the EPCIS JSON Schema is missing from the package: no {_ROOT_SCHEMA_FILE} in "
            f"{SCHEMA_DIR}"
        )
    for path in files:
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
            schema_id = contents["$id"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise RuntimeError(f"EPCIS schema file {path} is unreadable: {exc}") from exc
        (root if path.name == _ROOT_SCHEMA_FILE else schemas).append((str(schema_id), contents))
    return root + schemas


# Read at import: the pipeline imports this module before the first EPCIS payload, and the
# warehouses app's system check imports it at startup (warehouses/checks.py).
_SCHEMAS: Final = _read_schemas()


@lru_cache(maxsize=1)
def load_validator() -> EpcisValidator:
    """The validators of the EPCIS 2.0 JSON Schema shipped in the package (built once)."""
    root_id = _SCHEMAS[0][0]
    registry: Registry[Any] = Registry().with_resources(
        (schema_id, Resource.from_contents(contents, DRAFT7)) for schema_id, contents in _SCHEMAS
    )
    checker = _format_checker()
    document = Draft7Validator({"$ref": root_id}, registry=registry, format_checker=checker)
    event_schema = {"$ref": _EVENT_SCHEMA_ID + "#/definitions/EPCIS-Document-Event"}
    event = Draft7Validator(event_schema, registry=registry, format_checker=checker)
    event_fast = jsonschema_rs.Draft7Validator(
        event_schema,
        registry=jsonschema_rs.Registry(list(_SCHEMAS), draft=jsonschema_rs.Draft7),
        validate_formats=True,
        formats=_FAST_FORMATS,
    )
    return EpcisValidator(document=document, event=event, event_fast=event_fast)


def _with_empty_events(doc: Mapping[str, Any], events_path: tuple[str, ...]) -> dict[str, Any]:
    """A shallow copy of the document whose eventList is [], so events are judged one by one."""
    shell = dict(doc)
    node = shell
    for key in events_path[:-1]:
        child = dict(node[key])
        node[key] = child
        node = child
    node[events_path[-1]] = []
    return shell


# --------------------------------------------------------------------------- identifiers


def _gs1_check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


_DIGITAL_LINK_RE: Final = re.compile(r"https?://[^/?#]+(/[^?#]*)", re.IGNORECASE)
_DL_SSCC_RE: Final = re.compile(r"/00/(\d{18})(?:/|$)")
_DL_SGTIN_RE: Final = re.compile(r"/01/(\d{8}|\d{12,14})/21/([^/]+)")
_DL_SGLN_RE: Final = re.compile(r"/414/(\d{13})(?:/254/([^/]+))?(?:/|$)")
_DL_GIAI_RE: Final = re.compile(r"/8004/([^/]+)")


def epc_to_key(epc: str) -> str:
    """A canonical key for an EPC in any of its spellings, for the feed's identifier mapping.

    - SSCC: "urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"
      (any Digital Link host) and a bare 18-digit SSCC all give "sscc:106141412345678908";
    - SGTIN: "urn:epc:id:sgtin:0614141.112345.400" and ".../01/80614141123458/21/400" give
      "sgtin:80614141123458.400";
    - SGLN: "sgln:<GLN-13>" plus ".<extension>" unless the extension is 0;
    - GIAI: "giai:<company prefix><asset reference>";
    - any other EPC URN "urn:epc:id:<scheme>:<rest>" gives "<scheme>:<rest>"; anything else comes
      back stripped and otherwise unchanged.

    Percent-escapes in serial numbers are decoded. Check digits are computed, not verified: this
    only normalises spellings, it does not judge whether an identifier is genuine.
    """
    value = epc.strip()
    if value.lower().startswith("urn:epc:id:"):
        scheme, _, body = value[len("urn:epc:id:") :].partition(":")
        return _urn_key(scheme.lower(), unquote(body))
    link = _DIGITAL_LINK_RE.fullmatch(value)
    if link:
        path = link.group(1)
        if m := _DL_SSCC_RE.search(path):
            return "sscc:" + m.group(1)
        if m := _DL_SGTIN_RE.search(path):
            return f"sgtin:{m.group(1).zfill(14)}.{unquote(m.group(2))}"
        if m := _DL_SGLN_RE.search(path):
            extension = unquote(m.group(2) or "0")
            return "sgln:" + m.group(1) + ("" if extension == "0" else "." + extension)
        if m := _DL_GIAI_RE.search(path):
            return "giai:" + unquote(m.group(1))
        return value
    if len(value) == 18 and value.isdigit():
        return "sscc:" + value
    return value


def _urn_key(scheme: str, body: str) -> str:
    parts = body.split(".")
    if scheme == "sscc" and len(parts) == 2 and "".join(parts).isdigit():
        prefix, serial = parts
        if len(prefix) + len(serial) == 17:
            digits = serial[:1] + prefix + serial[1:]
            return "sscc:" + digits + _gs1_check_digit(digits)
    if scheme == "sgtin" and len(parts) >= 3:
        prefix, item = parts[0], parts[1]
        serial = ".".join(parts[2:])
        if (prefix + item).isdigit() and len(prefix) + len(item) == 13:
            digits = item[:1] + prefix + item[1:]
            return f"sgtin:{digits}{_gs1_check_digit(digits)}.{serial}"
    if scheme == "sgln" and len(parts) >= 3:
        prefix, location = parts[0], parts[1]
        extension = ".".join(parts[2:])
        if (prefix + location).isdigit() and len(prefix) + len(location) == 12:
            gln = prefix + location + _gs1_check_digit(prefix + location)
            return "sgln:" + gln + ("" if extension == "0" else "." + extension)
    if scheme == "giai" and len(parts) >= 2 and parts[0].isdigit():
        return "giai:" + parts[0] + ".".join(parts[1:])
    return f"{scheme}:{body}"


# --------------------------------------------------------------------------- parsing


class _Reject(Exception):
    """One event cannot be used; `field` is relative to the event ("bizStep", "/readPoint/id")."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class _Place:
    name: str = ""
    locode: str = ""
    country: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(slots=True)
class _Context:
    """What every event of a document shares."""

    validated: bool
    places: dict[str, _Place] = field(default_factory=dict)


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
    context = _Context(validated=validator is not None, places=_master_data_places(doc))
    spans = _event_spans(text, events_path, len(events))
    lines = _span_lines(text, spans)
    base_pointer = _pointer(events_path)
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
                error = validator.event_error(_with_bare_cbv_names(event))
            except RecursionError:
                yield RecordError(line, raw, "event is nested too deeply to validate", pointer)
                continue
            if error is not None:
                where = pointer + _pointer(error[0])
                reason = "does not match the EPCIS 2.0 schema: " + error[1]
                yield RecordError(line, raw, reason, where)
                continue
        try:
            items = _event_items(event, line, raw, context)
        except _Reject as rejected:
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
    name = encoding.lower().replace("_", "-")
    if name in ("utf-8", "utf8"):
        name = "utf-8-sig"  # a byte-order mark is tolerated
    elif name == "gbk":
        name = "gb18030"
    try:
        return data.decode(name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(f"not {encoding} text: {exc.reason}", line=line) from exc
    except LookupError as exc:
        raise FormatError(f"unknown encoding {encoding!r}") from exc


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
            raise FormatError(f"{kind} without {'.'.join(path)}", line=1, field=_pointer(path))
        node = node[key]
    if not isinstance(node, list):
        raise FormatError("eventList is not a list", line=1, field=_pointer(path))
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


# --------------------------------------------------------------------------- events


def _event_items(event: dict[str, Any], line: int, raw: str, ctx: _Context) -> list[ParseItem]:
    kind = event.get("type")
    if not isinstance(kind, str):
        raise _Reject("event without a type", "type")
    if "errorDeclaration" in event:
        return [_retraction(event, line, raw, ctx)]
    if kind not in _SUPPORTED_TYPES:
        raise _Reject(f"unsupported EPCIS event type {kind!r}", "type")
    common = _common(event, line, raw, ctx)
    if kind == "ObjectEvent":
        return _object_event(event, common)
    if kind == "AggregationEvent":
        return _aggregation_event(event, common)
    return _transaction_event(event, common)


@dataclass(slots=True)
class _Common:
    line: int
    raw: str
    event_time: datetime
    place: _Place
    transactions: list[dict[str, str]]
    extra: dict[str, object]

    def record(self, **values: Any) -> Record:
        # Deep-copied so that changing one Record's extra cannot change its siblings'.
        extra = copy.deepcopy(self.extra)
        extra.update(values.pop("extra", {}))
        return Record(
            line=self.line,
            raw=self.raw,
            location_name=self.place.name,
            location_code=self.place.locode,
            country=self.place.country,
            latitude=self.place.latitude,
            longitude=self.place.longitude,
            extra=extra,
            **values,
        )


def _common(event: dict[str, Any], line: int, raw: str, ctx: _Context) -> _Common:
    extra: dict[str, object] = {
        "event_type": event["type"],
        "schema_validated": ctx.validated,
    }
    event_id = _optional_str(event, "eventID")
    if event_id:
        extra["event_id"] = event_id
    for key, name in (
        ("action", "action"),
        ("bizStep", "biz_step"),
        ("disposition", "disposition"),
    ):
        value = _optional_str(event, key)
        if value:
            extra[name] = value
    when, time_extra = _event_time(event)
    extra.update(time_extra)
    read_point = _location_id(event, "readPoint")
    biz_location = _location_id(event, "bizLocation")
    if read_point:
        extra["read_point"] = read_point
    if biz_location:
        extra["biz_location"] = biz_location
    place = _place(read_point or biz_location, ctx)
    transactions = _biz_transactions(event)
    if transactions:
        extra["biz_transactions"] = transactions
    return _Common(
        line=line, raw=raw, event_time=when, place=place, transactions=transactions, extra=extra
    )


def _object_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    epcs = _str_list(event, "epcList")
    if not epcs:
        return []  # quantityList only: class-level quantities name no parcel
    code = _required_code(event)
    order = _single_purchase_order(common)
    return [
        common.record(
            kind="event",
            tracking_number=epc,
            **code.values(),
            event_time=common.event_time,
            order_number=order,
            extra={"epc_key": epc_to_key(epc)},
        )
        for epc in epcs
    ]


def _aggregation_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    action = event.get("action")
    parent = _optional_str(event, "parentID")
    children = _str_list(event, "childEPCs")
    if action == "OBSERVE" and not parent:
        return _object_event({**event, "epcList": children}, common)
    if not parent:
        raise _Reject(f"AggregationEvent {action} without parentID", "parentID")
    unit = {"unit_id": parent, "extra": {"unit_key": epc_to_key(parent)}}
    if action == "OBSERVE":
        code = _required_code(event)
        return [
            common.record(
                kind="event",
                **code.values(),
                event_time=common.event_time,
                unit_id=parent,
                extra={"unit_key": epc_to_key(parent), "child_epcs": children},
            )
        ]
    if action not in ("ADD", "DELETE"):
        raise _Reject(f"unknown action {action!r}", "action")
    items: list[ParseItem] = []
    times = (
        {"event_time": common.event_time} if action == "ADD" else {"unloaded_at": common.event_time}
    )
    members = children or ([""] if action == "DELETE" else [])
    for child in members:
        extra: dict[str, object] = {"action": action, "unit_key": epc_to_key(parent)}
        if child:
            extra["epc_key"] = epc_to_key(child)
        else:
            extra["all_children"] = True
        items.append(
            common.record(
                kind="membership",
                unit_id=parent,
                tracking_number=child,
                extra=extra,
                **times,
            )
        )
    try:
        unit_code = _event_code(event)
    except _Reject as rejected:
        items.append(RecordError(common.line, common.raw, rejected.reason, rejected.field))
        return items
    # A load or unload is an event on the unit too when its step is one (or is outside the CBV,
    # for the feed's mapping and policy to decide); a CBV step that tracks nothing adds none.
    if unit_code.tracked:
        items.append(
            common.record(
                kind="event",
                **unit_code.values(),
                event_time=common.event_time,
                **unit,
            )
        )
    return items


def _transaction_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    epcs = _str_list(event, "epcList")
    parent = _optional_str(event, "parentID")
    orders = _purchase_orders(common.transactions)
    unit_extra: dict[str, object] = {"unit_key": epc_to_key(parent)} if parent else {}
    items: list[ParseItem] = []
    for order in orders:
        for epc in epcs or ([""] if parent else []):
            extra = dict(unit_extra)
            if epc:
                extra["epc_key"] = epc_to_key(epc)
            items.append(
                common.record(
                    kind="shipment",
                    tracking_number=epc,
                    unit_id=parent,
                    order_number=order,
                    event_time=common.event_time,
                    extra=extra,
                )
            )
    try:
        code = _event_code(event)
    except _Reject as rejected:
        items.append(RecordError(common.line, common.raw, rejected.reason, rejected.field))
        return items
    if code.tracked:
        order = _single_purchase_order(common)
        for epc in epcs:
            items.append(
                common.record(
                    kind="event",
                    tracking_number=epc,
                    **code.values(),
                    event_time=common.event_time,
                    unit_id=parent,
                    order_number=order,
                    extra={"epc_key": epc_to_key(epc), **unit_extra},
                )
            )
    if not items and (epcs or parent):
        partner = _optional_str(event, "bizStep") or _optional_str(event, "disposition")
        step = f"its bizStep/disposition {partner!r} is not a parcel tracking event"
        raise _Reject(
            "TransactionEvent links no purchase order (po) and "
            + (step if partner else "has no bizStep"),
            "bizTransactionList",
        )
    return items


def _retraction(event: dict[str, Any], line: int, raw: str, ctx: _Context) -> Record:
    declaration = event["errorDeclaration"]
    if not isinstance(declaration, dict):
        raise _Reject("errorDeclaration is not an object", "errorDeclaration")
    event_id = _optional_str(event, "eventID")
    if not event_id:
        raise _Reject(
            "errorDeclaration without an eventID cannot name the event it retracts", "eventID"
        )
    declared = declaration.get("declarationTime")
    if not isinstance(declared, str):
        raise _Reject("errorDeclaration without declarationTime", "errorDeclaration")
    when = _parse_time(declared, "errorDeclaration/declarationTime")
    corrective = declaration.get("correctiveEventIDs", [])
    if not isinstance(corrective, list) or not all(isinstance(c, str) for c in corrective):
        raise _Reject("correctiveEventIDs is not a list of ids", "errorDeclaration")
    reason = declaration.get("reason", "")
    if not isinstance(reason, str):
        raise _Reject("errorDeclaration reason is not a string", "errorDeclaration/reason")
    reason = cbv_name(reason.strip(), "er")
    return Record(
        line=line,
        raw=raw,
        kind="retraction",
        event_time=when,
        description=f"error declaration: {reason}" if reason else "error declaration",
        extra={
            "event_id": event_id,
            "event_type": event["type"],
            "corrective_event_ids": list(corrective),
            "reason": reason,
            "declaration_time": declared,
            "schema_validated": ctx.validated,
        },
    )


# --------------------------------------------------------------------------- codes


@dataclass(frozen=True, slots=True)
class _Code:
    """What the CBV tables say about an event's bizStep and disposition (docs/mapping.md).

    `partner` is the key a feed's code mapping uses: "bizstep:<name>" or "disp:<name>", the bare
    CBV name for CBV values and the value as sent for any other ("bizstep:urn:acme:weighing").
    """

    event_code: str  # the table's suggestion, "" for none
    partner: str  # "" when the event has neither bizStep nor disposition
    note: str = ""  # why there is no suggestion
    untracked: bool = False  # a CBV value that is no parcel tracking event (commissioning)
    field: str = "bizStep"

    @property
    def tracked(self) -> bool:
        """Whether the event gives a tracking event unless the feed maps it otherwise."""
        return bool(self.partner) and not self.untracked

    def values(self) -> dict[str, Any]:
        return {
            "event_code": self.event_code,
            "partner_code": self.partner,
            "code_field": self.field,
            "code_note": self.note,
            "code_untracked": self.untracked,
        }


def _event_code(event: dict[str, Any]) -> _Code:
    """The suggestion of the CBV tables for an event, and the partner code it is mapped under.

    A value outside the CBV is not guessed: it has no suggestion, and the normalizer applies
    the feed's code mapping, then its unknown-code policy.
    """
    step = _optional_str(event, "bizStep")
    disposition = _optional_str(event, "disposition")
    step_name = cbv_name(step, "bizstep") if step else ""
    disp_name = cbv_name(disposition, "disp") if disposition else ""
    if step and step_name not in BIZSTEP_CODES:
        return _Code("", f"bizstep:{step_name}", f"unknown bizStep {step!r}")
    if disposition and disp_name not in DISPOSITION_CODES:
        return _Code(
            "", f"disp:{disp_name}", f"unknown disposition {disposition!r}", field="disposition"
        )
    step_code = BIZSTEP_CODES[step_name] if step else None
    if disposition:
        disposition_code = DISPOSITION_CODES[disp_name]
        if disposition_code and (disp_name in OVERRIDING_DISPOSITIONS or step_code is None):
            return _Code(disposition_code, f"disp:{disp_name}", field="disposition")
    if step_code:
        return _Code(step_code, f"bizstep:{step_name}")
    if step:
        what = f"bizStep {step!r}" + (f" with disposition {disposition!r}" if disposition else "")
        return _Code("", f"bizstep:{step_name}", f"{what} is not a parcel tracking event", True)
    if disposition:
        return _Code(
            "",
            f"disp:{disp_name}",
            f"disposition {disposition!r} is not a parcel tracking event",
            True,
            "disposition",
        )
    return _Code("", "")


def _required_code(event: dict[str, Any]) -> _Code:
    code = _event_code(event)
    if not code.partner:
        raise _Reject("event has neither bizStep nor disposition", "bizStep")
    return code


def _single_purchase_order(common: _Common) -> str:
    orders = _purchase_orders(common.transactions)
    return orders[0] if len(orders) == 1 else ""


def _purchase_orders(transactions: list[dict[str, str]]) -> list[str]:
    return [t["id"] for t in transactions if cbv_name(t["type"], "btt") in PURCHASE_ORDER_TYPES]


def _with_bare_cbv_names(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of the event for the schema, with long CBV spellings turned into bare names.

    The original is left alone so that partner_code and extra keep the values as sent.
    """
    checked = dict(event)
    fields: tuple[tuple[str, VocabularyKind], ...] = (
        ("bizStep", "bizstep"),
        ("disposition", "disp"),
    )
    for key, kind in fields:
        value = event.get(key)
        if isinstance(value, str):
            checked[key] = cbv_name(value, kind)
    lists: tuple[tuple[str, VocabularyKind], ...] = (
        ("bizTransactionList", "btt"),
        ("sourceList", "sdt"),
        ("destinationList", "sdt"),
    )
    for key, kind in lists:
        entries = event.get(key)
        if isinstance(entries, list):
            checked[key] = [_with_bare_type(entry, kind) for entry in entries]
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, dict) and isinstance(declaration.get("reason"), str):
        checked["errorDeclaration"] = {
            **declaration,
            "reason": cbv_name(declaration["reason"], "er"),
        }
    return checked


def _with_bare_type(entry: object, kind: VocabularyKind) -> object:
    if isinstance(entry, dict) and isinstance(entry.get("type"), str):
        return {**entry, "type": cbv_name(entry["type"], kind)}
    return entry


# --------------------------------------------------------------------------- fields

# RFC 3339 date-time; the offset is optional here so that a naive eventTime can be recognised
# (the schema requires one, but without the schema the parser still has to cope).
_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
_OFFSET_RE: Final = re.compile(r"([+-])(\d{2}):(\d{2})")


def _parse_offset(value: str, where: str) -> timezone:
    match = _OFFSET_RE.fullmatch(value)
    if not match or int(match.group(2)) > 14 or int(match.group(3)) > 59:
        raise _Reject(f"invalid time zone offset {value!r}", where)
    sign = -1 if match.group(1) == "-" else 1
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return timezone(sign * delta)


def _parse_time(value: str, where: str) -> datetime:
    """The datetime of an RFC 3339 value; aware when the value has an offset, else naive."""
    match = _TIME_RE.fullmatch(value)
    if not match:
        raise _Reject(f"invalid date-time {value!r}", where)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(6, "0")[:6]
    offset_text = match.group(8) or ""
    tz: timezone | None = None
    if offset_text.upper() == "Z":
        tz = UTC
    elif offset_text:
        tz = _parse_offset(offset_text, where)
    try:
        when = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError as exc:
        raise _Reject(f"impossible date-time {value!r}: {exc}", where) from exc
    return when


def _event_time(event: dict[str, Any]) -> tuple[datetime, dict[str, object]]:
    value = event.get("eventTime")
    if not isinstance(value, str):
        raise _Reject("event without eventTime", "eventTime")
    when = _parse_time(value, "eventTime")
    offset_value = event.get("eventTimeZoneOffset")
    extra: dict[str, object] = {}
    if offset_value is None:
        if when.tzinfo is not None:
            extra["tz_source"] = "explicit"
        return when, extra
    if not isinstance(offset_value, str):
        raise _Reject("eventTimeZoneOffset is not a string", "eventTimeZoneOffset")
    local = _parse_offset(offset_value, "eventTimeZoneOffset")
    extra["local_offset"] = offset_value
    if when.tzinfo is None:
        extra["tz_source"] = "separate_field"
        return when.replace(tzinfo=local), extra
    extra["tz_source"] = "explicit"
    own = when.utcoffset()
    extra["offset_disagrees"] = bool(own) and own != local.utcoffset(None)
    try:
        return when.astimezone(local), extra
    except OverflowError as exc:  # year 1 or 9999 shifted out of range
        raise _Reject(f"eventTime {value!r} out of range", "eventTime") from exc


def _optional_str(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Reject(f"{key} is not a string", key)
    return value.strip()


def _str_list(event: Mapping[str, Any], key: str) -> list[str]:
    value = event.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Reject(f"{key} is not a list of identifiers", key)
    return list(dict.fromkeys(v.strip() for v in value))


def _location_id(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise _Reject(f"{key} has no id", key)
    return str(value["id"]).strip()


def _biz_transactions(event: Mapping[str, Any]) -> list[dict[str, str]]:
    value = event.get("bizTransactionList")
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Reject("bizTransactionList is not a list", "bizTransactionList")
    result = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("bizTransaction"), str):
            raise _Reject("bizTransaction without an id", f"bizTransactionList/{index}")
        kind = entry.get("type", "")
        if not isinstance(kind, str):
            raise _Reject("bizTransaction type is not a string", f"bizTransactionList/{index}")
        result.append({"type": kind, "id": entry["bizTransaction"].strip()})
    return result


_LOCODE_IN_ID_RE: Final = re.compile(r".*locode[:/=]+([A-Za-z]{2}) ?([A-Za-z2-9]{3})", re.I)
_LOCODE_RE: Final = re.compile(r"([A-Za-z]{2}) ?([A-Za-z2-9]{3})")
# A readPoint/bizLocation given as a geo URI (RFC 5870, "geo:lat,lon[,alt][;params]"): the
# gazetteer reads the zone there when a time has none (EPCIS times normally carry an offset).
_GEO_RE: Final = re.compile(
    r"geo:([-+]?\d{1,2}(?:\.\d+)?),([-+]?\d{1,3}(?:\.\d+)?)(?:[,;]|$)", re.I
)


def _place(location_id: str, ctx: _Context) -> _Place:
    if not location_id:
        return _Place()
    known = ctx.places.get(location_id, _Place())
    locode = known.locode
    if not locode and (match := _LOCODE_IN_ID_RE.fullmatch(location_id)):
        locode = (match.group(1) + match.group(2)).upper()
    country = known.country or locode[:2]
    latitude = longitude = None
    if match := _GEO_RE.match(location_id):
        latitude, longitude = float(match.group(1)), float(match.group(2))
    return _Place(
        name=known.name or location_id,
        locode=locode,
        country=country,
        latitude=latitude,
        longitude=longitude,
    )


def _master_data_places(doc: Mapping[str, Any]) -> dict[str, _Place]:
    """Location names from epcisHeader.epcisMasterData (vocabulary of ReadPoint/BusinessLocation).

    Attributes are matched on their last name part (`urn:epcglobal:cbv:mda#name`,
    `cbvmda:name`): name, countryCode, and unlocode/locode (not a CBV attribute, but the obvious
    spelling of one, used by our partners). Malformed master data is ignored: it only adds names.
    """
    places: dict[str, _Place] = {}
    header = doc.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, dict) else None
    vocabularies = master.get("vocabularyList") if isinstance(master, dict) else None
    if not isinstance(vocabularies, list):
        return places
    for vocabulary in vocabularies:
        if not isinstance(vocabulary, dict):
            continue
        elements = vocabulary.get("vocabularyElementList")
        for element in elements if isinstance(elements, list) else []:
            if not isinstance(element, dict) or not isinstance(element.get("id"), str):
                continue
            values: dict[str, str] = {}
            attributes = element.get("attributes")
            for attribute in attributes if isinstance(attributes, list) else []:
                if isinstance(attribute, dict) and isinstance(attribute.get("id"), str):
                    name = re.split(r"[#:/]", attribute["id"])[-1].lower()
                    if isinstance(attribute.get("attribute"), str):
                        values[name] = attribute["attribute"].strip()
            locode = values.get("unlocode") or values.get("locode") or ""
            locode_match = _LOCODE_RE.fullmatch(locode)
            code = (locode_match.group(1) + locode_match.group(2)).upper() if locode_match else ""
            country = values.get("countrycode", "").upper()[:2] or code[:2]
            places[element["id"].strip()] = _Place(
                name=values.get("name", ""), locode=code, country=country
            )
    return places


def _pointer(path: tuple[object, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


__all__ = ["EpcisValidator", "epc_to_key", "load_validator", "parse"]
