"""Which character encoding a payload is in, the one table of encoding names, and reading a
payload as bytes every parser accepts (UTF-16 transcoded; physical lines decoded strictly).

A feed's encoding is `auto` (the default) or explicit (`utf-8`, `gb18030`). For a run, `resolve`
decides once, before parsing, from the stored payload, in constant memory:

1. A byte-order mark says it outright, whatever the feed's setting: UTF-8, UTF-16 LE or BE.
2. Explicit: the feed's (or the CLI's) encoding.
3. auto, a format that declares its own encoding in the payload (a CEB XML declaration, an
   EDIFACT UNB syntax identifier naming a character set): that declaration.
4. auto, otherwise: UTF-8 when the whole payload is valid UTF-8, else GB18030 when the whole
   payload is valid GB18030 (GBK files are), else the one of the two with fewer undecodable
   byte sequences (ties: UTF-8). What does not decode is then rejected by the parser, naming
   the byte offset, as on an explicit feed: bytes are never replaced.

The whole-file scan of step 4 is one strict decode at C speed, far cheaper than parsing (see
docs/intake.md for the figures); it stops at the first failure, so a GB18030 file costs a few
bytes of UTF-8 decoding and one GB18030 pass. Deciding per file rather than per line keeps one
file in one encoding: a UTF-8 file with one corrupt line is not read as GB18030 elsewhere.

UTF-16 payloads are transcoded to UTF-8 (with a UTF-8 BOM in place of theirs) as they are read
(`reader`), because the parsers split lines and segments on single bytes.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Final

from warehouses.parsers.base import RAW_LIMIT, FormatError, RecordError

AUTO: Final = "auto"
UTF8: Final = "utf-8"
GB18030: Final = "gb18030"
UTF16_LE: Final = "utf-16-le"
UTF16_BE: Final = "utf-16-be"

_CHUNK: Final = 1 << 20
_HEAD: Final = 4096
_BOMS: Final = (
    (codecs.BOM_UTF8, UTF8),
    (codecs.BOM_UTF16_LE, UTF16_LE),
    (codecs.BOM_UTF16_BE, UTF16_BE),
)
# The one table of encoding names: every spelling a feed setting, the CLI, a parser option or a
# payload's own declaration (a CEB XML declaration) may use for an encoding the hub reads -> the
# hub's name for it. GBK, GB2312 and CP936 are subsets of GB18030, so they are read as GB18030
# (partners mislabel all of them); a UTF-8 byte-order mark is tolerated, so utf-8-sig is UTF-8.
ENCODING_NAMES: Final[dict[str, str]] = {
    "utf-8": UTF8,
    "utf8": UTF8,
    "utf-8-sig": UTF8,
    "gb18030": GB18030,
    "gbk": GB18030,
    "gb2312": GB18030,
    "cp936": GB18030,
}

Opener = Callable[[], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True, slots=True)
class Decoding:
    """The encoding a run reads its payload in, and whether it was detected (not configured)."""

    encoding: str
    detected: bool

    @property
    def label(self) -> str:
        return f"{self.encoding} (detected)" if self.detected else self.encoding

    @property
    def parser_encoding(self) -> str:
        """What the parser is told: `reader` hands it UTF-16 payloads as UTF-8."""
        return UTF8 if self.encoding in (UTF16_LE, UTF16_BE) else self.encoding


def _spelling(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def canonical(name: str) -> str:
    """The hub's name for an encoding a feed or the CLI may ask for; ValueError otherwise."""
    spelling = _spelling(name)
    if spelling == AUTO:
        return AUTO
    try:
        return ENCODING_NAMES[spelling]
    except KeyError:
        raise ValueError(f"unsupported encoding {name!r} (auto, utf-8 or gb18030)") from None


def encoding_name(name: str) -> str:
    """The hub's name for a spelling in ENCODING_NAMES, else the name as Python spells codecs
    (lower case, hyphens): a payload may declare an encoding the table does not list."""
    spelling = _spelling(name)
    return ENCODING_NAMES.get(spelling, spelling)


def codec_for(name: str) -> str:
    """The codec a parser decodes with for the encoding `name` (see `encoding_name`);
    ValueError when Python has no such codec."""
    codec = encoding_name(name)
    try:
        codecs.lookup(codec)
    except LookupError:
        raise ValueError(f"unsupported encoding {name!r}") from None
    return codec


def bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF32_LE):
        return None  # FF FE 00 00 is UTF-32, not UTF-16 (we read neither)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


