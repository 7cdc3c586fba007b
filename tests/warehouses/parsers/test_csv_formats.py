"""CSV parsers on their own: which cells become which record fields, and which line they name."""

from __future__ import annotations

import io

from warehouses.parsers.base import ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.csv_formats import parse_hub_csv, parse_partner_csv


def parse(text: str, options: ParseOptions | None = None, partner: bool = False) -> list[ParseItem]:
    parser = parse_partner_csv if partner else parse_hub_csv
    return list(parser(io.BytesIO(text.encode()), options or ParseOptions()))


def test_a_partner_file_with_few_columns_leaves_the_other_fields_empty() -> None:
    options = ParseOptions(
        column_mapping={
            "tracking_number": "Waybill",
            "event_code": "Status",
            "event_time": "Time",
            "weight_kg": "Gross",
        }
    )
    items = parse(
        "Waybill;Status;Time;Gross\n BN1 ;DEP;2026-05-01 10:00;1,5 kg\nBN2;ARR;2026-05-02 10:00;\n",
        ParseOptions(column_mapping={**options.column_mapping, "_delimiter": ";"}),
        partner=True,
    )
    first, second = items
    assert isinstance(first, Record) and isinstance(second, Record)
    assert (first.line, first.tracking_number, first.partner_code, first.event_code) == (
        2,
        "BN1",
        "DEP",
        "",
    )
    assert (first.location_code, first.unit_id, first.time_zone) == ("", "", "")
    assert first.extra == {"weight": "1,5 kg"}
    assert second.extra == {}
    assert first.raw == " BN1 ;DEP;2026-05-01 10:00;1,5 kg"


def test_rows_keep_their_physical_line_numbers_around_quoted_newlines_and_blank_rows() -> None:
    items = parse(
        "tracking_number,event_code,event_time,description\n"
        'BN1,departed,2026-05-01 10:00,"two\nlines"\n'
        " , , , \n"
        "BN2,arrived,2026-05-02 10:00\n"
        "BN3,arrived,2026-05-03 10:00,ok\n"
    )
    first, short, last = items
    assert isinstance(first, Record) and first.line == 2
    assert first.description == "two\nlines" and first.raw.endswith('"two\nlines"')
    assert short == RecordError(
        line=5,
        raw="BN2,arrived,2026-05-02 10:00",
        reason="expected 4 columns as in the header, found 3 (truncated line?)",
    )
    assert isinstance(last, Record) and (last.line, last.description) == (6, "ok")
