"""ANSI X12 parser: 214 shipment status, 945 warehouse shipping advice, 856 ship notice.

Read in this order: `segments` (the ISA header and the segments after it), `envelope` (groups,
sets, trailers and their counts; `parse` is here), `values` (dates, times, parties), then one
module per transaction set (`status_214`, `advice_945`, `notice_856`) and the code tables
(`codes`).
"""

from warehouses.parsers.x12.envelope import interchange_ids, parse

__all__ = ["interchange_ids", "parse"]