def resolve(
    open_payload: Opener,
    *,
    requested: str,
    declared: Callable[[bytes], str | None] | None = None,
) -> Decoding:
    """The payload's encoding: see the module docstring. `declared` reads a format's own
    declaration from the payload's first bytes (None when it declares nothing)."""
    wanted = canonical(requested)
    with open_payload() as stream:
        head = stream.read(_HEAD)
        from_bom = bom_encoding(head)
        if from_bom is not None:
            return Decoding(from_bom, detected=True)
        if wanted != AUTO:
            return Decoding(wanted, detected=False)
        in_band = declared(head) if declared is not None else None
        if in_band:
            return Decoding(in_band, detected=True)
        stream.seek(0)
        if _decodes(stream, UTF8):
            return Decoding(UTF8, detected=True)
        stream.seek(0)
        if _decodes(stream, GB18030):
            return Decoding(GB18030, detected=True)
        stream.seek(0)
        bad_utf8, bad_gb = _undecodable(stream)
    return Decoding(GB18030 if bad_gb < bad_utf8 else UTF8, detected=True)


def _decodes(stream: IO[bytes], codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)("strict")
    try:
        while chunk := stream.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(stream: IO[bytes]) -> tuple[int, int]:
    """(byte sequences that are not UTF-8, that are not GB18030) in one pass.

    Replacement characters are counted only to compare the two; the parser still reads the
    payload strictly and rejects what does not decode.
    """
    utf8 = codecs.getincrementaldecoder(UTF8)("replace")
    gb = codecs.getincrementaldecoder(GB18030)("replace")
    bad_utf8 = bad_gb = 0
    while True:
        chunk = stream.read(_CHUNK)
        bad_utf8 += utf8.decode(chunk, final=not chunk).count("\ufffd")
        bad_gb += gb.decode(chunk, final=not chunk).count("\ufffd")
        if not chunk:
            return bad_utf8, bad_gb


class _Utf16ToUtf8(io.RawIOBase):
    """A UTF-16 byte stream read as UTF-8, in constant memory; a UTF-8 BOM replaces the UTF-16
    one so parsers that honour a BOM still see one. Bytes that are not UTF-16 (an unpaired
    surrogate, an odd last byte) raise a FormatError naming their offset in the payload."""

    def __init__(self, raw: IO[bytes], codec: str) -> None:
        self._raw = raw
        self._codec = codec
        self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._pending = b""
        self._offset = 0  # bytes of the original read so far
        self._eof = False
        self._bom = codecs.BOM_UTF16_LE if codec == UTF16_LE else codecs.BOM_UTF16_BE
        self._started = False
        self._error: FormatError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            chunk = self._raw.read(_CHUNK)
            if not self._started:
                self._started = True
                if chunk.startswith(self._bom):
                    chunk = chunk[len(self._bom) :]
                    self._offset = len(self._bom)
                    self._pending = codecs.BOM_UTF8
            try:
                text = self._decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # The text before the bad bytes is handed over first (the parser keeps its
                # records); the error is raised on the read after it. The decoder keeps an
                # incomplete sequence for the next chunk: offsets count from what it held.
                held = len(exc.object) - len(chunk)
                self._error = FormatError(
                    f"bytes at offset {self._offset - held + exc.start} are not valid {self._codec}"
                )
                text = bytes(exc.object[: exc.start]).decode(self._codec)
                chunk = b""
            self._offset += len(chunk)
            self._eof = not chunk
            self._pending += text.encode(UTF8)
        if not self._pending and self._error is not None:
            raise self._error
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def reader(stream: IO[bytes], decoding: Decoding) -> IO[bytes]:
    """The payload as the parser reads it: UTF-16 transcoded to UTF-8, anything else as is."""
    if decoding.encoding in (UTF16_LE, UTF16_BE):
        return io.BufferedReader(_Utf16ToUtf8(stream, decoding.encoding), _CHUNK)
    return stream


# --------------------------------------------------------------------------------------------
# Physical lines in a declared encoding, strictly and in constant memory.
#
# Undecodable bytes are never replaced: the line is reported as a RecordError with the byte
# offset, and the reader goes on with the next line. GB18030 never uses 0x0A inside a multi-byte
# sequence, so splitting on b"\n" before decoding is safe for every encoding we accept.

UTF8_BOM = codecs.BOM_UTF8


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
            codec = UTF8
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
