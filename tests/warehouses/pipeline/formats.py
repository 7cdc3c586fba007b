"""What the end-to-end format tests share: where their payloads come from and their feeds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import FeedFactory
from tests.samples import SAMPLES
from warehouses.models import (
    Feed,
    FeedRun,
    RejectedRecord,
)

Ingest = Callable[..., FeedRun]
FIXTURES = Path(__file__).parents[1] / "parsers" / "fixtures"


def sample_bytes(name: str) -> bytes:
    folder = FIXTURES if name.startswith(("x12/", "edifact/")) else SAMPLES
    return (folder / name).read_bytes()


def format_feed(fmt: str, **fields: Any) -> Feed:
    return FeedFactory(format=fmt, **fields)


def first_reject(run: FeedRun) -> RejectedRecord | None:
    return RejectedRecord.objects.filter(run=run).order_by("line").first()
