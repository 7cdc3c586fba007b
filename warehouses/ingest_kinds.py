"""Records that are not plain events: unit memberships, shipment facts, customs documents and
retractions, plus the events that need the database before they can be normalized. Called by the
run executor inside each batch's transaction, before the batch's events are recorded.

Everything here is set-based: a batch costs a constant number of queries whatever its size (a
20,000-parcel manifest is one unit upsert, one shipment upsert, one membership insert and one
status recompute).

Decisions worth knowing:
- Unit numbers: the record's unit_id as given, except EPCIS parentIDs, which are stored under
  their canonical key (`sscc:106141412345678908`) so every spelling of an SSCC is one unit; the
  feed's identifier_mapping may rename either.
- Parcels: the feed's identifier_mapping is looked up by the identifier as given and then by its
  EPC key (`sscc:<digits>`, `sgtin:<gtin>.<serial>`); otherwise the identifier itself, cleaned.
- Customs documents are filed under (doc_type, number) across feeds, because customs matches the
  order, payment and waybill of one order, sent by three different parties, by number. The
  three-document match of each order is kept in CustomsMatch (one row per order number).
- An EDI interchange (X12 ISA06/ISA08/ISA13, EDIFACT sender + UNB05) is remembered per feed; the
  same interchange in a later payload is a re-send and its records are rejected. Reprocessing
  the same payload is not a re-send.
- A retraction deletes the events its eventID names (from the same feed only: one partner never
  withdraws another's events) after copying them to RetractedEvent. The loads and unloads an
  AggregationEvent made are withdrawn with it (a load deleted, an unload reopened) and audited
  the same way; a load or unload whose eventID was retracted before is not applied again.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from shipments.identifiers import (
    tracking_number_clean,
    tracking_number_problem,
    tracking_number_valid,
)
from shipments.membership import inside_unit
from shipments.models import TrackingEvent, TransportUnit
from shipments.recording import (
    EventInput,
    ShipmentFacts,
    shipments_recompute,
    shipments_reset_eventless,
    shipments_upsert,
    units_upsert,
)
from warehouses.models import InterchangeSeen, RetractedEvent
from warehouses.normalize import FeedContext, _FieldError, normalize_event, resolve_time
from warehouses.parsers.base import Record, RecordError
from warehouses.parsers.ceb import match_documents

if TYPE_CHECKING:
    from warehouses.models import FeedRun

_UNIT_KINDS = frozenset(TransportUnit.Kind.values)
_MATCHED_TYPES = ("order", "payment", "waybill")
_RECEIPT_TYPES = frozenset({"receipt", "inventory_cancel_receipt", "refund_receipt"})
# CEB references by which a receipt without logisticsNo names its declaration, with the field
# name an operator sees in the XML.
_CEB_FIELDS = {
    "logistics_no": "logisticsNo",
    "order_no": "orderNo",
    "invt_no": "invtNo",
    "cop_no": "copNo",
    "pre_no": "preNo",
    "pay_transaction_id": "payTransactionId",
}


class _Rejected(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _error(record: Record, field_name: str, reason: str) -> RecordError:
    return RecordError(line=record.line, raw=record.raw, field=field_name, reason=reason)


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
    kept = _interchanges_check(run=run, records=records, rejects=rejects)
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for record in kept:
        by_kind[record.kind].append(record)
    unknown = set(by_kind) - {"event", "membership", "shipment", "customs_document", "retraction"}
    for kind in sorted(unknown):
        rejects += [
            _error(r, "", f"records of kind {kind!r} are not handled") for r in by_kind[kind]
        ]
    if by_kind["shipment"]:
        rejects += _shipments_apply(by_kind["shipment"], ctx)
    if by_kind["customs_document"]:
        rejects += _documents_apply(run, by_kind["customs_document"], ctx)
    # eventIDs retracted by earlier runs, looked up once for loads, unloads and events (this
    # batch's own retractions are in `retracting`, checked first).
    retracted = _retracted_before(run, [*by_kind["membership"], *by_kind["event"]])
    if by_kind["membership"]:
        rejects += _memberships_apply(run, by_kind["membership"], ctx, retracted)
    retracting: dict[str, int] = {}
    if by_kind["retraction"]:
        rejects += _retractions_apply(run, by_kind["retraction"], ctx, by_kind["event"], retracting)
    if by_kind["event"]:
        if events is None:
            rejects += [
                _error(r, "", "event records need the pipeline's event list")
                for r in by_kind["event"]
            ]
        else:
            rejects += _events_prepare(run, by_kind["event"], ctx, events, retracting, retracted)
    return rejects


# --- identifiers and times --------------------------------------------------------------------


def _parcel(record: Record, ctx: FeedContext) -> str:
    """The tracking number a record names, through the feed's identifier mapping."""
    given = record.tracking_number.strip()
    key = str(record.extra.get("epc_key") or "")
    mapped = ctx.identifier_mapping.get(given) or (ctx.identifier_mapping.get(key) if key else "")
    tracking = tracking_number_clean(mapped or given)
    if tracking and not tracking_number_valid(tracking):
        raise _Rejected(
            "tracking_number",
            f"{tracking_number_problem(tracking)} "
            "(map long identifiers such as EPCs in the feed's identifier mapping)",
        )
    return tracking


