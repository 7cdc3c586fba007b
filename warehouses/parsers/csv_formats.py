"""CSV parsers: the hub-csv template, partner CSV with a column mapping, unit manifests.

The csv module reads from an iterator of decoded lines, so a quoted field spanning lines still
works; lines that do not decode never reach it and are reported on their own.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from typing import IO, TypeVar

from warehouses.parsers.base import (
    FormatError,
    ParseItem,
    ParseOptions,
    Record,
    RecordError,
)
from warehouses.parsers.encodings import clip, decoded_lines

HUB_COLUMNS = (
    "tracking_number",
    "event_code",
    "event_time",
    "time_zone",
    "location_name",
    "location_code",
    "country",
    "description",
    "order_number",
    "carrier",
    "transport_mode",
    "unit_id",
)
HUB_REQUIRED = ("event_code", "event_time")
MANIFEST_REQUIRED = ("unit_id", "tracking_number", "loaded_at")

# Fields a record understands; anything else in a mapping is an operator typo.
RECORD_FIELDS = frozenset(HUB_COLUMNS) | {
    "weight_kg",
    "unit_kind",
    "loaded_at",
    "unloaded_at",
}

_T = TypeVar("_T")

# The csv module refuses fields over this; our own per-line limit applies first.
csv.field_size_limit(16 * 1024 * 1024)


class _LineFeeder:
    """Feeds decoded lines to csv.reader, parking decode errors to be reported in order."""

    def __init__(self, stream: IO[bytes], options: ParseOptions) -> None:
        self._lines = decoded_lines(stream, options.encoding, options.max_line_bytes)
        self.errors: list[RecordError] = []
        self.consumed: list[str] = []
        self.last_line = 0

    def __iter__(self) -> _LineFeeder:
        return self

    def __next__(self) -> str:
        for number, item in self._lines:
            self.last_line = number
            if isinstance(item, RecordError):
                self.errors.append(item)
                continue
            self.consumed.append(item)
            return item + "\n"
        raise StopIteration


def _rows(
    stream: IO[bytes], options: ParseOptions, delimiter: str
) -> Iterator[tuple[int, list[str], str] | RecordError]:
    """Yield (first line number, cells, raw text) per CSV row, or RecordError."""
    feeder = _LineFeeder(stream, options)
    reader = csv.reader(feeder, delimiter=delimiter, strict=True)
    while True:
        start = feeder.last_line + 1
        consumed: list[str] = []
        feeder.consumed = consumed
        try:
            row = next(reader)
        except StopIteration:
            yield from feeder.errors
            return
        except csv.Error as exc:
            yield from feeder.errors
            feeder.errors = []
            yield RecordError(
                line=start,
                raw=clip("\n".join(feeder.consumed)),
                reason=f"malformed CSV: {exc}",
            )
            continue
        if feeder.errors:
            errors, feeder.errors = feeder.errors, []
            for error in errors:
                yield error
                start = max(start, error.line + 1)
        # Blank when every cell is whitespace, i.e. when all of them joined are.
        if not row or not "".join(row).strip():
            continue
        yield start, row, consumed[0] if len(consumed) == 1 else "\n".join(consumed)


def _header_index(header: list[str]) -> dict[str, int]:
    return {name.strip().lstrip("\ufeff").lower(): i for i, name in enumerate(header)}


Build = Callable[[int, str, list[str]], _T]


def _values(columns: Mapping[str, int]) -> Build[tuple[int, str, dict[str, str]]]:
    """Rows as (line, raw, {hub field: stripped value})."""

    def build(line: int, raw: str, cells: list[str]) -> tuple[int, str, dict[str, str]]:
        return line, raw, {name: cells[i].strip() for name, i in columns.items()}

    return build


def _table(
    stream: IO[bytes],
    options: ParseOptions,
    *,
    mapping: Mapping[str, str],
    required: tuple[str, ...],
    make: Callable[[Mapping[str, int]], Build[_T]],
    delimiter: str = ",",
) -> Iterator[_T | RecordError]:
    """Rows built by `make(columns)`; header problems are fatal, row problems are not."""
    unknown = sorted(set(mapping) - RECORD_FIELDS - {"_delimiter"})
    if unknown:
        raise FormatError(f"the feed's column mapping names unknown fields: {', '.join(unknown)}")
    rows = _rows(stream, options, delimiter)
    header: list[str] | None = None
    for item in rows:
        if isinstance(item, RecordError):
            yield item
            continue
        header = item[1]
        header_line = item[0]
        break
    if header is None:
        raise FormatError("the file is empty: no header row", line=1)
    if len(header) > options.max_fields:
        raise FormatError(
            f"header has {len(header)} columns, more than the limit of {options.max_fields}"
            " (INGEST_MAX_FIELDS)",
            line=header_line,
            raw=clip(",".join(header)),
        )
    index = _header_index(header)
    columns: dict[str, int] = {}
    for hub_field in RECORD_FIELDS:
        column = mapping.get(hub_field, hub_field).strip().lower()
        if column in index:
            columns[hub_field] = index[column]
    missing = [f for f in required if f not in columns]
    if missing:
        wanted = ", ".join(mapping.get(f, f) for f in missing)
        raise FormatError(
            f"header lacks required column(s): {wanted}",
            line=header_line,
            raw=clip(",".join(header)),
        )
    build = make(columns)
    width = len(header)
    data_rows = 0
    for item in rows:
        if isinstance(item, RecordError):
            yield item
            continue
        line, cells, raw = item
        data_rows += 1
        if len(cells) != width:
            yield RecordError(
                line=line,
                raw=clip(raw),
                reason=f"expected {width} columns as in the header, found {len(cells)}"
                + (" (truncated line?)" if len(cells) < width else ""),
            )
            continue
        yield build(line, raw, cells)
    if data_rows == 0:
        raise FormatError("the file has a header but no data rows", line=header_line + 1)


# Record fields an event row fills, in the order `_events` unpacks them.
_EVENT_FIELDS = (
    "tracking_number",
    "unit_id",
    "unit_kind",
    "event_code",
    "event_time",
    "time_zone",
    "location_name",
    "location_code",
    "country",
    "description",
    "order_number",
    "carrier",
    "transport_mode",
    "weight_kg",
)


def _events(columns: Mapping[str, int]) -> Build[Record]:
    """Rows as event Records, with the column of each field looked up once per file.

    A field without a column reads the empty cell appended to every row, so one `itemgetter`
    call picks all fields of a row: building a dict per row first cost as much as the CSV
    reader itself.
    """
    pick = itemgetter(*(columns.get(name, -1) for name in _EVENT_FIELDS))

    def build(line: int, raw: str, cells: list[str]) -> Record:
        cells.append("")
        (
            tracking_number,
            unit_id,
            unit_kind,
            event_code,
            event_time,
            time_zone,
            location_name,
            location_code,
            country,
            description,
            order_number,
            carrier,
            transport_mode,
            weight,
        ) = [value.strip() for value in pick(cells)]
        return Record(
            line=line,
            raw=clip(raw),
            tracking_number=tracking_number,
            unit_id=unit_id,
            unit_kind=unit_kind,
            partner_code=event_code,
            event_time=event_time,
            time_zone=time_zone,
            location_name=location_name,
            location_code=location_code,
            country=country,
            description=description,
            order_number=order_number,
            carrier=carrier,
            transport_mode=transport_mode,
            extra={"weight": weight} if weight else {},
        )

    return build


def parse_hub_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """The hub's standard template (the columns of HUB_COLUMNS); other columns are ignored."""
    yield from _table(stream, options, mapping={}, required=HUB_REQUIRED, make=_events)


def parse_partner_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """A partner's own export: the feed maps our field names to their column names."""
    mapping = dict(options.column_mapping)
    delimiter = mapping.get("_delimiter", ",") or ","
    yield from _table(
        stream,
        options,
        mapping=mapping,
        required=HUB_REQUIRED,
        make=_events,
        delimiter=delimiter,
    )


def parse_manifest_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Unit manifests: unit_id, tracking_number, loaded_at[, unloaded_at] (membership over time)."""
    mapping = dict(options.column_mapping)
    for item in _table(stream, options, mapping=mapping, required=MANIFEST_REQUIRED, make=_values):
        if isinstance(item, RecordError):
            yield item
            continue
        line, raw, values = item
        yield Record(
            line=line,
            raw=clip(raw),
            kind="membership",
            unit_id=values.get("unit_id", ""),
            unit_kind=values.get("unit_kind", ""),
            tracking_number=values.get("tracking_number", ""),
            event_time=values.get("loaded_at", ""),
            unloaded_at=values.get("unloaded_at", "") or None,
            time_zone=values.get("time_zone", ""),
        )
