"""Monthly range partitions of the events table (`shipments_trackingevent`) by `occurred_at`.

Why monthly: at 10^8 events and a few million a day a month holds a few million rows, so its
indexes stay small enough to live in memory while it is the month being written, a year is 12
partitions (planning over them stays cheap for the reads that cannot prune, see
docs/scaling.md), and retention drops a whole month at once (`DETACH`/`DROP`) instead of
deleting rows. Partitions are named `shipments_trackingevent_pYYYY_MM` and cover
[first of the month, first of the next) in UTC. A DEFAULT partition
(`shipments_trackingevent_default`) takes times no monthly partition covers: far past or far
future reports, which are rare and must never fail an ingest.

`partitions_ensure` (the `shipments.tasks.maintain_event_partitions` beat task, and the
migration that partitioned the table) creates the months ahead; it is idempotent and touches
only the catalogue and the DEFAULT partition, never the monthly ones. PostgreSQL refuses to
create a partition whose range holds rows of the DEFAULT partition, so `partition_create` moves
those rows into the new partition in the same transaction.

For retention: `partitions_list` gives every partition with its range.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from psycopg import errors as psycopg_errors
from psycopg import sql

logger = logging.getLogger(__name__)

EVENTS_TABLE = "shipments_trackingevent"
DEFAULT_PARTITION = f"{EVENTS_TABLE}_default"
# Months created ahead of the current one: a missed beat or three leaves the ingest on its
# monthly partitions, never on the DEFAULT one.
MONTHS_AHEAD = 3
# Waiting longer than this for the table's lock (a long ingest batch or report holds it) gives
# up; the next run (daily, or the next deploy) tries again, months ahead of need.
LOCK_TIMEOUT = "10s"


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of the events table; `start` and `end` are None for the DEFAULT one."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


_PARTITION_NAMED = re.compile(rf'"{EVENTS_TABLE}_(?:p\d{{4}}_\d{{2}}|default)"')


def partition_names_hidden(message: str) -> str:
    """A database message that names an events partition ("new row for relation
    "shipments_trackingevent_p2026_05" violates ...") names the events table instead: an
    operator's reason reads the same whichever month the row fell in."""
    return _PARTITION_NAMED.sub(f'"{EVENTS_TABLE}"', message)


def partition_name(month: date) -> str:
    return f"{EVENTS_TABLE}_p{month:%Y_%m}"


def month_start(at: date | datetime) -> date:
    return date(at.year, at.month, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every first of the month from `first`'s month to `last`'s, both included."""
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _utc(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def is_partitioned(table: str = EVENTS_TABLE) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
            [table],
        )
        return bool(cursor.fetchone()[0])


# The bounds are read back by PostgreSQL itself (the text of a bound is a timestamptz literal in
# the session's own style), so no date format is parsed here.
_LIST = r"""
SELECT c.relname,
       (regexp_match(b.bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
       (regexp_match(b.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
WHERE i.inhparent = to_regclass(%s)
ORDER BY 2 NULLS LAST, 1
"""


def partitions_list(table: str = EVENTS_TABLE) -> list[Partition]:
    """Every partition of the events table, by start (the DEFAULT one last).

    Retention detaches or drops a month with `ALTER TABLE shipments_trackingevent DETACH
    PARTITION <name>` / `DROP TABLE <name>`; a month it drops is not created again by
    `partitions_ensure` unless it is ahead of today (late reports for it go to DEFAULT).
    """
    with connection.cursor() as cursor:
        cursor.execute(_LIST, [table])
        return [Partition(name, start, end) for name, start, end in cursor.fetchall()]


def partitions_ensure(
    *, today: date | None = None, months_ahead: int = MONTHS_AHEAD, since: date | None = None
) -> list[str]:
    """Create the DEFAULT partition and the monthly ones from `since` (default: this month) to
    `months_ahead` months after this one; the names of the partitions created.

    Idempotent: a month already covered is left alone. Rows DEFAULT holds for a month it
    creates (reports that came before their month's partition) move into it. A month whose
    lock is not granted within LOCK_TIMEOUT is left for the next run (logged, not raised).
    """
    if not is_partitioned():
        return []
    today = today or datetime.now(UTC).date()
    first = month_start(since or today)
    last = month_start(today)
    for _ in range(months_ahead):
        last = _next_month(last)
    created = []
    if _default_create():
        created.append(DEFAULT_PARTITION)
    for month in months_between(first, last):
        try:
            if partition_create(month):
                created.append(partition_name(month))
        except OperationalError as exc:
            # Busy table: a deploy's migrate must not fail on it; the daily task tries again.
            if not isinstance(exc.__cause__, psycopg_errors.LockNotAvailable):
                raise
            logger.warning("partition %s not created: %s", partition_name(month), exc)
    return created


def _default_create() -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NULL", [DEFAULT_PARTITION])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT")
            .format(sql.Identifier(DEFAULT_PARTITION), sql.Identifier(EVENTS_TABLE))
            .as_string(connection.connection)
        )
        return True


def partition_create(month: date) -> bool:
    """Create the partition of `month` unless a partition covers any of it; moves the month's
    rows out of DEFAULT first (in the same transaction). True when it created one."""
    month = month_start(month)
    start, end = _utc(month), _utc(_next_month(month))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if _overlapping(start, end):
            return False
        # Writes wait from here to the commit, so no row can reach DEFAULT in the month between
        # the move and the CREATE (which would then fail). Reads go on until the CREATE.
        cursor.execute(f"LOCK TABLE {EVENTS_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        if _overlapping(start, end):  # created meanwhile by another maintainer
            return False
        moving = _default_rows_set_aside(cursor, start, end)
        cursor.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
            .format(
                sql.Identifier(partition_name(month)),
                sql.Identifier(EVENTS_TABLE),
                sql.Literal(start),
                sql.Literal(end),
            )
            .as_string(connection.connection)
        )
        if moving:
            cursor.execute(f"INSERT INTO {EVENTS_TABLE} SELECT * FROM hub_partition_moving")
            cursor.execute("DROP TABLE hub_partition_moving")
    return True


def _overlapping(start: datetime, end: datetime) -> bool:
    return any(
        p.start is not None and p.end is not None and p.start < end and start < p.end
        for p in partitions_list()
    )


def _default_rows_set_aside(cursor: CursorWrapper, start: datetime, end: datetime) -> int:
    """Move DEFAULT's rows in [start, end) to a temporary table; how many. The new partition
    takes them back through the parent table, indexes and checks included."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
    if not cursor.fetchone()[0]:
        return 0
    # LIKE the parent: the same columns in the same order as DEFAULT (a partition of it).
    cursor.execute(f"CREATE TEMP TABLE hub_partition_moving (LIKE {EVENTS_TABLE}) ON COMMIT DROP")
    cursor.execute(
        f"WITH gone AS (DELETE FROM {DEFAULT_PARTITION}"
        "  WHERE occurred_at >= %s AND occurred_at < %s RETURNING *)"
        " INSERT INTO hub_partition_moving SELECT * FROM gone",
        [start, end],
    )
    moved = int(cursor.rowcount)
    if not moved:
        cursor.execute("DROP TABLE hub_partition_moving")
    return moved
