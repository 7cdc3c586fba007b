"""Spreadsheet exports, streamed in constant memory: the shops' shipment export and the
operations dashboard's tables share this one writer (docs/exports.md).

An export is a header and rows that arrive in batches (each batch one query, read by keyset:
`keyset_rows`). CSV is written batch by batch straight into the response: UTF-8 with a BOM,
so that Excel reads Chinese and Russian text as UTF-8 and not in the machine's code page, times
in UTC ISO 8601. XLSX is written by XlsxWriter in its constant-memory mode (each row is flushed
to a temporary file as it is written) into a temporary file, which is then streamed: an XLSX is
a zip whose directory comes last, so nothing can be sent before the last row is written.

A text cell that a spreadsheet would run as a formula (OWASP "CSV injection": it starts with
= + - @, a tab or a carriage return, or their full-width forms ＝ ＋ － ＠) is neutralised. In CSV
it gets a leading apostrophe, which Excel and LibreOffice read as "this is text" (the apostrophe
stays visible in other readers). In XLSX the cell is a string cell, never a formula, and carries
Excel's quote-prefix style: the text is kept exactly, shown as text, and stays text when edited.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.db.models import Expression, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

Cell = str | int | float | Decimal | datetime | date | None
Row = Sequence[Cell]

CSV = "csv"
XLSX = "xlsx"
FORMATS = (CSV, XLSX)
MEDIA_TYPES = {
    CSV: "text/csv",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BOM = "\ufeff"
# Rows read per query: a few megabytes of model instances at most, whatever the export's size.
BATCH_SIZE = 2000
# An XLSX worksheet holds 1,048,576 rows; the header takes one. Past that a new sheet follows.
XLSX_MAX_ROWS = 1_048_575
_CHUNK = 64 * 1024
# What a spreadsheet may take for the start of a formula (OWASP), and the full-width forms that
# an input method may turn into them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


@dataclass(frozen=True, slots=True)
class Export:
    """What to write: `name` makes the file name (`name-YYYY-MM-DD.csv`) and the sheet name."""

    name: str
    header: Sequence[str]
    batches: Iterable[Sequence[Row]]


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def neutralise(text: str) -> str:
    """The CSV form of a text cell: a leading apostrophe when a spreadsheet would run it."""
    return "'" + text if is_formula_like(text) else text


def utc_iso(value: datetime) -> str:
    """2026-12-03T15:04:05Z (microseconds when there are any): one zone, one format."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _csv_cell(value: Cell) -> str | int | float | Decimal:
    if type(value) is str:  # the usual cell first: this runs for every cell of every row
        return neutralise(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_chunks(export: Export) -> Iterator[bytes]:
    """The CSV, one chunk per batch (RFC 4180 quoting and CRLF line ends, as Excel expects)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([neutralise(h) for h in export.header])
    for batch in export.batches:
        writer.writerows([[_csv_cell(v) for v in row] for row in batch])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows: the header alone
        yield buffer.getvalue().encode()


class _Sheets:
    """Rows into XlsxWriter worksheets, typed: text as string cells (never formulas), numbers
    as numbers, times as dates in UTC with a date format."""

    def __init__(self, book: Any, export: Export) -> None:
        self.book = book
        self.export = export
        self.text = book.add_format()
        self.quoted = book.add_format({"quote_prefix": True})
        self.when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.day = book.add_format({"num_format": "yyyy-mm-dd"})
        self.sheets = 0
        self.sheet: Any = None
        self.row = XLSX_MAX_ROWS  # a sheet is opened at the first row

    def _open(self) -> None:
        self.sheets += 1
        name = self.export.name[:25] + (f" {self.sheets}" if self.sheets > 1 else "")
        self.sheet = self.book.add_worksheet(name)
        self.sheet.freeze_panes(1, 0)
        for col, title in enumerate(self.export.header):
            self.sheet.set_column(col, col, max(12, min(40, len(title) + 2)))
            self.sheet.write_string(0, col, title, self.text)
        self.row = 0

    def write(self, values: Row) -> None:
        if self.row >= XLSX_MAX_ROWS:
            self._open()
        self.row += 1
        sheet, row = self.sheet, self.row
        for col, value in enumerate(values):
            if value is None or value == "":
                continue  # an empty cell: nothing to write
            if isinstance(value, str):
                style = self.quoted if is_formula_like(value) else self.text
                sheet.write_string(row, col, value, style)
            elif isinstance(value, datetime):
                sheet.write_datetime(row, col, value.astimezone(UTC), self.when)
            elif isinstance(value, date):
                sheet.write_datetime(row, col, value, self.day)
            else:
                sheet.write_number(row, col, value)


def xlsx_chunks(export: Export) -> Iterator[bytes]:
    """The XLSX, written whole into a temporary file, then streamed from it."""
    with tempfile.TemporaryFile() as out:
        book = xlsxwriter.Workbook(
            out,
            {
                "constant_memory": True,
                # A string stays a string: no formulas, numbers or links guessed from text.
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                # Times arrive aware; they are written as their UTC wall-clock time.
                "remove_timezone": True,
            },
        )
        sheets = _Sheets(book, export)
        for batch in export.batches:
            for values in batch:
                sheets.write(values)
        if sheets.sheet is None:
            sheets._open()  # no rows: the header alone
        book.close()
        out.seek(0)
        while chunk := out.read(_CHUNK):
            yield chunk


def response(export: Export, fmt: str) -> StreamingHttpResponse:
    """The streamed download, `attachment; filename="<name>-<UTC date>.<fmt>"`."""
    chunks = csv_chunks(export) if fmt == CSV else xlsx_chunks(export)
    media_type = MEDIA_TYPES[fmt] + ("; charset=utf-8" if fmt == CSV else "")
    result = StreamingHttpResponse(chunks, content_type=media_type)
    filename = f"{export.name}-{timezone.now().astimezone(UTC):%Y-%m-%d}.{fmt}"
    result["Content-Disposition"] = f'attachment; filename="{filename}"'
    # A shop's data: not for shared caches, and not kept by the browser's.
    result["Cache-Control"] = "private, no-store"
    result["X-Content-Type-Options"] = "nosniff"
    return result


def keyset_rows(
    qs: QuerySet[Any], columns: Sequence[str | Expression], *, size: int | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of the queryset's rows by primary key, as tuples of `columns` (field paths or
    expressions; no model instances: they cost more than the rest of the export together),
    `size` per query (`pk > last`): memory and each query stay bounded however many rows there
    are, with or without server-side cursors (they are off behind PgBouncer). Each row comes
    once; one changed meanwhile comes as it is when its batch is read."""
    size = size or BATCH_SIZE
    last: Any = None
    while True:
        page = qs if last is None else qs.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list("pk", *columns)[:size])
        if rows:
            yield [r[1:] for r in rows]
        if len(rows) < size:
            return
        last = rows[-1][0]
