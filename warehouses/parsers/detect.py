"""Which format a payload is in, from its first bytes.

Used by `manage.py ingest` when neither --format nor --feed is given (and usable by any entry
point that receives a file without a declared format). Looks only at the payload's first bytes,
in this order:

1. `ISA` -> X12; `UNA` or `UNB` -> EDIFACT (the interchange headers both standards require first);
2. XML whose root element is a CEB message (`CEB311Message`, `ceb:CEB621Message`, ...) -> CEB;
3. JSON naming an EPCIS document (`"type": "EPCISDocument"` / `"EPCISQueryDocument"`, or an
   `@context` pointing at EPCIS) -> EPCIS; other JSON (an array, JSON Lines) -> json;
4. a delimited header row: the hub-csv template's columns -> hub-csv, the manifest columns ->
   manifest-csv, any other header -> partner-csv (it needs a feed with a column mapping).

Anything else raises UnknownFormat saying what was seen: a file of an unknown shape is one
clear error, never a run of rejects.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from typing import Final

from warehouses.parsers.csv_formats import HUB_REQUIRED, MANIFEST_REQUIRED
from warehouses.parsers.encodings import UTF16_BE, UTF16_LE, bom_encoding

HEAD_BYTES: Final = 64 * 1024

# The local name of a CEB message's root element (the ceb parser checks its namespace).
_CEB_ROOT: Final = re.compile(r"CEB\d{3}(?:Message)?")
# The first start tag after the XML declaration, comments, processing instructions, DOCTYPE.
_XML_ROOT: Final = re.compile(
    r"\A(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)",
    re.DOTALL,
)
_EPCIS_TYPE: Final = re.compile(r'"type"\s*:\s*"EPCIS(?:Query)?Document"')
_EPCIS_CONTEXT: Final = re.compile(r'"@context"\s*:[^\]}]*?epcis', re.IGNORECASE | re.DOTALL)
_DELIMITERS: Final = ",;\t|"


class UnknownFormat(ValueError):
    """The payload's first bytes match no format the hub reads."""


@dataclass(frozen=True, slots=True)
class Detected:
    format: str  # a Feed.Format value
    evidence: str  # what was seen, for the operator ("ISA interchange header")


def detect_format(head: bytes) -> Detected:
    """The format of a payload from its first bytes (HEAD_BYTES are plenty)."""
    text = _text(head).lstrip("\ufeff \t\r\n")
    if not text:
        raise UnknownFormat("the file is empty")
    if text.startswith("ISA"):
        return Detected("x12", "X12 ISA interchange header")
    if text.startswith(("UNA", "UNB")):
        return Detected("edifact", f"EDIFACT {text[:3]} interchange header")
    if text.startswith("<"):
        return _xml(text)
    if text.startswith(("{", "[")):
        if _EPCIS_TYPE.search(text) or _EPCIS_CONTEXT.search(text):
            return Detected("epcis", "JSON naming an EPCIS document")
        shape = "a JSON array" if text.startswith("[") else "JSON objects"
        return Detected("json", shape)
    return _csv(text)


def _text(head: bytes) -> str:
    """The head as text for looking at its shape. Only ASCII structure matters here, so bytes
    that do not decode (a GB18030 payload, a character cut at the end) are left out."""
    encoding = bom_encoding(head)
    if encoding in (UTF16_LE, UTF16_BE):
        return head[2:].decode(encoding, errors="ignore")
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    return head.decode("utf-8", errors="ignore")


def _xml(text: str) -> Detected:
    match = _XML_ROOT.match(text)
    if match is None:
        raise UnknownFormat(f"XML-like text without a root element: {_shown(text)}")
    local = match.group(1).rpartition(":")[2]
    if _CEB_ROOT.fullmatch(local):
        return Detected("ceb", f"CEB <{local}> root element")
    raise UnknownFormat(f"XML with root element <{match.group(1)}>, which is not a CEB message")


def _csv(text: str) -> Detected:
    first = text.splitlines()[0] if text else ""
    delimiter = max(_DELIMITERS, key=first.count)
    if not first.count(delimiter):
        raise UnknownFormat(f"not X12, EDIFACT, CEB XML, EPCIS, JSON or CSV: {_shown(text)}")
    header = next(csv.reader([first], delimiter=delimiter))
    columns = {cell.strip().lower() for cell in header}
    if {"tracking_number", *HUB_REQUIRED} <= columns:
        return Detected("hub-csv", "a hub-csv header row")
    if set(MANIFEST_REQUIRED) <= columns:
        return Detected("manifest-csv", "a unit manifest header row")
    return Detected("partner-csv", f"a CSV header the hub does not know ({_shown(first)})")


def _shown(text: str) -> str:
    return repr(text[:60] + ("…" if len(text) > 60 else ""))
