"""UN/EDIFACT IFTSTA (international multimodal status report) parser, directories D.96A-D.21A
and the EANCOM subsets.

Read in this order: `tokenizer` (service characters, character set, numbered segments),
`envelope` (UNB/UNG/UNH and their trailers; `parse` is here), `iftsta` (one Record per status
group, dates and places) and the code tables (`codes`).
"""

from warehouses.parsers.edifact.envelope import parse
from warehouses.parsers.edifact.iftsta import parse_dtm
from warehouses.parsers.edifact.tokenizer import (
    Delimiters,
    Segment,
    declared_encoding,
    read_segments,
)

__all__ = ["Delimiters", "Segment", "declared_encoding", "parse", "parse_dtm", "read_segments"]
