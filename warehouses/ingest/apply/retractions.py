"""Retractions (EPCIS error declarations): withdrawing events a partner declared wrong.

A retraction deletes the events its eventID names (from the same feed only: one partner never
withdraws another's events) after copying them to RetractedEvent. The loads and unloads an
AggregationEvent made are withdrawn with it (a load deleted, an unload reopened) and audited
the same way; a load, unload or event whose eventID was retracted before is not applied again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection

from shipments.membership import inside_unit
from shipments.models import TrackingEvent
from shipments.recording import shipments_recompute, shipments_reset_eventless
from warehouses.ingest.apply.values import instant, reject, text
from warehouses.models import RetractedEvent
from warehouses.normalize.context import FeedContext
from warehouses.parsers.base import Record, RecordError, RecordRejected

if TYPE_CHECKING:
    from warehouses.models import FeedRun

# Audit first, in one statement: the retracted event's full row is kept as JSON.
_AUDIT_RETRACTED = """
INSERT INTO warehouses_retractedevent (
    feed_id, run_id, source_event_id, event_pk, shipment_id, unit_id, code, occurred_at,
    event_data, reason, declared_at, line, retracted_at)
SELECT e.feed_id, %s, x.eid, e.id, e.shipment_id, e.unit_id, e.code, e.occurred_at,
       to_jsonb(e), x.reason, x.declared, x.line, now()
FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::int[]) AS x(eid, reason, declared, line)
JOIN shipments_trackingevent e
  ON e.extra ? 'event_id' AND e.extra->>'event_id' = x.eid AND e.feed_id = %s
RETURNING event_pk, shipment_id, unit_id, occurred_at, source_event_id
"""

# The loads and unloads the declarations name (AggregationEvents, from the same feed): a load is
# deleted, an unload reopened; each is audited like an event, its row kept as JSON.
_WITHDRAW_MEMBERSHIPS = """
WITH x AS (
    SELECT * FROM unnest(%(ids)s::text[], %(reasons)s::text[], %(declared)s::timestamptz[],
                         %(lines)s::int[]) AS x(eid, reason, declared, line)
), loads AS (
    DELETE FROM shipments_unitmembership m USING x
    WHERE m.load_feed_id = %(feed)s AND m.load_event_id = x.eid
    RETURNING m.id, m.unit_id, m.shipment_id, m.loaded_at AS at, to_jsonb(m) AS data,
              x.eid, x.reason, x.declared, x.line
), closed AS (
    SELECT m.id, m.unit_id, m.shipment_id, m.unloaded_at AS at, to_jsonb(m) AS data,
           x.eid, x.reason, x.declared, x.line
    FROM shipments_unitmembership m JOIN x
      ON m.unload_feed_id = %(feed)s AND m.unload_event_id = x.eid
    WHERE m.id NOT IN (SELECT id FROM loads)
    FOR UPDATE OF m
), reopened AS (
    UPDATE shipments_unitmembership m
    SET unloaded_at = NULL, unload_feed_id = NULL, unload_event_id = ''
    FROM closed WHERE m.id = closed.id
    RETURNING m.id
)
INSERT INTO warehouses_retractedevent (
    feed_id, run_id, source_event_id, event_pk, shipment_id, unit_id, code, occurred_at,
    event_data, reason, declared_at, line, retracted_at)
SELECT %(feed)s, %(run)s, eid, id, shipment_id, unit_id, 'membership_load', at, data, reason,
       declared, line, now()
FROM loads
UNION ALL
SELECT %(feed)s, %(run)s, eid, id, shipment_id, unit_id, 'membership_unload', at, data, reason,
       declared, line, now()
FROM closed WHERE id IN (SELECT id FROM reopened)
RETURNING source_event_id, shipment_id
"""

_UNIT_MEMBERS_AT = f"""
SELECT DISTINCT m.shipment_id
FROM unnest(%s::bigint[], %s::timestamptz[]) AS x(unit_id, at)
JOIN shipments_unitmembership m
  ON m.unit_id = x.unit_id AND {inside_unit("m", "x.at")}
