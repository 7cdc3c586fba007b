"""The registry of format parsers: format name -> parser, and the formats that declare their
own encoding inside the payload. Parsers are imported lazily, by name."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from warehouses.parsers.base import Parser

# format name -> "module:function"; imported lazily so one format's dependencies never slow the rest
PARSERS: dict[str, str] = {
    "hub-csv": "warehouses.parsers.csv_formats:parse_hub_csv",
    "partner-csv": "warehouses.parsers.csv_formats:parse_partner_csv",
    "manifest-csv": "warehouses.parsers.csv_formats:parse_manifest_csv",
    "json": "warehouses.parsers.json_format:parse_json",
    "x12": "warehouses.parsers.x12:parse",
    "edifact": "warehouses.parsers.edifact:parse",
    "epcis": "warehouses.parsers.epcis:parse",
    "ceb": "warehouses.parsers.ceb:parse",
}


# Formats that name their character set inside the payload: format -> "module:function" reading
# it from the payload's first bytes (warehouses.parsers.encodings uses it for `auto` feeds).
DECLARED_ENCODINGS: dict[str, str] = {
    "ceb": "warehouses.parsers.ceb:declared_encoding",
    "edifact": "warehouses.parsers.edifact:declared_encoding",
}


def get_declared_encoding(format_name: str) -> Callable[[bytes], str | None] | None:
    target = DECLARED_ENCODINGS.get(format_name)
    if target is None:
        return None
    module_name, function = target.split(":")
    reader: Callable[[bytes], str | None] = getattr(import_module(module_name), function)
    return reader


def get_parser(format_name: str) -> Parser:
    try:
        target = PARSERS[format_name]
    except KeyError:
        raise ValueError(f"unknown format {format_name!r}") from None
    module_name, function = target.split(":")
    parser: Parser = getattr(import_module(module_name), function)
    return parser
