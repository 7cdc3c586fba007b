"""The retention files: gzip-compressed JSON Lines, one file per month (docs/retention.md).

A file is a header line, one line per shipment, and a trailer line with the count. A file is
complete only when it decompresses to its end and its trailer's count matches its lines, so a
copy cut short by a crash (or a truncated upload) is told apart from a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone

FORMAT = "hub-retention"
VERSION = 1
STORAGE_ALIAS = "retention"
# The copy being written before it replaces the file of the period (see `archive_replace`).
NEXT_SUFFIX = ".next"


class ArchiveError(Exception):
    """A retention file that cannot be read whole: the reason names the file and the line."""


def retention_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def period_name(period: date) -> str:
    return f"shipments-{period:%Y-%m}.jsonl.gz"


def _key(tracking_number: str) -> int:
    return int.from_bytes(hashlib.blake2b(tracking_number.encode(), digest_size=8).digest())


@dataclass
class Summary:
    """What a file holds: its shipments' count and an order-free digest of their numbers."""

    shipments: int = 0
    digest: int = 0

    def add(self, tracking_number: str) -> None:
        self.shipments += 1
        self.digest = (self.digest + _key(tracking_number)) % 2**64


class ArchiveWriter:
    """Writes one period's file to a local temporary file, then hands it to the storage."""

    def __init__(self, period: date) -> None:
        self.period = period
        self.summary = Summary()
        # Handed to the storage by `finish`; the caller closes it after the upload.
        self._raw: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        # mtime 0: the same content gives the same bytes, whenever it is written.
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        self._line(
            {
                "record": "header",
                "format": FORMAT,
                "version": VERSION,
                "period": f"{period:%Y-%m}",
                "written_at": timezone.now().isoformat(),
            }
        )

    def _line(self, record: dict[str, Any]) -> None:
        self._gzip.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def add(self, tracking_number: str, line: str) -> None:
        """One shipment record, already JSON (the export query's text, or a line of a file)."""
        self._gzip.write(line.encode() + b"\n")
        self.summary.add(tracking_number)

    def finish(self) -> IO[bytes]:
        self._line({"record": "end", "shipments": self.summary.shipments})
        self._gzip.close()
        self._raw.seek(0)
        return self._raw


def archive_lines(storage: Storage, name: str) -> Iterator[tuple[str, str]]:
    """(tracking number, line) of every shipment in a file; ArchiveError when it is not whole.

    The error comes at the point the damage is met: callers that must not act on half a file
    read it through `archive_summary` first.
    """
    count = 0
    ended = False
    try:
        with storage.open(name, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as lines:
            for number, data in enumerate(lines, start=1):
                record = _record(name, number, data)
                kind = record.get("record")
                if number == 1:
                    _check_header(name, record)
                elif ended:
                    raise ArchiveError(f"{name}: line {number} follows the end line")
                elif kind == "shipment":
                    count += 1
                    yield str(record["tracking_number"]), data.decode().rstrip("\n")
                elif kind == "end":
                    if record.get("shipments") != count:
                        raise ArchiveError(
                            f"{name}: the end line counts {record.get('shipments')} shipments, "
                            f"the file holds {count}"
                        )
                    ended = True
                else:
                    raise ArchiveError(f"{name}: line {number} is a {kind!r} record")
    except (EOFError, OSError, zlib.error) as exc:
        raise ArchiveError(f"{name}: not a whole gzip file ({exc})") from exc
    if not ended:
        raise ArchiveError(f"{name}: no end line (the file was cut short)")


def _record(name: str, number: int, data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{name}: line {number} is not JSON ({exc})") from exc
    if not isinstance(record, dict) or (
        record.get("record") == "shipment" and not record.get("tracking_number")
    ):
        raise ArchiveError(f"{name}: line {number} is not a record with a tracking number")
    return record


def _check_header(name: str, record: dict[str, Any]) -> None:
    if record.get("record") != "header" or record.get("format") != FORMAT:
        raise ArchiveError(f"{name}: line 1 is not a {FORMAT} header")
    if record.get("version") != VERSION:
        raise ArchiveError(
            f"{name}: format version {record.get('version')!r}; this hub reads version {VERSION}"
        )


def archive_summary(storage: Storage, name: str) -> Summary:
    """Read a whole file; ArchiveError if it is damaged or cut short."""
    summary = Summary()
    for tracking_number, _line in archive_lines(storage, name):
        summary.add(tracking_number)
    return summary


def archive_replace(storage: Storage, name: str, content: IO[bytes], expected: Summary) -> None:
    """Put `content` at `name`, never leaving a moment without a whole copy in the storage.

    1. Write `name.next` and read it back. 2. Replace `name` and read it back. 3. Delete the
    `.next` copy. A crash at any step leaves the old file, or a whole `.next` that the next run
    takes as the previous content (`previous_name`).
    """
    staged = name + NEXT_SUFFIX
    _save_verified(storage, staged, content, expected)
    content.seek(0)
    _save_verified(storage, name, content, expected)
    storage.delete(staged)


def _save_verified(storage: Storage, name: str, content: IO[bytes], expected: Summary) -> None:
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, File(content, name=name))
    if saved != name:
        raise ArchiveError(f"{name}: the storage saved it as {saved!r}")
    found = archive_summary(storage, name)
    if found != expected:
        raise ArchiveError(
            f"{name}: read back {found.shipments} shipments (digest {found.digest:x}), "
            f"wrote {expected.shipments} (digest {expected.digest:x})"
        )


def previous_name(storage: Storage, name: str) -> str | None:
    """The file holding what a period had before this run: a whole `.next` left by a run that
    crashed while replacing the file, else the file itself, else None (a new period).

    A damaged file (not a `.next`) raises ArchiveError: the parcels it holds are already gone
    from the database, so the operator must look before anything overwrites it.
    """
    staged = name + NEXT_SUFFIX
    if storage.exists(staged):
        try:
            archive_summary(storage, staged)
        except ArchiveError:
            storage.delete(staged)
        else:
            return staged
    if storage.exists(name):
        archive_summary(storage, name)
        return name
    return None
