"""The shipment list's cursor: a walk that misses nothing while shipments change
(docs/api-sync.md).

Every write to a shipment stamps it with the writing transaction's id (`change_xid`, a
trigger). A walk has two phases:

1. The rows as they were when the walk began: those stamped below `start`, the oldest
   transaction running in the database at the first page (all older ones have ended, so every
   such row is committed, and any later write stamps at least `start`). Ordered by
   (updated_at, id) in the order asked for; a row that changes leaves this set instead of
   moving inside it, so no unreached row slips behind the cursor.
2. Then every row stamped `start` or later, in stamp order (change_xid, id), handed out only
   below the oldest transaction running now: a transaction that took its id earlier but
   commits later than one a reader already saw is waited for, never skipped.

A walk therefore sees every shipment that existed when it began and every later change at
least once (a shipment changed after it was seen comes again). At the end, `next_cursor` is
null and `resume_cursor` continues with what changes later.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from config.replica import read_alias, reads_from_primary
from shipments.api.errors import APIError
from shipments.models import Shipment

# Below the returned id, every transaction that could write this database's rows has ended:
# the oldest one running here (transactions in other databases of the server cannot write
# them, so they do not hold a walk back), or the next id to be assigned. pg_stat_activity
# shows 32-bit ids: each is widened to 64 bits below the snapshot's xmax, which is ahead of it.
# The reader's own transaction is left out: what it wrote, it sees (the snapshot's xmax can
# be its own id when no later one has ended yet).
_SAFE_POINT = """
WITH s AS (
    SELECT GREATEST(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        pg_current_xact_id_if_assigned()::text::bigint + 1
    ) AS xmax
),
running AS (
    SELECT backend_xid AS x FROM pg_stat_activity
    WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    UNION ALL
    SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()
)
SELECT LEAST(
    s.xmax,
    min(s.xmax - ((s.xmax %% 4294967296 - running.x::text::bigint + 4294967296) %% 4294967296))
)
FROM s LEFT JOIN running ON true
GROUP BY s.xmax
"""
# On a streaming replica pg_stat_activity lists none of the primary's transactions; the
# snapshot's xmin is the oldest one still running there as far as the replica has replayed
# (of every database of the cluster: more cautious than the primary's query, as safe).
_SAFE_POINT_REPLICA = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


@dataclass(frozen=True, slots=True)
class Cursor:
    start: int
    descending: bool
    # Phase 1: the last row's (updated_at, id); phase 2 (at None): its (change_xid, id).
    at: datetime | None
    xid: int
    pk: int

    def encode(self) -> str:
        at = self.at.isoformat() if self.at else ""
        text = f"2|{self.start}|{'d' if self.descending else 'a'}|{at}|{self.xid}|{self.pk}"
        return base64.urlsafe_b64encode(text.encode()).decode()


def _invalid() -> APIError:
    return APIError(status_code=400, code="invalid_cursor", message="The cursor is not valid.")


def cursor_decode(text: str, *, descending: bool, safe: int) -> Cursor:
    try:
        parts = base64.urlsafe_b64decode(text.encode()).decode().split("|")
        if len(parts) == 2:
            # A cursor handed out before walks had phases ("updated_at|id"): it goes on in the
            # rows as they are now.
            legacy = parse_datetime(parts[0])
            if legacy is None:
                raise ValueError(parts[0])
            return Cursor(safe, descending, legacy, -1, int(parts[1]))
        version, start, order, at_text, xid, pk = parts
        if version != "2" or order not in ("a", "d"):
            raise ValueError(text)
        at = parse_datetime(at_text) if at_text else None
        if at_text and at is None:
            raise ValueError(at_text)
        return Cursor(int(start), order == "d", at, int(xid), int(pk))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid() from exc


def _safe_point(db: str) -> int:
    """Run before the rows' query: its later snapshot sees every transaction this one found
    ended."""
    connection = connections[db]
    with connection.cursor() as cursor:
        if db != DEFAULT_DB_ALIAS:
            cursor.execute(_SAFE_POINT_REPLICA, ())
            return int(cursor.fetchone()[0])
        if connection.in_atomic_block:
            # pg_stat_activity is read once per transaction unless told (a test's transaction;
            # an API request runs in autocommit).
            cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_SAFE_POINT, ())
        return int(cursor.fetchone()[0])


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Shipment]
    next_cursor: str | None
    resume_cursor: str


def _snapshot_rows(qs: QuerySet[Shipment], cursor: Cursor, limit: int) -> list[Shipment]:
    qs = qs.filter(change_xid__lt=cursor.start)
    if cursor.at is not None:
        if cursor.descending:
            qs = qs.filter(Q(updated_at__lt=cursor.at) | Q(updated_at=cursor.at, id__lt=cursor.pk))
        else:
            qs = qs.filter(Q(updated_at__gt=cursor.at) | Q(updated_at=cursor.at, id__gt=cursor.pk))
    order = ("-updated_at", "-id") if cursor.descending else ("updated_at", "id")
    return list(qs.order_by(*order)[:limit])


def _change_rows(qs: QuerySet[Shipment], cursor: Cursor, safe: int, limit: int) -> list[Shipment]:
    qs = qs.filter(change_xid__lt=safe).filter(
        Q(change_xid__gt=cursor.xid) | Q(change_xid=cursor.xid, id__gt=cursor.pk)
    )
    return list(qs.order_by("change_xid", "id")[:limit])


def page(qs: QuerySet[Shipment], *, ordering: str, size: int, cursor: str | None) -> Page:
    descending = ordering.startswith("-")
    db = read_alias()
    # Taken before any row is read (see _safe_point), once: it also bounds this page's phase 2.
    safe = _safe_point(db)
    if cursor:
        at = cursor_decode(cursor, descending=descending, safe=safe)
    else:
        # Phase 1 before its first row.
        at = Cursor(safe, descending, None, -1, 0)
    if db != DEFAULT_DB_ALIAS and (at.start > safe or at.xid >= safe):
        # An earlier page was read on the primary, further than this replica has replayed:
        # here phase 1 would miss rows committed below `start` that have not reached the
        # replica yet, and phase 2 would stop short. The primary goes on with the walk.
        with reads_from_primary():
            return page(qs, ordering=ordering, size=size, cursor=cursor)
    rows: list[Shipment] = []
    if at.xid < 0:
        rows = _snapshot_rows(qs, at, size + 1)
        if len(rows) > size:
            rows = rows[:size]
            at = Cursor(at.start, at.descending, rows[-1].updated_at, -1, rows[-1].pk)
            return Page(rows, at.encode(), at.encode())
        # The snapshot is done: the changes since the walk began follow in the same page.
        at = Cursor(at.start, at.descending, None, at.start, 0)
    room = size - len(rows)
    changes = _change_rows(qs, at, safe, room + 1)
    if changes[:room]:
        last = changes[:room][-1]
        at = Cursor(at.start, at.descending, None, last.change_xid, last.pk)
    more = len(changes) > room
    return Page(rows + changes[:room], at.encode() if more else None, at.encode())