def _unit_number(record: Record, ctx: FeedContext) -> str:
    given = record.unit_id.strip()
    key = str(record.extra.get("unit_key") or "")
    mapped = ctx.identifier_mapping.get(given) or (ctx.identifier_mapping.get(key) if key else "")
    number = mapped or key or given
    if len(number) > 100:
        raise _Rejected("unit_id", f"unit id is {len(number)} characters, the limit is 100")
    return number


def _instant(record: Record, ctx: FeedContext, value: str | datetime | None, name: str) -> datetime:
    """An aware UTC instant for one of the record's times, resolved like event times."""
    probe = dataclasses.replace(record, event_time=value)
    try:
        moment, _ = resolve_time(probe, ctx)
        return moment.astimezone(UTC)
    except _FieldError as exc:
        field_name = name if exc.field == "event_time" else exc.field
        reason = exc.reason.replace("event time", name.replace("_", " "))
        raise _Rejected(field_name, reason) from exc
    except OverflowError as exc:  # year 1 or 9999 moved past the calendar by its offset
        raise _Rejected(
            name, f"{name.replace('_', ' ')} {value!s:.40} is out of range in UTC"
        ) from exc


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


# --- 1. EDI interchange history ---------------------------------------------------------------


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
        sender = _text(extra.get("sender"))
        ref = _text(extra["interchange_ref"])
        return (
            f"edifact:{sender}/{ref}",
            "UNB05",
            f"UNB05 control reference {ref} from sender {sender}",
        )
    return None


