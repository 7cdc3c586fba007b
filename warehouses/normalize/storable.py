"""What PostgreSQL cannot store, found before a record reaches it (issue 12).

One bad value in a COPY or a multi-row statement fails the whole batch, so every record is
checked here, once, on its way into a batch (`Batch.add`, warehouses/ingest/batches.py):

- text: a NUL character (PostgreSQL text cannot hold 0x00) or a lone surrogate (`\\ud800` in
  JSON: not Unicode, cannot be encoded as UTF-8), in any field, in `extra` (keys and values, at
  any depth) or in the raw text the event keeps;
- bounds: a value longer than its column or a number beyond its numeric column's precision,
  with the bounds read from the models' fields, so a migration that widens a column widens
  the check.

Whatever still fails in the database is isolated by the batch's bisection (ingest/batches.py) and
stored through `storable_text`, which makes any text safe for a text column.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import cache

from django.db import models

from shipments.models import Shipment, TrackingEvent, TransportUnit
from shipments.recording import EventInput
from warehouses.models import CustomsDocument
from warehouses.parsers.base import Record, RecordError

_NUL = "\x00"
# Record fields that are always text, in the order a problem is reported (raw last: a NUL in
# a field is reported under the field's name, not under the line's). The two times may also
# be datetimes the parser built.
_RECORD_TEXT = tuple(
    f.name for f in dataclasses.fields(Record) if f.type == "str" and f.name != "raw"
)
_RECORD_TIMES = ("event_time", "unloaded_at")
_record_texts = operator.attrgetter(*_RECORD_TEXT, "raw")
# A separator no value can confuse with a problem.
_JOIN = "\x1f"


def _text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None."""
    if value.isascii():
        if _NUL in value:
            return f"contains a NUL character (0x00) at character {value.index(_NUL) + 1}"
        return None
    if _NUL in value:
        return f"contains a NUL character (0x00) at character {value.index(_NUL) + 1}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        return (
            f"contains a lone surrogate \\u{code:04x} at character {exc.start + 1}"
            " (an escape that is not Unicode text)"
        )
    return None


