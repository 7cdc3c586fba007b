"""A realistic history for the demo hub: N days of the demo lanes, ingested as runs of its feeds.

1. `history_rows`: orders per day per lane (weekday rhythm, a slow growth, noise), each turned
   into the rows its feeds report (`lanes`), with late reports; nothing after `until` is sent.
2. `history_ingest`: the rows cut into one file per feed (per CEB message) per day, in the
   feed's own format (`payloads`), each created and executed as a run through the normal
   services (`feed_run_create` + `feed_run_execute`, in-process); the runs and the shipments are
   then dated when their files arrived and their first events happened, so the admin and the
   dashboard's daily charts show the history as it would have come in.

Deterministic: the same seed, days, volume and `until` give the same payloads, so running it
again makes `duplicate` runs and no events. docs/demo-history.md says what it generates.
"""

from __future__ import annotations

import io
import logging
import math
import multiprocessing
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, connections, transaction

from warehouses.demo import lanes
from warehouses.demo.lanes import Parcel, Row, Train
from warehouses.demo.payloads import CEB_MESSAGES, render
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun

logger = logging.getLogger(__name__)

NAME_PREFIX = "history-"
# Share of the daily orders per lane, and how its numbers look.
LANES: tuple[tuple[str, float, str, str], ...] = (
    ("heihe", 0.40, "HHE", "CN"),
    ("harbin", 0.25, "HRA", "US"),
    ("suifenhe", 0.35, "SFH", "CN"),
)
# Within a day, files are ingested in the order their senders usually deliver them.
_FILE_ORDER = (
    ("heihe-customs", "order"), ("heihe-customs", "payment"), ("heihe-customs", "waybill"),
    ("suifenhe-customs", "order"), ("suifenhe-customs", "payment"),
    ("suifenhe-customs", "waybill"), ("heihe-inbox", ""), ("harbin-air-json", ""),
    ("suifenhe-wms", ""), ("heihe-customs", "inventory"), ("suifenhe-customs", "inventory"),
    ("heihe-customs", "receipt"), ("suifenhe-customs", "receipt"), ("suifenhe-manifest", ""),
    ("blagoveshchensk-json", ""), ("duisburg-json", ""), ("la-upload", ""),
)  # fmt: skip
_WEEKDAY = (1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.6)  # Monday .. Sunday
BAD_FILE_SHARE = 0.15
# A file per feed per day for the last RECENT_DAYS, one per OLDER_FILE_DAYS before: each run
# costs a fixed ~0.1 s, and a demo's old history need not be as fine-grained as today's.
RECENT_DAYS = 3
OLDER_FILE_DAYS = 7
# Orders before the period still in flight when it begins (the train's p90 is about 20 days).
WARMUP_DAYS = 21
# Each lane's feeds speak only of its own parcels, orders, documents and containers (lanes.py):
# no two lanes share anything. Loaded side by side, each lane's files in their order, they give
# what one load in order gives (history_ingest_parallel).
FEED_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"suifenhe-customs", "suifenhe-wms", "suifenhe-manifest", "duisburg-json"}),
    frozenset({"heihe-customs", "heihe-inbox", "blagoveshchensk-json"}),
    frozenset({"harbin-air-json", "la-upload"}),
)


def file_day(day: int, days: int) -> int:
    """The last day of the file that carries the rows reported on `day` (0 = the first)."""
    old = days - RECENT_DAYS
    if day >= old:
        return day
    return min(day + (old - 1 - day) % OLDER_FILE_DAYS, old - 1)


@dataclass
class HistoryResult:
    parcels: int = 0
    rows: int = 0
    runs: int = 0
    duplicates: int = 0
    events: int = 0
    rejected: int = 0
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def orders_per_day(rng: random.Random, per_day: int, day: datetime, index: int, days: int) -> int:
    """The day's orders: weekday rhythm, growth from 85 % to 115 % over the period, ±20 %."""
    trend = 0.85 + 0.3 * index / max(days - 1, 1)
    noise = rng.uniform(0.8, 1.2)
    return max(1, round(per_day * _WEEKDAY[day.weekday()] * trend * noise))


