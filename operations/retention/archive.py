"""The retention files: gzip-compressed JSON Lines, one file per month (docs/retention.md).

A file is a header line, one line per shipment or transport unit, and a trailer line with the
counts. A file is
complete only when it decompresses to its end and its trailer's count matches its lines, so a
copy cut short by a crash (or a truncated upload) is told apart from a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import IO, Any, TypeVar

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone

T = TypeVar("T")
FORMAT = "hub-retention"
# 2 added the unit records (and the end line's `units`); a version 1 file reads as before.
VERSION = 2
READABLE = (1, 2)
STORAGE_ALIAS = "retention"
# The copy being written before it replaces the file of the period (see `archive_replace`).
NEXT_SUFFIX = ".next"


class ArchiveError(Exception):
    """A retention file that cannot be read whole: the reason names the file and the line."""


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives with Python 3.12; the hub runs on 3.11.
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def retention_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def period_name(period: date) -> str:
    return f"shipments-{period:%Y-%m}.jsonl.gz"


def _key(tracking_number: str) -> int:
    return int.from_bytes(hashlib.blake2b(tracking_number.encode(), digest_size=8).digest())


@dataclass
class Summary:
    """What a file holds: its shipments' and units' counts and an order-free digest of their
    numbers (a unit's prefixed: a unit and a parcel may share a number)."""

    shipments: int = 0
    digest: int = 0
    units: int = 0

    def add(self, kind: str, key: str) -> None:
        if kind == "unit":
            self.units += 1
            key = "unit:" + key
        else:
            self.shipments += 1
        self.digest = (self.digest + _key(key)) % 2**64


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

    def add(self, kind: str, key: str, line: str) -> None:
        """One shipment or unit record (`kind`, keyed by its number), already JSON (the export
        query's text, or a line of a file)."""
        self._gzip.write(line.encode() + b"\n")
        self.summary.add(kind, key)

    def finish(self) -> IO[bytes]:
        self._line(
            {"record": "end", "shipments": self.summary.shipments, "units": self.summary.units}
        )
        self._gzip.close()
        self._raw.seek(0)
        return self._raw


def archive_lines(storage: Storage, name: str) -> Iterator[tuple[str, str, str]]:
    """(kind, number, line) of every shipment and unit in a file; ArchiveError when it is not
    whole.

    The error comes at the point the damage is met: callers that must not act on half a file
    read it through `archive_summary` first.
    """
    counts = {"shipment": 0, "unit": 0}
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
                elif kind in _NUMBERS:
                    counts[kind] += 1
                    yield kind, str(record[_NUMBERS[kind]]), data.decode().rstrip("\n")
                elif kind == "end":
                    _check_end(name, record, counts)
                    ended = True
                else:
                    raise ArchiveError(f"{name}: line {number} is a {kind!r} record")
    except (EOFError, OSError, zlib.error) as exc:
        raise ArchiveError(f"{name}: not a whole gzip file ({exc})") from exc
    if not ended:
        raise ArchiveError(f"{name}: no end line (the file was cut short)")


# The record types that carry rows, and the field naming each.
_NUMBERS = {"shipment": "tracking_number", "unit": "number"}


def _record(name: str, number: int, data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{name}: line {number} is not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ArchiveError(f"{name}: line {number} is not a record")
    field = _NUMBERS.get(record.get("record"))  # type: ignore[arg-type]
    if field is not None and not record.get(field):
        raise ArchiveError(f"{name}: line {number} is a {record['record']} without its {field}")
    return record


def _check_end(name: str, record: dict[str, Any], counts: dict[str, int]) -> None:
    # A version 1 file has no `units` on its end line (and no unit records).
    for kind, key in (("shipment", "shipments"), ("unit", "units")):
        if record.get(key, 0) != counts[kind]:
            raise ArchiveError(
                f"{name}: the end line counts {record.get(key, 0)} {key}, "
                f"the file holds {counts[kind]}"
            )


def _check_header(name: str, record: dict[str, Any]) -> None:
    if record.get("record") != "header" or record.get("format") != FORMAT:
        raise ArchiveError(f"{name}: line 1 is not a {FORMAT} header")
    if record.get("version") not in READABLE:
        raise ArchiveError(
            f"{name}: format version {record.get('version')!r}; this hub reads versions "
            f"{', '.join(map(str, READABLE))}"
        )


def archive_summary(storage: Storage, name: str) -> Summary:
    """Read a whole file; ArchiveError if it is damaged or cut short."""
    summary = Summary()
    for kind, key, _line in archive_lines(storage, name):
        summary.add(kind, key)
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
            f"{name}: read back {found.shipments} shipments and {found.units} units (digest "
            f"{found.digest:x}), wrote {expected.shipments} and {expected.units} (digest "
            f"{expected.digest:x})"
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
