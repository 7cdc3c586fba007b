"""Records that are not plain events: unit memberships, shipment facts, customs documents and
retractions, plus the events that need the database before they can be normalized. Called by the
run executor inside each batch's transaction, before the batch's events are recorded.

Everything here is set-based: a batch costs a constant number of queries whatever its size (a
20,000-parcel manifest is one unit upsert, one shipment upsert, one membership insert and one
status recompute). One module per record kind, in the order `records_apply` applies them:

- `interchanges`: EDI interchange history (a re-sent interchange's records are rejected);
- `facts`: shipment facts;
- `customs`: customs documents and the three-document match of their orders;
- `memberships`: unit loads and unloads;
- `retractions`: error declarations withdrawing earlier events;
- `events`: the deferred events (EDI, mapped EPC identifiers, CEB receipts), normalized;
- `values`: a record's parcel, unit and times as every applier reads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipments.recording import EventInput
from warehouses.ingest.apply.customs import documents_apply
from warehouses.ingest.apply.events import events_prepare
from warehouses.ingest.apply.facts import shipments_apply
from warehouses.ingest.apply.interchanges import interchanges_check
from warehouses.ingest.apply.memberships import memberships_apply
from warehouses.ingest.apply.retractions import retracted_before, retractions_apply
from warehouses.ingest.apply.values import reject
from warehouses.normalize.context import FeedContext
from warehouses.parsers.base import Record, RecordError

if TYPE_CHECKING:
    from warehouses.models import FeedRun

_KINDS = frozenset({"event", "membership", "shipment", "customs_document", "retraction"})


def event_needs_apply(record: Record) -> bool:
    """True for an event record that needs the database before normalizing (see module doc)."""
    extra = record.extra
    return (
        "interchange" in extra
        or "interchange_ref" in extra
        or "epc_key" in extra
        or "unit_key" in extra
        or (not record.tracking_number and not record.unit_id and "match_by" in extra)
    )


def records_apply(
    *,
    run: FeedRun,
    records: Sequence[Record],
    ctx: FeedContext,
    events: list[EventInput] | None = None,
) -> list[RecordError]:
    """Apply non-event records set-based; return the ones that cannot be used, with reasons.

    1. Drop the records of EDI interchanges this feed delivered before in another payload.
    2. Shipment facts: upsert shipments, filling blanks only.
    3. Customs documents: upsert, then recompute the three-document match of their orders.
    4. Memberships: loads, then unloads; recompute the status of every shipment they moved.
    5. Retractions: audit, delete and recompute.
    6. Deferred events: identifiers mapped, CEB receipts resolved to their parcels; normalized
       and appended to `events`, which the caller records right after.
    """
    rejects: list[RecordError] = []
    kept = interchanges_check(run=run, records=records, rejects=rejects)
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for record in kept:
        by_kind[record.kind].append(record)
    for kind in sorted(set(by_kind) - _KINDS):
        rejects += [
            reject(r, "", f"records of kind {kind!r} are not handled") for r in by_kind[kind]
        ]
    if by_kind["shipment"]:
        rejects += shipments_apply(by_kind["shipment"], ctx)
    if by_kind["customs_document"]:
        rejects += documents_apply(run, by_kind["customs_document"], ctx)
    # eventIDs retracted by earlier runs, looked up once for loads, unloads and events (this
    # batch's own retractions are in `retracting`, checked first).
    retracted = retracted_before(run, [*by_kind["membership"], *by_kind["event"]])
    if by_kind["membership"]:
        rejects += memberships_apply(run, by_kind["membership"], ctx, retracted)
    retracting: dict[str, int] = {}
    if by_kind["retraction"]:
        rejects += retractions_apply(run, by_kind["retraction"], ctx, by_kind["event"], retracting)
    if by_kind["event"]:
        if events is None:
            rejects += [
                reject(r, "", "event records need the pipeline's event list")
                for r in by_kind["event"]
            ]
        else:
            rejects += events_prepare(run, by_kind["event"], ctx, events, retracting, retracted)
    return rejects
