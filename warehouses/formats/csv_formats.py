"""CSV parsers: the hub-csv template, partner CSV with a column mapping, unit manifests.

The csv module reads from an iterator of decoded lines, so a quoted field spanning lines still
works; lines that do not decode never reach it and are reported on their own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from typing import IO

from warehouses.formats.base import (
    FormatError,
    ParseItem,
    ParseOptions,
    Record,
    RecordError,
)
from warehouses.formats.lines import clip, decoded_lines

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
        feeder.consumed = []
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
        errors, feeder.errors = feeder.errors, []
        for error in errors:
            yield error
            start = max(start, error.line + 1)
        if not row or all(not cell.strip() for cell in row):
            continue
        yield start, row, "\n".join(feeder.consumed)


def _header_index(header: list[str]) -> dict[str, int]:
    return {name.strip().lstrip("\ufeff").lower(): i for i, name in enumerate(header)}


def _table(
    stream: IO[bytes],
    options: ParseOptions,
    *,
    mapping: Mapping[str, str],
    required: tuple[str, ...],
    delimiter: str = ",",
) -> Iterator[tuple[int, str, dict[str, str]] | RecordError]:
    """Rows as {hub field: value}; header problems are fatal, row problems are not."""
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
        yield line, raw, {name: cells[i].strip() for name, i in columns.items()}
    if data_rows == 0:
        raise FormatError("the file has a header but no data rows", line=header_line + 1)


def _event(line: int, raw: str, values: dict[str, str]) -> Record:
    return Record(
        line=line,
        raw=clip(raw),
        tracking_number=values.get("tracking_number", ""),
        unit_id=values.get("unit_id", ""),
        unit_kind=values.get("unit_kind", ""),
        partner_code=values.get("event_code", ""),
        event_time=values.get("event_time", ""),
        time_zone=values.get("time_zone", ""),
        location_name=values.get("location_name", ""),
        location_code=values.get("location_code", ""),
        country=values.get("country", ""),
        description=values.get("description", ""),
        order_number=values.get("order_number", ""),
        carrier=values.get("carrier", ""),
        transport_mode=values.get("transport_mode", ""),
        extra={"weight": values["weight_kg"]} if values.get("weight_kg") else {},
    )


def parse_hub_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """The standard template (DESIGN.md); columns beyond the template are ignored."""
    for item in _table(stream, options, mapping={}, required=HUB_REQUIRED):
        yield item if isinstance(item, RecordError) else _event(*item)


def parse_partner_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """A partner's own export: the feed maps our field names to their column names."""
    mapping = dict(options.column_mapping)
    delimiter = mapping.get("_delimiter", ",") or ","
    for item in _table(
        stream, options, mapping=mapping, required=HUB_REQUIRED, delimiter=delimiter
    ):
        yield item if isinstance(item, RecordError) else _event(*item)


def parse_manifest_csv(stream: IO[bytes], options: ParseOptions) -> Iterator[ParseItem]:
    """Unit manifests: unit_id, tracking_number, loaded_at[, unloaded_at] (membership over time)."""
    mapping = dict(options.column_mapping)
    for item in _table(stream, options, mapping=mapping, required=MANIFEST_REQUIRED):
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