def history_rows(*, days: int, per_day: int, seed: int, until: datetime) -> tuple[int, list[Row]]:
    """(parcels, rows) of `days` days of orders ending at `until`; rows reported by `until`.

    Orders of the WARMUP_DAYS before the period that are still on their way when it begins come
    too, with their whole timeline (their early lines reach the hub in the first file, as a
    backlog): without them the period's first weeks would see only the fast lanes deliver.
    """
    rng = random.Random(seed)
    start = until - timedelta(days=days)
    trains: dict[datetime, Train] = {}
    parcels: list[Parcel] = []
    for index in range(-WARMUP_DAYS, days):
        day = start + timedelta(days=index)
        count = orders_per_day(rng, per_day, day, max(index, 0), days)
        for number in range(count):
            name, _, prefix, suffix = _lane_pick(rng)
            opened = day + timedelta(hours=rng.uniform(0.0, 24.0))
            serial = f"{seed % 10}{index + WARMUP_DAYS:03d}{number:05d}"
            parcel = Parcel(rng, f"{prefix}{serial}{suffix}", f"LJ{serial}{name[0].upper()}")
            _lane_run(name, parcel, opened, trains)
            if opened < until and (index >= 0 or parcel.rows[-1].at >= start):
                parcels.append(parcel)
    rows = [row for parcel in parcels for row in parcel.rows]
    rows += [row for train in trains.values() if train.unloaded >= start for row in train.rows]
    return len(parcels), [row for row in rows if row.reported <= until]


def _lane_pick(rng: random.Random) -> tuple[str, float, str, str]:
    pick = rng.random()
    for lane in LANES:
        if pick < lane[1]:
            return lane
        pick -= lane[1]
    return LANES[-1]


def _lane_run(name: str, parcel: Parcel, opened: datetime, trains: dict[datetime, Train]) -> None:
    if name == "heihe":
        lanes.heihe_moscow(parcel, opened)
    elif name == "harbin":
        lanes.harbin_los_angeles(parcel, opened)
    else:
        lanes.suifenhe_europe(parcel, opened, trains)


@dataclass(frozen=True, slots=True)
class HistoryFile:
    feed: str
    kind: str  # the CEB record kind, "" for the other formats
    name: str
    arrived: datetime
    content: bytes


