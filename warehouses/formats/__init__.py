"""Format parsers: pure functions from bytes to records (see base.py for the contract)."""

from __future__ import annotations

from importlib import import_module

from warehouses.formats.base import Parser

# format name -> "module:function"; imported lazily so one format's dependencies never slow the rest
PARSERS: dict[str, str] = {
    "hub-csv": "warehouses.formats.csv_formats:parse_hub_csv",
    "partner-csv": "warehouses.formats.csv_formats:parse_partner_csv",
    "manifest-csv": "warehouses.formats.csv_formats:parse_manifest_csv",
    "json": "warehouses.formats.json_format:parse_json",
    "x12": "warehouses.formats.x12:parse",
    "edifact": "warehouses.formats.edifact:parse",
    "epcis": "warehouses.formats.epcis:parse",
    "ceb": "warehouses.formats.ceb:parse",
}


def get_parser(format_name: str) -> Parser:
    try:
        target = PARSERS[format_name]
    except KeyError:
        raise ValueError(f"unknown format {format_name!r}") from None
    module_name, function = target.split(":")
    parser: Parser = getattr(import_module(module_name), function)
    return parser
