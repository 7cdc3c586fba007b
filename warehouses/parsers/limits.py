"""Parser limits on hostile input: how deep a JSON value may nest, how many fields a record has.

The limits themselves are settings (INGEST_MAX_JSON_DEPTH, INGEST_MAX_FIELDS) passed to the
parsers in `ParseOptions`; a record beyond one is rejected with its line, never a crash.
Python's json decoder recurses once per level and raises RecursionError near a thousand
levels, so depth is checked on the text before decoding it.
"""

from __future__ import annotations

import re

# A JSON string (escapes included) or one bracket: strings are skipped whole, so a bracket
# inside a string never counts.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_depth_over(text: str, limit: int) -> int | None:
    """The nesting depth of the JSON `text` once it exceeds `limit`, else None.

    A text with no more than `limit` opening brackets cannot nest deeper, which is all the
    common case costs (two counts in C).
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return depth
        elif token in "]}":
            depth -= 1
    return None


def json_value_end(text: str, start: int) -> int | None:
    """Where the JSON array or object starting at `start` ends (index after its closing
    bracket), found without decoding it; None when the text ends first."""
    depth = 0
    for match in _TOKENS.finditer(text, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth <= 0:
                return match.end()
    return None