def history_files(rows: list[Row], *, days: int, seed: int, until: datetime) -> list[HistoryFile]:
    """One file per feed (and CEB message) per day, in arrival order; a few carry a bad row."""
    rng = random.Random(seed + 1)
    start = until - timedelta(days=days)
    buckets: dict[tuple[int, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        day = min(max(math.floor((row.reported - start) / timedelta(days=1)), 0), days - 1)
        day = file_day(day, days)
        kind = row.kind if row.kind in CEB_MESSAGES else ""
        buckets[(day, row.feed, kind)].append(row)
    files = []
    for day in range(days):
        arrived = min(start + timedelta(days=day + 1), until)
        for feed, kind in _FILE_ORDER:
            chosen = buckets.get((day, feed, kind))
            if not chosen:
                continue
            chosen.sort(key=lambda r: (r.reported, r.fields.get("tracking_number", "")))
            bad = rng.random() < BAD_FILE_SHARE
            extension, content = render(feed, kind, chosen, bad)
            label = f"-{kind}" if kind else ""
            name = f"{NAME_PREFIX}{feed}{label}-{arrived:%Y%m%d}.{extension}"
            files.append(HistoryFile(feed, kind, name, arrived, content))
    return files


_SOURCES: dict[str, str] = {
    Feed.Transport.DIRECTORY: FeedRun.Source.DIRECTORY,
    Feed.Transport.PUSH: FeedRun.Source.PUSH,
}

# A run, dated when its file arrived: it took as long as it really took.
_RUN_DATE_SQL = """
UPDATE warehouses_feedrun SET created_at = %(at)s,
    started_at = %(at)s + coalesce(started_at - created_at, interval '0'),
    finished_at = %(at)s + coalesce(finished_at - created_at, interval '0')
WHERE id = %(id)s
"""
# Shipments the history created were opened when their first event happened.
_SHIPMENT_DATE_SQL = """
UPDATE shipments_shipment s SET created_at = f.first
FROM (SELECT e.shipment_id, min(e.occurred_at) AS first FROM shipments_trackingevent e
      WHERE e.run_id = ANY(%s) AND e.shipment_id IS NOT NULL GROUP BY 1) f
WHERE s.id = f.shipment_id AND s.created_at > f.first
"""


def history_ingest(
    files: list[HistoryFile], progress: Callable[[str], None] | None = None
) -> HistoryResult:
    """Create and execute a run per file, in order, through the normal ingest services."""
    feeds = {feed.code: feed for feed in Feed.objects.filter(code__in={f.feed for f in files})}
    missing = sorted({f.feed for f in files} - set(feeds))
    if missing:
        raise LookupError(f"feeds {', '.join(missing)} do not exist: run demo_seed first")
    result = HistoryResult()
    run_ids: list[int] = []
    clock = time.monotonic()
    with connection.cursor() as cursor:
        # Hundreds of small commits: not waiting for each one's WAL flush makes the load several
        # times faster on a busy disk, and a crash can only lose the last few, never corrupt.
        cursor.execute("SET synchronous_commit TO off")
    for number, item in enumerate(files, 1):
        feed = feeds[item.feed]
        run = feed_run_create(
            feed=feed,
            content=io.BytesIO(item.content),
            original_name=item.name,
            source=_SOURCES.get(feed.transport, FeedRun.Source.UPLOAD),
            enqueue=False,
        )
        if run.status != FeedRun.Status.DUPLICATE:
            run = feed_run_execute(run_id=run.pk)
            run_ids.append(run.pk)
        _tally(result, run)
        with connection.cursor() as cursor:
            cursor.execute(_RUN_DATE_SQL, {"at": item.arrived, "id": run.pk})
        if progress is not None and number % 100 == 0:
            progress(f"{number}/{len(files)} files, {result.events} events")
    with transaction.atomic(), connection.cursor() as cursor:
        if run_ids:
            cursor.execute(_SHIPMENT_DATE_SQL, [run_ids])
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    result.seconds = time.monotonic() - clock
    return result


def _ingest_group(files: list[HistoryFile]) -> HistoryResult:
    """One group's load, in a forked process with a connection of its own."""
    try:
        result = history_ingest(files)
        result.by_status = dict(result.by_status)  # a defaultdict's factory does not pickle
        return result
    finally:
        connections.close_all()


def history_ingest_parallel(
    files: list[HistoryFile],
    jobs: int,
    progress: Callable[[str], None] | None = None,
) -> HistoryResult:
    """`history_ingest` of FEED_GROUPS in up to `jobs` processes at once; 1 = in this process.

    Every process commits its own runs, so the caller must not be inside a transaction (tests
    under one load with jobs=1). Run ids interleave between the groups; each run is still
    dated when its file arrived.
    """
    groups = [[f for f in files if f.feed in group] for group in FEED_GROUPS]
    groups.append([f for f in files if not any(f.feed in group for group in FEED_GROUPS)])
    groups = [group for group in groups if group]
    if jobs <= 1 or len(groups) <= 1:
        return history_ingest(files, progress)
    if connection.in_atomic_block:
        raise RuntimeError("a parallel history load commits in other processes: not inside one")
    clock = time.monotonic()
    # A forked child must not share this process's connection: each opens its own.
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(min(jobs, len(groups))) as pool:
        parts = pool.map(_ingest_group, groups)
    result = HistoryResult()
    for part in parts:
        for name in ("runs", "duplicates", "events", "rejected"):
            setattr(result, name, getattr(result, name) + getattr(part, name))
        for status, count in part.by_status.items():
            result.by_status[status] += count
    result.seconds = time.monotonic() - clock
    if progress is not None:
        progress(f"{len(files)}/{len(files)} files, {result.events} events ({len(parts)} jobs)")
    return result


def _tally(result: HistoryResult, run: FeedRun) -> None:
    result.runs += 1
    result.by_status[run.status] += 1
    if run.status == FeedRun.Status.DUPLICATE:
        result.duplicates += 1
        return
    result.events += run.events_created
    result.rejected += run.rejected


def history_present() -> bool:
    """Whether a history was loaded before (its runs are named NAME_PREFIX...)."""
    return FeedRun.objects.filter(original_name__startswith=NAME_PREFIX).exists()


def history_load(
    *,
    days: int,
    per_day: int,
    seed: int,
    until: datetime,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> HistoryResult:
    parcels, rows = history_rows(days=days, per_day=per_day, seed=seed, until=until)
    files = history_files(rows, days=days, seed=seed, until=until)
    result = history_ingest_parallel(files, jobs, progress)
    result.parcels, result.rows = parcels, len(rows)
    return result
