"""The payload store: every payload kept as-is under its sha256, through the storage API."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage


class PayloadTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StoredPayload:
    name: str
    sha256: str
    size: int


def payload_store(*, content: IO[bytes], max_bytes: int | None = None) -> StoredPayload:
    """Store a payload as-is under its sha256 through the storage API (content-addressed)."""
    limit = max_bytes if max_bytes is not None else settings.INGEST_MAX_PAYLOAD_BYTES
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        while chunk := content.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"payload exceeds the limit of {limit} bytes")
            digest.update(chunk)
            spool.write(chunk)
        sha = digest.hexdigest()
        name = f"payloads/{sha[:2]}/{sha}"
        if not default_storage.exists(name):
            spool.seek(0)
            name = default_storage.save(name, File(spool))
    return StoredPayload(name=name, sha256=sha, size=size)
