"""Format parsers: pure functions from bytes to records (see base.py for the contract).

A newcomer reads `base` (the contract: Record, RecordError, RecordRejected, ParseOptions), then
`registry` (format name -> parser), `encodings` (which encoding a payload is in, the one table of
encoding names, strict line reading), `detect` (which format a file is in) and `limits`, then one
format: `csv_formats`, `json_format`, or the packages `x12`, `edifact`, `epcis`, `ceb`.
"""

from warehouses.parsers.registry import (
    DECLARED_ENCODINGS,
    PARSERS,
    get_declared_encoding,
    get_parser,
)

__all__ = ["DECLARED_ENCODINGS", "PARSERS", "get_declared_encoding", "get_parser"]