def _walk(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON-like value, keys included, without recursion."""
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                key_text = str(key)
                yield f"{where} key", key_text
                stack.append((f"{where}.{key_text}", child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))


def _texts(record: Record) -> Iterator[tuple[str, str]]:
    yield from zip(_RECORD_TEXT, _record_texts(record), strict=False)
    for name in _RECORD_TIMES:
        value = getattr(record, name)
        if isinstance(value, str):
            yield name, value
    if record.extra:
        yield from _walk(record.extra, "extra")
    yield "", record.raw


def _reject(record: Record | EventInput, field: str, reason: str) -> RecordError:
    return RecordError(line=record.line, raw=record.raw, field=field, reason=reason)


def record_problem(record: Record) -> RecordError | None:
    """The first value of a parsed record that PostgreSQL cannot store, as a reject."""
    # Runs once per record on the hot path: one check over all the text at once (the clean
    # case), the fields one by one only when it finds something.
    joined = _JOIN.join(_record_texts(record))
    if record.event_time.__class__ is str:
        joined += record.event_time
    if record.unloaded_at.__class__ is str:
        joined += record.unloaded_at
    if record.extra:
        joined = _JOIN.join((joined, *(text for _, text in _walk(record.extra, "extra"))))
    if (joined.isascii() and _NUL not in joined) or _text_problem(joined) is None:
        return _bounds_problem(record) if record.weight_kg is not None or record.extra else None
    for name, text in _texts(record):
        problem = _text_problem(text)
        if problem:
            what = f"{name} {problem}" if name else f"the line {problem} (in no mapped field)"
            return _reject(record, name[:100], f"{what}, which PostgreSQL cannot store")
    return None  # pragma: no cover - the joined text had a problem, so one part has it


# --- bounds from the models ----------------------------------------------------------------


@cache
def _field(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _length_problem(name: str, value: str, column: models.Field) -> str | None:
    limit = column.max_length
    if limit is not None and len(value) > limit:
        return f"{name} is {len(value)} characters, the limit is {limit}"
    return None


def decimal_problem(name: str, value: Decimal, column: models.DecimalField) -> str | None:
    """Why a number does not fit a numeric(max_digits, decimal_places) column, or None."""
    if not value.is_finite():
        return f"{name} {value} is not a finite number"
    places = column.decimal_places or 0
    bound = Decimal(10) ** ((column.max_digits or 0) - places)
    try:
        rounded = value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        rounded = value  # too many digits to round: certainly beyond the bound
    if abs(rounded) >= bound:
        return f"{name} {value} is out of range (the limit is less than {bound:,})"
    return None


# EventInput attribute -> (the name an operator knows, the column it is stored in).
_EVENT_COLUMNS: tuple[tuple[str, str, type[models.Model], str], ...] = (
    ("tracking_number", "tracking_number", Shipment, "tracking_number"),
    ("unit_number", "unit_id", TransportUnit, "number"),
    ("unit_kind", "unit_kind", TransportUnit, "kind"),
    ("code", "event_code", TrackingEvent, "code"),
    ("location_name", "location_name", TrackingEvent, "location_name"),
    ("location_code", "location_code", TrackingEvent, "location_code"),
    ("country", "country", TrackingEvent, "country"),
    ("order_number", "order_number", Shipment, "order_number"),
    ("carrier", "carrier", Shipment, "carrier"),
    ("transport_mode", "transport_mode", Shipment, "transport_mode"),
)
_event_texts = operator.attrgetter(*(attribute for attribute, *_ in _EVENT_COLUMNS))


@cache
def _event_limits() -> tuple[int, ...]:
    return tuple(_field(model, column).max_length or 0 for _, _, model, column in _EVENT_COLUMNS)


def event_problem(event: EventInput) -> RecordError | None:
    """A normalized event with a value beyond its column, as a reject."""
    values = _event_texts(event)
    limits = _event_limits()
    if any(map(operator.gt, map(len, values), limits)):
        for (_, name, model, column), value in zip(_EVENT_COLUMNS, values, strict=True):
            problem = _length_problem(name, value, _field(model, column))
            if problem:
                return _reject(event, name, problem)
    if event.weight_kg is not None:
        problem = decimal_problem(
            "weight_kg", event.weight_kg, _decimal_field(Shipment, "weight_kg")
        )
        if problem:
            return _reject(event, "weight_kg", problem)
    return None


def _decimal_field(model: type[models.Model], name: str) -> models.DecimalField:
    field = _field(model, name)
    assert isinstance(field, models.DecimalField)
    return field


def _bounds_problem(record: Record) -> RecordError | None:
    """Bounds of the values the other record kinds store as given (events: `event_problem`)."""
    if record.weight_kg is not None:
        problem = decimal_problem(
            "weight_kg", record.weight_kg, _decimal_field(Shipment, "weight_kg")
        )
        if problem:
            return _reject(record, "weight_kg", problem)
    if record.kind != "customs_document":
        return None
    extra = record.extra
    for column in _document_columns():
        value = extra.get(column.name)
        if isinstance(value, str):
            problem = _length_problem(column.name, value.strip(), column)
            if problem:
                return _reject(record, column.name, problem)
    # goods_value is kept on the document as given (the shared CEB303 sample declares
    # 12345678912345.12345); only its copy into Shipment.declared_value can overflow, and
    # the batch's bisection rejects that document with the database's message.
    return None


@cache
def _document_columns() -> tuple[models.CharField, ...]:
    """CustomsDocument's text columns filled from a document's extra of the same name."""
    return tuple(
        f
        for f in CustomsDocument._meta.get_fields()
        if isinstance(f, models.CharField) and f.name not in ("number",)
    )


def storable_text(value: str) -> str:
    """Any text as PostgreSQL can store it: NUL shown as `\\x00`, a lone surrogate as `\\ud800`."""
    if value.isascii():
        return value.replace(_NUL, "\\x00") if _NUL in value else value
    value = value.replace(_NUL, "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
