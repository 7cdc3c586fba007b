"""EDI interchange history: the same interchange in a later payload is a re-send.

An interchange (X12 ISA06/ISA08/ISA13, EDIFACT sender + UNB05) is remembered per feed; its
records in a later payload are rejected. Reprocessing the same payload is not a re-send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from warehouses.ingest.apply.values import reject, text
from warehouses.models import InterchangeSeen
from warehouses.parsers.base import Record, RecordError

if TYPE_CHECKING:
    from warehouses.models import FeedRun


def _interchange_key(record: Record) -> tuple[str, str, str] | None:
    """(key, field, description) of the interchange a record came in, if any."""
    extra = record.extra
    if "interchange" in extra:
        sender, _, rest = str(extra["interchange"]).partition("/")
        receiver, _, control = rest.rpartition("/")
        return (
            f"x12:{extra['interchange']}",
            "ISA13",
            f"ISA13 control number {control} from sender {sender.strip()} to receiver "
            f"{receiver.strip()}",
        )
    if "interchange_ref" in extra:
        sender = text(extra.get("sender"))
        ref = text(extra["interchange_ref"])
        return (
            f"edifact:{sender}/{ref}",
            "UNB05",
            f"UNB05 control reference {ref} from sender {sender}",
        )
    return None


def interchanges_check(
    *, run: FeedRun, records: Sequence[Record], rejects: list[RecordError]
) -> list[Record]:
    """The records to apply: those of an interchange this feed delivered before in another
    payload are dropped, their rejects added to `rejects`; every new interchange is noted."""
    keys: dict[str, int] = {}
    for record in records:
        found = _interchange_key(record)
        if found:
            keys.setdefault(found[0], record.line)
    if not keys:
        return list(records)
    seen = {
        s.interchange: s
        for s in InterchangeSeen.objects.filter(
            feed_id=run.feed_id, interchange__in=list(keys)
        ).select_related("run")
    }
    # A re-run of the same payload (operator reprocess, retried worker) is not a re-send.
    repeated = {
        key: s
        for key, s in seen.items()
        if s.run_id != run.pk and s.run.payload_sha256 != run.payload_sha256
    }
    new = [k for k in keys if k not in seen]
    if new:
        InterchangeSeen.objects.bulk_create(
            [
                InterchangeSeen(feed_id=run.feed_id, interchange=k, run=run, first_line=keys[k])
                for k in new
            ],
            ignore_conflicts=True,
        )
    if not repeated:
        return list(records)
    kept = []
    for record in records:
        found = _interchange_key(record)
        if found and found[0] in repeated:
            first = repeated[found[0]]
            rejects.append(
                reject(
                    record,
                    found[1],
                    f"duplicate interchange: {found[2]} was already received in run "
                    f"{first.run_id} on {first.seen_at:%Y-%m-%d %H:%M} UTC; its records are "
                    "not applied again",
                )
            )
        else:
            kept.append(record)
    return kept
