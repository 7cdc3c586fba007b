"""Reading physical lines of a byte stream in a declared encoding, strictly and in constant memory.

Undecodable bytes are never replaced: the line is reported as a RecordError with the byte offset,
and the reader goes on with the next line. GB18030 never uses 0x0A inside a multi-byte sequence,
so splitting on b"\\n" before decoding is safe for every encoding we accept.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO

from warehouses.parsers.base import RecordError

UTF8_BOM = codecs.BOM_UTF8
RAW_LIMIT = 2000


def codec_for(encoding: str) -> str:
    name = encoding.strip().lower().replace("_", "-")
    # GBK is a subset of GB18030; decoding as GB18030 accepts every GBK file and more.
    if name in {"gbk", "gb2312", "gb18030", "cp936"}:
        return "gb18030"
    if name in {"utf-8", "utf8", "utf-8-sig"}:
        return "utf-8"
    raise ValueError(f"unsupported encoding {encoding!r}")


def clip(text: str, limit: int = RAW_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def decoded_lines(
    stream: IO[bytes], encoding: str, max_line_bytes: int
) -> Iterator[tuple[int, str | RecordError]]:
    """Yield (line number, text without the newline | RecordError) for each physical line."""
    codec = codec_for(encoding)
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            # Skip the rest of the oversized line without holding it in memory.
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(1 << 20)
                size += len(chunk)
            yield (
                number,
                RecordError(
                    line=number,
                    raw=f"<{size} bytes>",
                    field="",
                    reason=f"line is {size} bytes, longer than the limit of {max_line_bytes} bytes",
                ),
            )
            continue
        data = chunk.rstrip(b"\r\n")
        if number == 1 and data.startswith(UTF8_BOM):
            # A byte-order mark says UTF-8 explicitly, whatever the feed's default.
            data = data[len(UTF8_BOM) :]
            codec = "utf-8"
        try:
            yield number, data.decode(codec)
        except UnicodeDecodeError as exc:
            hint = " (is the file GB18030/GBK?)" if codec == "utf-8" else " (is the file UTF-8?)"
            yield (
                number,
                RecordError(
                    line=number,
                    raw=clip(data.decode(codec, errors="backslashreplace")),
                    field="",
                    reason=f"bytes at offset {exc.start} are not valid {codec}{hint}",
                ),
            )
