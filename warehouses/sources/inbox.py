"""A feed's inbox folder: each file dropped there becomes one run, read once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun
from warehouses.sources.http_pull import FetchError


class InboxOutsideRoot(FetchError):
    """A directory feed's folder resolves outside INBOX_ROOT."""


def inbox_path(feed: Feed) -> Path:
    """The feed's folder: its source_location (relative to INBOX_ROOT, or absolute inside it),
    else INBOX_ROOT/<feed code>.

    Only folders under INBOX_ROOT: the inbox moves every file it finds and shows their content
    in rejects, so a feed pointed at any folder the worker can read would empty it.
    """
    root = Path(settings.INBOX_ROOT).resolve()
    folder = (root / (feed.source_location or feed.code)).resolve()
    if not folder.is_relative_to(root):
        raise InboxOutsideRoot(
            f"inbox folder {feed.source_location!r} is outside INBOX_ROOT ({root})"
        )
    return folder


def inbox_collect(*, feed: Feed, stale_after: float = 600.0) -> list[FeedRun]:
    """Take every file from the feed's inbox folder; each file is read once.

    1. Claim a file by renaming it into `processing/` (atomic: of two workers, one wins).
    2. Store it and create its run (the payload hash makes a second attempt a no-op).
    3. Move it to `processed/`. A file left in `processing/` by a dead worker is retried
       after `stale_after` seconds.
    """
    root = inbox_path(feed)
    processing, processed = root / "processing", root / "processed"
    for folder in (root, processing, processed):
        folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    candidates = [p for p in sorted(processing.iterdir()) if now - p.stat().st_mtime > stale_after]
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue  # dot-files are uploads still being written
        target = processing / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue  # another worker took it
        os.utime(target)
        candidates.append(target)
    runs = []
    for path in candidates:
        with path.open("rb") as handle:
            run = feed_run_create(
                feed=feed, content=handle, original_name=path.name, source=FeedRun.Source.DIRECTORY
            )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        os.replace(path, processed / f"{stamp}-{path.name}")
        runs.append(run)
    return runs