def _interchanges_check(
    *, run: FeedRun, records: Sequence[Record], rejects: list[RecordError]
) -> list[Record]:
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
                _error(
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


# --- 2. shipments -----------------------------------------------------------------------------


def _shipment_facts(record: Record) -> ShipmentFacts:
    extra = record.extra
    direction = _text(extra.get("direction"))
    country = record.country.strip().upper()
    origin = _text(extra.get("origin_country")).upper()
    destination = _text(extra.get("destination_country")).upper()
    if direction == "import":
        # A cross-border import declared to China customs is bound for China by definition.
        origin, destination = origin or country, destination or "CN"
    elif direction == "export":
        origin, destination = origin or "CN", destination or country
    order_number = record.order_number.strip()
    if len(order_number) > 64:
        raise _Rejected("order_number", f"order number is {len(order_number)} characters, limit 64")
    for name, value in (("origin_country", origin), ("destination_country", destination)):
        if value and (len(value) != 2 or not value.isalpha()):
            raise _Rejected(name, f"country {value!r} is not an ISO 3166 alpha-2 code")
    return ShipmentFacts(
        order_number=order_number,
        carrier=record.carrier.strip()[:64],
        origin_country=origin,
        destination_country=destination,
        weight_kg=record.weight_kg,
    )


def _shipments_apply(records: Sequence[Record], ctx: FeedContext) -> list[RecordError]:
    rejects: list[RecordError] = []
    facts: dict[str, ShipmentFacts] = {}
    for record in records:
        try:
            tracking = _parcel(record, ctx)
            if not tracking:
                if record.unit_id:
                    raise _Rejected(
                        "epcList",
                        f"purchase order {record.order_number!r} is linked to unit "
                        f"{record.unit_id!r} only; name the parcels (epcList) to link them",
                    )
                raise _Rejected("tracking_number", "shipment record without a tracking number")
            found = _shipment_facts(record)
        except _Rejected as exc:
            rejects.append(_error(record, exc.field, exc.reason))
            continue
        if tracking in facts:
            facts[tracking].merge(found)
        else:
            facts[tracking] = found
    shipments_upsert(facts=facts)
    return rejects


# --- 3. customs documents and the three-document match ----------------------------------------


def _document_number(doc_type: str, extra: dict[str, Any], record: Record) -> str:
    order_no, logistics_no = _text(extra.get("order_no")), _text(extra.get("logistics_no"))
    if doc_type in ("order", "payment"):
        return order_no
    if doc_type == "waybill":
        return logistics_no
    number = (
        logistics_no
        or _text(extra.get("invt_no"))
        or _text(extra.get("cop_no"))
        or _text(extra.get("pre_no"))
        or order_no
        or _text(extra.get("pay_transaction_id"))
    )
    if number and doc_type in _RECEIPT_TYPES:
        # Several receipts answer one declaration (2 declaring, 120 accepted, 800 released).
        when = record.event_time.isoformat() if isinstance(record.event_time, datetime) else ""
        number = f"{number}#{_text(extra.get('return_status'))}@{when}"
    return number


_UPSERT_DOCUMENTS = """
INSERT INTO warehouses_customsdocument AS d (
    doc_type, number, message, direction, order_no, logistics_no, cop_no, invt_no, pre_no,
    pay_transaction_id, data, occurred_at, feed_id, run_id, line, created_at, updated_at)
SELECT x.doc_type, x.number, x.message, x.direction, x.order_no, x.logistics_no, x.cop_no,
       x.invt_no, x.pre_no, x.txn, x.data::jsonb, x.at, %s, %s, x.line, now(), now()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::int[])
     AS x(doc_type, number, message, direction, order_no, logistics_no, cop_no, invt_no, pre_no,
          txn, data, at, line)
ORDER BY x.doc_type, x.number
ON CONFLICT (doc_type, number) DO UPDATE SET
    message = EXCLUDED.message, direction = EXCLUDED.direction, order_no = EXCLUDED.order_no,
    logistics_no = EXCLUDED.logistics_no, cop_no = EXCLUDED.cop_no,
    invt_no = EXCLUDED.invt_no, pre_no = EXCLUDED.pre_no,
    pay_transaction_id = EXCLUDED.pay_transaction_id, data = EXCLUDED.data,
    occurred_at = EXCLUDED.occurred_at, feed_id = EXCLUDED.feed_id, run_id = EXCLUDED.run_id,
    line = EXCLUDED.line, updated_at = now()
"""

_DOCUMENTS_OF_ORDERS = """
SELECT order_no, doc_type, direction, logistics_no, data
FROM warehouses_customsdocument
WHERE doc_type IN ('order', 'payment', 'waybill') AND order_no = ANY(%s)
ORDER BY updated_at, id
"""

_UPSERT_MATCHES = """
INSERT INTO warehouses_customsmatch AS c (
    order_no, direction, result, missing, mismatched, logistics_no, shipment_id, checked_at)
SELECT x.o, x.dir, x.r, x.mi::jsonb, x.mm::jsonb, x.l,
       coalesce((SELECT s.id FROM shipments_shipment s
                 WHERE x.l <> '' AND s.tracking_number = x.l),
                (SELECT min(s.id) FROM shipments_shipment s WHERE s.order_number = x.o)),
       now()
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS x(o, dir, r, mi, mm, l)
ORDER BY x.o
ON CONFLICT (order_no) DO UPDATE SET
    direction = EXCLUDED.direction, result = EXCLUDED.result, missing = EXCLUDED.missing,
    mismatched = EXCLUDED.mismatched, logistics_no = EXCLUDED.logistics_no,
    shipment_id = coalesce(EXCLUDED.shipment_id, c.shipment_id), checked_at = now()
"""

# The order's goods value is the shipment's declared value (blank facts only).
_DECLARED_VALUES = """
UPDATE shipments_shipment s SET
    declared_value = (d.data->>'goods_value')::numeric,
    currency = coalesce(nullif(s.currency, ''), d.data->>'currency', ''),
    updated_at = now()
FROM warehouses_customsdocument d
WHERE d.doc_type = 'order' AND d.order_no = ANY(%s) AND s.order_number = d.order_no
  AND s.declared_value IS NULL AND coalesce(d.data->>'goods_value', '') <> ''
"""


def _documents_apply(
    run: FeedRun, records: Sequence[Record], ctx: FeedContext
) -> list[RecordError]:
    rejects: list[RecordError] = []
    rows: dict[tuple[str, str], tuple[Record, dict[str, Any], datetime | None]] = {}
    for record in records:
        extra = dict(record.extra)
        doc_type = _text(extra.get("doc_type"))
        number = _document_number(doc_type, extra, record)
        if not doc_type:
            rejects.append(_error(record, "doc_type", "customs document without a doc_type"))
            continue
        if not number:
            need = "orderNo" if doc_type in ("order", "payment") else "logisticsNo"
            rejects.append(
                _error(record, need, f"{doc_type} document has no {need} to file it under")
            )
            continue
        long = [k for k in _CEB_FIELDS if len(_text(extra.get(k))) > 64]
        if long or len(number) > 200:
            name = _CEB_FIELDS[long[0]] if long else "number"
            rejects.append(_error(record, name, f"{name} is longer than 64 characters"))
            continue
        try:
            at: datetime | None = _instant(record, ctx, record.event_time, "appTime")
        except _Rejected:
            at = None  # a document without a usable time is still a document
        # A later copy of the same document in one batch replaces the earlier (last wins).
        rows[(doc_type, number)] = (record, extra, at)
    if rows:
        keys = sorted(rows)
        values = [rows[k] for k in keys]
        columns: list[list[Any]] = [
            [k[0] for k in keys],
            [k[1] for k in keys],
            [_text(e.get("message")) for _, e, _ in values],
            [_text(e.get("direction")) for _, e, _ in values],
            [_text(e.get("order_no")) for _, e, _ in values],
            [_text(e.get("logistics_no")) for _, e, _ in values],
            [_text(e.get("cop_no")) for _, e, _ in values],
            [_text(e.get("invt_no")) for _, e, _ in values],
            [_text(e.get("pre_no")) for _, e, _ in values],
            [_text(e.get("pay_transaction_id")) for _, e, _ in values],
            [json.dumps(e, ensure_ascii=False, default=str) for _, e, _ in values],
            [at for _, _, at in values],
            [r.line for r, _, _ in values],
        ]
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_DOCUMENTS, [run.feed_id, run.pk, *columns])
        orders = sorted(
            {
                _text(e.get("order_no"))
                for (doc_type, _), (_, e, _) in rows.items()
                if doc_type in _MATCHED_TYPES and _text(e.get("order_no"))
            }
        )
        _matches_compute(orders)
    return rejects


