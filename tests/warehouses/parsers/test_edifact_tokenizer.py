"""UN/EDIFACT tokenizer: segment numbers, release characters, delimiters, limits, streaming."""

from __future__ import annotations

import io

import pytest

from tests.warehouses.parsers.edifact_interchanges import (
    run,
)
from warehouses.parsers.base import FormatError, ParseOptions, Record
from warehouses.parsers.edifact import Delimiters, parse, read_segments


def test_segments_are_numbered_and_released_characters_unescaped() -> None:
    payload = b"\xef\xbb\xbfUNB+UNOA:2+S?'Q+R+20240305:1200+X'\n\nFTX+AAA+++a??b?:c'\r\nUNZ+0+X'"

    got = [
        (s.number, s.tag, s.elements) for s in read_segments(io.BytesIO(payload), ParseOptions())
    ]

    assert got == [
        (1, "UNB", [["UNOA", "2"], ["S'Q"], ["R"], ["20240305", "1200"], ["X"]]),
        (2, "FTX", [["AAA"], [""], [""], ["a?b:c"]]),
        (3, "UNZ", [["0"], ["X"]]),
    ]


def test_default_delimiters_are_the_iso_9735_ones() -> None:
    assert Delimiters() == Delimiters(":", "+", ".", "?", "'")


def test_a_segment_without_terminator_beyond_the_line_limit_is_a_format_error() -> None:
    payload = b"UNB+UNOA:2+S+R+20240305:1200+X'FTX+" + b"x" * 5000

    with pytest.raises(FormatError) as caught:
        run(payload, ParseOptions(max_line_bytes=1000))

    assert caught.value.line == 2
    assert 'no "\'" terminator within 1000 characters' in caught.value.reason


def test_records_stream_before_the_whole_payload_is_read() -> None:
    message = "UNH+{n}+IFTSTA:D:01A:UN'CNI+1+T{n}'STS+1+21'DTM+334:202403061000:203'UNT+5+{n}'"
    count = 5000
    body = "".join(message.format(n=n) for n in range(count))
    payload = f"UNB+UNOA:2+S+R+20240305:1200+X'{body}UNZ+{count}+X'".encode()
    stream = io.BytesIO(payload)

    items = parse(stream, ParseOptions())
    first = next(items)

    assert isinstance(first, Record)
    assert first.tracking_number == "T0"
    assert stream.tell() < len(payload) // 4
    assert sum(1 for _ in items) == count - 1


def test_bytes_that_are_not_utf8_in_a_unow_interchange_are_a_format_error() -> None:
    payload = b"UNB+UNOW:4+S+R+20240305:1200+X'UNH+1+IFTSTA:D:01A:UN'LOC+5+:::Hei\xffhe'"

    with pytest.raises(FormatError) as caught:
        run(payload)

    assert caught.value.reason.startswith("bytes are not valid utf-8")