"""


def retractions_apply(
    run: FeedRun,
    records: Sequence[Record],
    ctx: FeedContext,
    batch_events: Sequence[Record],
    retracting: dict[str, int],
) -> list[RecordError]:
    """Withdraw the events named by error declarations; `retracting` gets eventID -> line."""
    rejects: list[RecordError] = []
    wanted: dict[str, tuple[Record, str, datetime | None]] = {}
    for record in records:
        event_id = text(record.extra.get("event_id"))
        if not event_id:
            rejects.append(reject(record, "eventID", "retraction without the eventID it retracts"))
            continue
        try:
            declared: datetime | None = instant(record, ctx, record.event_time, "declarationTime")
        except RecordRejected:
            declared = None
        wanted[event_id] = (record, record.description[:500], declared)
        retracting[event_id] = record.line
    if not wanted:
        return rejects
    ids = sorted(wanted)
    with connection.cursor() as cursor:
        cursor.execute(
            _AUDIT_RETRACTED,
            [
                run.pk,
                ids,
                [wanted[i][1] for i in ids],
                [wanted[i][2] for i in ids],
                [wanted[i][0].line for i in ids],
                run.feed_id,
            ],
        )
        audited = cursor.fetchall()
        touched = {int(row[1]) for row in audited if row[1] is not None}
        unit_events = [(int(row[2]), row[3]) for row in audited if row[2] is not None]
        if unit_events:
            cursor.execute(
                _UNIT_MEMBERS_AT,
                [[u for u, _ in unit_events], [at for _, at in unit_events]],
            )
            touched.update(int(row[0]) for row in cursor.fetchall())
        # Before the recompute: a withdrawn load takes the unit's events off the parcel.
        cursor.execute(
            _WITHDRAW_MEMBERSHIPS,
            {
                "ids": ids,
                "reasons": [wanted[i][1] for i in ids],
                "declared": [wanted[i][2] for i in ids],
                "lines": [wanted[i][0].line for i in ids],
                "feed": run.feed_id,
                "run": run.pk,
            },
        )
        withdrawn = cursor.fetchall()
        touched.update(int(row[1]) for row in withdrawn)
    found = {str(row[4]) for row in audited} | {str(row[0]) for row in withdrawn}
    if audited:
        # Through the ORM so every reference to the event (status_event, status history,
        # webhook rows) follows its on_delete rule.
        TrackingEvent.objects.filter(pk__in=[int(row[0]) for row in audited]).delete()
    if touched:
        shipment_ids = sorted(touched)
        shipments_recompute(shipment_ids=shipment_ids)
        shipments_reset_eventless(shipment_ids=shipment_ids)
    missing = [i for i in ids if i not in found]
    if missing:
        earlier = set(
            RetractedEvent.objects.filter(
                feed_id=run.feed_id, source_event_id__in=missing
            ).values_list("source_event_id", flat=True)
        )
        in_batch = {text(r.extra.get("event_id")) for r in batch_events}
        for event_id in missing:
            if event_id in earlier or event_id in in_batch:
                continue  # retracted before (re-delivery), or arriving in this very batch
            record = wanted[event_id][0]
            rejects.append(
                reject(
                    record,
                    "eventID",
                    f"error declaration retracts event {event_id!r}, but no event with that "
                    "eventID has been recorded from this feed",
                )
            )
    return rejects


def retracted_reject(record: Record, event_id: str, run_id: int | None) -> RecordError:
    return reject(
        record,
        "eventID",
        f"event {event_id!r} was retracted by an error declaration (run {run_id}); "
        "it is not recorded again",
    )


def retracted_before(run: FeedRun, records: Iterable[Record]) -> dict[str, int]:
    ids = {text(r.extra.get("event_id")) for r in records if r.extra.get("event_id")}
    if not ids:
        return {}
    return dict(
        RetractedEvent.objects.filter(
            feed_id=run.feed_id, source_event_id__in=sorted(ids)
        ).values_list("source_event_id", "run_id")
    )
