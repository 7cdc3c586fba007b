"""Records that are not plain events: unit memberships, shipment facts, customs documents and
retractions. Called by the run executor inside each batch's transaction, before its events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from warehouses.formats.base import Record, RecordError
from warehouses.normalize import FeedContext

if TYPE_CHECKING:
    from warehouses.models import FeedRun


def records_apply(
    *, run: FeedRun, records: Sequence[Record], ctx: FeedContext
) -> list[RecordError]:
    """Apply non-event records set-based; return the ones that cannot be used, with reasons."""
    return [
        RecordError(
            line=record.line,
            raw=record.raw,
            field="",
            reason=f"records of kind {record.kind!r} are not handled yet",
        )
        for record in records
    ]