def _matches_compute(orders: Sequence[str]) -> None:
    """Recompute the three-document match of these orders from every stored document."""
    if not orders:
        return
    documents: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    directions: dict[str, str] = {}
    logistics: dict[str, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(_DOCUMENTS_OF_ORDERS, [list(orders)])
        for order_no, doc_type, direction, logistics_no, data in cursor.fetchall():
            document = data if isinstance(data, dict) else json.loads(data)
            documents[order_no][doc_type] = document  # ordered by updated_at: latest wins
            directions[order_no] = directions.get(order_no) or direction
            if doc_type == "waybill":
                logistics[order_no] = tracking_number_clean(logistics_no)
        rows = []
        for order_no in orders:
            found = documents.get(order_no, {})
            result, names = match_documents(
                found.get("order"), found.get("payment"), found.get("waybill")
            )
            rows.append(
                (
                    order_no,
                    directions.get(order_no, ""),
                    result,
                    json.dumps(names if result == "missing" else []),
                    json.dumps(names if result == "mismatch" else []),
                    logistics.get(order_no, ""),
                )
            )
        cursor.execute(_UPSERT_MATCHES, [list(column) for column in zip(*rows, strict=True)])
        cursor.execute(_DECLARED_VALUES, [list(orders)])


# --- 4. unit memberships ----------------------------------------------------------------------

# Loads. A re-delivered load is a no-op (the unique (unit, shipment, loaded_at)); a manifest
# row that now carries unloaded_at closes the membership it opened earlier.
_INSERT_MEMBERSHIPS = """
WITH ins AS (
    INSERT INTO shipments_unitmembership AS m (
        unit_id, shipment_id, loaded_at, unloaded_at, load_feed_id, load_event_id,
        unload_feed_id, unload_event_id)
    SELECT u.id, s.id, x.loaded, x.unloaded, CASE WHEN x.eid <> '' THEN %s::bigint END, x.eid,
           NULL, ''
    FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
         AS x(unit, tn, loaded, unloaded, eid)
    JOIN shipments_transportunit u ON u.number = x.unit
    JOIN shipments_shipment s ON s.tracking_number = x.tn
    ORDER BY u.id, s.id
    ON CONFLICT (unit_id, shipment_id, loaded_at) DO UPDATE SET unloaded_at = EXCLUDED.unloaded_at
    WHERE m.unloaded_at IS NULL AND EXCLUDED.unloaded_at IS NOT NULL
    RETURNING m.shipment_id
)
SELECT DISTINCT shipment_id FROM ins
"""

# Unloads close the open membership loaded before them; each membership takes the earliest
# unload after its load, so "loaded, unloaded, loaded again, unloaded" in one batch is right.
_CLOSE_MEMBERSHIPS = """
WITH x AS (
    SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
             AS x(i, unit, tn, at, eid)
), target AS (
    SELECT DISTINCT ON (m.id) m.id, x.at, x.i, x.eid
    FROM x
    JOIN shipments_transportunit u ON u.number = x.unit
    JOIN shipments_unitmembership m
      ON m.unit_id = u.id AND m.unloaded_at IS NULL AND m.loaded_at <= x.at
    LEFT JOIN shipments_shipment s ON x.tn <> '' AND s.tracking_number = x.tn
    WHERE x.tn = '' OR m.shipment_id = s.id
    ORDER BY m.id, x.at
), closed AS (
    UPDATE shipments_unitmembership m SET unloaded_at = t.at,
           unload_feed_id = CASE WHEN t.eid <> '' THEN %s::bigint END, unload_event_id = t.eid
    FROM target t WHERE m.id = t.id
    RETURNING m.shipment_id, t.i
)
SELECT shipment_id, i FROM closed
"""

# Unloads that closed nothing: silent when the same unload was applied before (re-delivery).
_ALREADY_CLOSED = """
SELECT x.i
FROM unnest(%s::int[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
     AS x(i, unit, tn, at, eid)
WHERE EXISTS (
    SELECT 1 FROM shipments_unitmembership m
    JOIN shipments_transportunit u ON u.id = m.unit_id
    LEFT JOIN shipments_shipment s ON s.id = m.shipment_id
    WHERE u.number = x.unit AND m.unloaded_at = x.at AND (x.tn = '' OR s.tracking_number = x.tn)
)
"""


def _memberships_apply(
    run: FeedRun, records: Sequence[Record], ctx: FeedContext, retracted: dict[str, int]
) -> list[RecordError]:
    rejects: list[RecordError] = []
    units: dict[str, str] = {}
    parcels: dict[str, ShipmentFacts] = {}
    # (unit, parcel, loaded_at) -> (unloaded_at, source eventID)
    loads: dict[tuple[str, str, datetime], tuple[datetime | None, str]] = {}
    unloads: list[tuple[Record, str, str, datetime, str]] = []
    for record in records:
        event_id = _text(record.extra.get("event_id"))
        if event_id in retracted:
            rejects.append(_retracted_reject(record, event_id, retracted[event_id]))
            continue
        try:
            unit = _unit_number(record, ctx)
            if not unit:
                raise _Rejected("unit_id", "missing unit_id")
            kind = record.unit_kind.strip().lower() or "other"
            if kind not in _UNIT_KINDS:
                raise _Rejected(
                    "unit_kind",
                    f"unknown unit kind {kind!r} "
                    f"(expected one of {', '.join(sorted(_UNIT_KINDS))})",
                )
            tracking = _parcel(record, ctx)
            every_child = bool(record.extra.get("all_children"))
            if not tracking and not every_child:
                raise _Rejected("tracking_number", "missing tracking number of the unit's member")
            has_load = record.event_time not in (None, "")
            has_unload = record.unloaded_at not in (None, "")
            if not has_load and not has_unload:
                raise _Rejected("loaded_at", "missing loaded_at (and no unloaded_at)")
            loaded = _instant(record, ctx, record.event_time, "loaded_at") if has_load else None
            unloaded = (
                _instant(record, ctx, record.unloaded_at, "unloaded_at") if has_unload else None
            )
        except _Rejected as exc:
            rejects.append(_error(record, exc.field, exc.reason))
            continue
        if loaded is not None:
            if unloaded is not None and unloaded < loaded:
                rejects.append(
                    _error(
                        record,
                        "unloaded_at",
                        f"unloaded_at {unloaded.isoformat()} is before loaded_at "
                        f"{loaded.isoformat()}",
                    )
                )
                continue
            # Only a load creates its unit and parcel: an unload closes what exists or is
            # rejected, and a rejected record leaves nothing behind (no phantom rows).
            if kind != "other" or unit not in units:
                units[unit] = kind
            parcels.setdefault(tracking, ShipmentFacts())
            key = (unit, tracking, loaded)
            known_unload, known_event = loads.get(key, (None, ""))
            loads[key] = (known_unload or unloaded, known_event or event_id)
        else:
            assert unloaded is not None
            unloads.append((record, unit, tracking, unloaded, event_id))
    if not loads and not unloads:
        return rejects
    moved: set[int] = set()
    with connection.cursor() as cursor:
        units_upsert(kinds=units)
        shipments_upsert(facts=parcels)
        if loads:
            keys = list(loads)
            cursor.execute(
                _INSERT_MEMBERSHIPS,
                [
                    run.feed_id,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [loads[k][0] for k in keys],
                    [loads[k][1] for k in keys],
                ],
            )
            moved.update(int(row[0]) for row in cursor.fetchall())
        if unloads:
            params: list[Any] = [
                list(range(len(unloads))),
                [u[1] for u in unloads],
                [u[2] for u in unloads],
                [u[3] for u in unloads],
                [u[4] for u in unloads],
            ]
            cursor.execute(_CLOSE_MEMBERSHIPS, [*params, run.feed_id])
            applied: set[int] = set()
            for shipment_id, index in cursor.fetchall():
                moved.add(int(shipment_id))
                applied.add(int(index))
            if len(applied) < len(unloads):
                cursor.execute(_ALREADY_CLOSED, params)
                applied.update(int(row[0]) for row in cursor.fetchall())
            for index, (record, unit, tracking, at, _) in enumerate(unloads):
                if index not in applied:
                    what = f"parcel {tracking}" if tracking else "any parcel"
                    rejects.append(
                        _error(
                            record,
                            "unloaded_at",
                            f"no open membership of {what} in unit {unit} loaded before "
                            f"{at.isoformat()} to close",
                        )
                    )
    # Membership decides which unit events a parcel's status counts.
    shipments_recompute(shipment_ids=sorted(moved))
    return rejects


# --- 5. retractions ---------------------------------------------------------------------------

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


def _retractions_apply(
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
        event_id = _text(record.extra.get("event_id"))
        if not event_id:
            rejects.append(_error(record, "eventID", "retraction without the eventID it retracts"))
            continue
        try:
            declared: datetime | None = _instant(record, ctx, record.event_time, "declarationTime")
        except _Rejected:
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
        in_batch = {_text(r.extra.get("event_id")) for r in batch_events}
        for event_id in missing:
            if event_id in earlier or event_id in in_batch:
                continue  # retracted before (re-delivery), or arriving in this very batch
            record = wanted[event_id][0]
            rejects.append(
                _error(
                    record,
                    "eventID",
                    f"error declaration retracts event {event_id!r}, but no event with that "
                    "eventID has been recorded from this feed",
                )
            )
    return rejects


# --- 6. deferred events -----------------------------------------------------------------------

_DOCUMENT_REFERENCES = """
SELECT message, doc_type, order_no, logistics_no, cop_no, invt_no, pre_no, pay_transaction_id
FROM warehouses_customsdocument
WHERE (cop_no <> '' AND cop_no = ANY(%(cop)s))
   OR (invt_no <> '' AND invt_no = ANY(%(invt)s))
   OR (pre_no <> '' AND pre_no = ANY(%(pre)s))
   OR (pay_transaction_id <> '' AND pay_transaction_id = ANY(%(txn)s))
   OR (doc_type = 'waybill' AND order_no <> '' AND order_no = ANY(%(order)s))
"""

# The conditions repeat the partial indexes' predicates so the planner can use them.
_EVENT_REFERENCES = """
SELECT DISTINCT e.extra->>'message', e.extra->>'cop_no', e.extra->>'invt_no',
       e.extra->>'pre_no', s.tracking_number
FROM shipments_trackingevent e
JOIN shipments_shipment s ON s.id = e.shipment_id
WHERE (e.extra ? 'cop_no' AND e.extra->>'cop_no' = ANY(%(cop)s))
   OR (e.extra ? 'invt_no' AND e.extra->>'invt_no' = ANY(%(invt)s))
"""

_SHIPMENTS_OF_ORDERS = """
SELECT order_number, tracking_number FROM shipments_shipment WHERE order_number = ANY(%s)
"""


def _declaration_of(receipt_message: str) -> str:
    """CEB receipts answer the message numbered one below them (622 answers 621)."""
    digits = receipt_message.removeprefix("CEB")
    return f"CEB{int(digits) - 1}" if digits.isdigit() else ""


class _References:
    """What earlier messages taught us: declaration numbers -> parcels, orders -> parcels."""

    def __init__(self, receipts: Sequence[Record]) -> None:
        wanted: dict[str, set[str]] = defaultdict(set)
        for record in receipts:
            for key in record.extra.get("match_by") or []:  # type: ignore[attr-defined]
                value = _text(record.extra.get(str(key)))
                if value:
                    wanted[str(key)].add(value)
        params = {
            "cop": sorted(wanted["cop_no"]),
            "invt": sorted(wanted["invt_no"]),
            "pre": sorted(wanted["pre_no"]),
            "txn": sorted(wanted["pay_transaction_id"]),
            "order": sorted(wanted["order_no"]),
        }
        # (message, key, value) -> tracking numbers, or -> order numbers
        self.parcels: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.orders_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.by_order: dict[str, set[str]] = defaultdict(set)
        orders = set(params["order"])
        with connection.cursor() as cursor:
            cursor.execute(_DOCUMENT_REFERENCES, params)
            for message, doc_type, order_no, logistics_no, *refs in cursor.fetchall():
                names = ("cop_no", "invt_no", "pre_no", "pay_transaction_id")
                for key, value in zip(names, refs, strict=True):
                    if not value:
                        continue
                    if logistics_no:
                        self.parcels[(message, key, value)].add(tracking_number_clean(logistics_no))
                    if order_no:
                        self.orders_of[(message, key, value)].add(order_no)
                        orders.add(order_no)
                if doc_type == "waybill" and order_no and logistics_no:
                    self.by_order[order_no].add(tracking_number_clean(logistics_no))
            if params["cop"] or params["invt"]:
                cursor.execute(_EVENT_REFERENCES, params)
                for message, cop_no, invt_no, pre_no, tracking in cursor.fetchall():
                    for key, value in (
                        ("cop_no", cop_no),
                        ("invt_no", invt_no),
                        ("pre_no", pre_no),
                    ):
                        if value:
                            self.parcels[(message or "", key, value)].add(tracking)
            if orders:
                cursor.execute(_SHIPMENTS_OF_ORDERS, [sorted(orders)])
                for order_no, tracking in cursor.fetchall():
                    self.by_order[order_no].add(tracking)

    def resolve(self, record: Record) -> tuple[str, list[str]]:
        """(reference used, tracking numbers) of a receipt, or ("", []) when nothing matches."""
        declaration = _declaration_of(_text(record.extra.get("message")))
        for key in record.extra.get("match_by") or []:  # type: ignore[attr-defined]
            key = str(key)
            value = _text(record.extra.get(key))
            if not value:
                continue
            if key == "order_no":
                found = set(self.by_order.get(value, ()))
            else:
                found = set(self.parcels.get((declaration, key, value), ()))
                for order_no in self.orders_of.get((declaration, key, value), ()):
                    found |= self.by_order.get(order_no, set())
            if found:
                return key, sorted(found)
        return "", []


def _unresolved_reason(record: Record) -> str:
    extra = record.extra
    message = _text(extra.get("message")) or "receipt"
    declaration = _declaration_of(message) or "declaration"
    refs = ", ".join(
        f"{_CEB_FIELDS.get(str(k), str(k))} {_text(extra.get(str(k)))!r}"
        for k in extra.get("match_by") or []  # type: ignore[attr-defined]
        if _text(extra.get(str(k)))
    )
    return (
        f"{message} receipt (returnStatus {_text(extra.get('return_status'))}) has no "
        f"logisticsNo, and its references ({refs or 'none'}) match no parcel of an earlier "
        f"{declaration} or order: ingest the declaration first"
    )


def _retracted_reject(record: Record, event_id: str, run_id: int | None) -> RecordError:
    return _error(
        record,
        "eventID",
        f"event {event_id!r} was retracted by an error declaration (run {run_id}); "
        "it is not recorded again",
    )


def _retracted_before(run: FeedRun, records: Iterable[Record]) -> dict[str, int]:
    ids = {_text(r.extra.get("event_id")) for r in records if r.extra.get("event_id")}
    if not ids:
        return {}
    return dict(
        RetractedEvent.objects.filter(
            feed_id=run.feed_id, source_event_id__in=sorted(ids)
        ).values_list("source_event_id", "run_id")
    )


def _events_prepare(
    run: FeedRun,
    records: Sequence[Record],
    ctx: FeedContext,
    events: list[EventInput],
    retracting: dict[str, int],
    retracted: dict[str, int],
) -> list[RecordError]:
    rejects: list[RecordError] = []
    receipts = [r for r in records if not r.tracking_number and not r.unit_id]
    references = _References(receipts) if receipts else None
    for record in records:
        event_id = _text(record.extra.get("event_id"))
        if event_id and event_id in retracting:
            rejects.append(
                _error(
                    record,
                    "eventID",
                    f"event {event_id!r} is retracted by the error declaration on line "
                    f"{retracting[event_id]}",
                )
            )
            continue
        if event_id and event_id in retracted:
            rejects.append(_retracted_reject(record, event_id, retracted[event_id]))
            continue
        candidates: list[Record] = []
        if record.tracking_number or record.unit_id:
            try:
                tracking = _parcel(record, ctx) if record.tracking_number else ""
                unit = _unit_number(record, ctx) if record.unit_id else ""
            except _Rejected as exc:
                rejects.append(_error(record, exc.field, exc.reason))
                continue
            candidates.append(dataclasses.replace(record, tracking_number=tracking, unit_id=unit))
        elif references is not None:
            key, parcels = references.resolve(record)
            if not parcels:
                rejects.append(_error(record, "logisticsNo", _unresolved_reason(record)))
                continue
            for tracking in parcels:
                extra = {**record.extra, "resolved_by": key}
                candidates.append(
                    dataclasses.replace(record, tracking_number=tracking, extra=extra)
                )
        for candidate in candidates:
            result = normalize_event(candidate, ctx)
            if isinstance(result, RecordError):
                rejects.append(result)
            else:
                events.append(result)
    return rejects
