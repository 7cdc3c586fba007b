"""The official GS1 EPCIS 2.0 JSON Schema (shipped in `json_schema/`), split into the document
envelope and the single event, with the two format checks the schema relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jsonschema_rs
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from warehouses.parsers.epcis.fields import TIME_RE

# The official schema ships inside the package, with GS1's notice (json_schema/LICENSE).
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "json_schema"
_ROOT_SCHEMA_FILE: Final = "EPCIS-JSON-Schema-root.json"
_EVENT_SCHEMA_ID: Final = "https://gs1.github.io/EPCIS/JSON-Schema/EPCIS-Event-JSON-Schema.json"


def _is_date_time(value: object) -> bool:
    # RFC 3339 (what the schema's "date-time" means) requires the offset.
    if not isinstance(value, str):
        return True
    match = TIME_RE.fullmatch(value)
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
        return json_pointer(found[0]) + ": " + found[1]

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
    """($id, contents) of every schema file shipped in `json_schema/`, the root's first.

    The files ship inside the package (see json_schema/README.md): a missing or unreadable
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


def json_pointer(path: tuple[object, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
