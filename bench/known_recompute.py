"""Recording new events of known shipments: their recompute reading only their months, against
the same recompute with their bounds unknown (every month).

    python bench/known_recompute.py [--db hub_bench_scale_1m] [--shipments 2000] [--batch 500]
                                    [--rounds 6]

The recorder recomputes each known shipment a batch names from all its events
(shipments/recording/status_rules.py), reading them within the shipment's stored span widened
by the span of the batch's new events for it (shipments/event_bounds.py): the months that hold
them, not every month of the partitioned events table. On a database that bench/scale.py grew
and kept (e.g. `BENCH_DB_NAME=hub_bench_scale_1m python bench/scale.py --sizes 1M`: 24 months
of shipments of ten events each), this records for N random stored shipments a late
`delivered` event a day after each one's last, in batches, inside a transaction that is rolled
back, twice per round:
- bounded: the shipments as stored;
- unbounded: the same after setting their `first_event_at`/`last_event_at` to NULL (unknown),
  so the recompute probes every month's index, as it did before it used the bounds.
Each round takes other random shipments and alternates which pass goes first.
Prints each pass's seconds and the index scans of the event partitions per batch (this
transaction's pg_stat_xact_user_tables), then the ratio of the best times. Prints figures only.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import database_url  # noqa: E402
from bench.scale import BASE_ID, setup_django, stored_shipments  # noqa: E402

PARTITION_SCANS = (
    "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname LIKE 'shipments_trackingevent_p%%'"
)


def one_pass(ids: list[int], batch: int, *, unbounded: bool) -> tuple[float, float]:
    """Seconds to record the events, and partition index scans per batch; rolled back."""
    from django.db import connection, transaction

    from shipments.recording import EventInput, events_record

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT tracking_number, last_event_at FROM shipments_shipment"
            " WHERE id = ANY(%s) ORDER BY id",
            [ids],
        )
        late = [
            EventInput(
                line=n,
                code="delivered",
                occurred_at=last + timedelta(days=1),
                utc_offset_minutes=180,
                tz_source="explicit",
                tracking_number=number,
                location_code="RUMOW",
            )
            for n, (number, last) in enumerate(cursor.fetchall(), 1)
        ]
        # Both passes update the rows first (the bounded one to what they hold), so both find
        # them equally fresh and already locked by this transaction.
        keep = "CASE WHEN %(unbounded)s THEN NULL ELSE {0} END"
        cursor.execute(
            f"UPDATE shipments_shipment SET first_event_at = {keep.format('first_event_at')},"
            f" last_event_at = {keep.format('last_event_at')} WHERE id = ANY(%(ids)s)",
            {"unbounded": unbounded, "ids": ids},
        )
        cursor.execute(PARTITION_SCANS)
        (before,) = cursor.fetchone()
        started = time.perf_counter()
        for at in range(0, len(late), batch):
            events_record(
                events=late[at : at + batch],
                feed_id=None,
                run_id=None,
                warehouse_id=None,
                source="bench-known-recompute",
            )
        took = time.perf_counter() - started
        cursor.execute(PARTITION_SCANS)
        (after,) = cursor.fetchone()
        transaction.set_rollback(True)
    batches = -(-len(late) // batch)
    return took, (after - before) / batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="hub_bench_scale_1m")
    parser.add_argument("--shipments", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    url = database_url(args.db)
    stored = stored_shipments(url)
    if stored < args.shipments:
        sys.exit(f"{args.db} holds {stored:,} stored shipments; grow it with bench/scale.py")
    setup_django(url)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'shipments_trackingevent'::regclass"
        )
        (months,) = cursor.fetchone()
    print(f"{args.db}: {stored * 10:,} stored events in {months} monthly partitions")
    rng = random.Random(16)
    best = {"bounded": float("inf"), "unbounded": float("inf")}
    for n in range(args.rounds):
        ids = sorted(BASE_ID + rng.randint(1, stored) for _ in range(args.shipments))
        # Alternating which goes first, so neither always finds the pages the other warmed.
        for mode in ("bounded", "unbounded")[:: 1 if n % 2 else -1]:
            took, scans = one_pass(ids, args.batch, unbounded=mode == "unbounded")
            best[mode] = min(best[mode], took)
            print(
                f"round {n + 1} {mode:9}: {args.shipments:,} events in {took:6.2f} s"
                f" ({args.shipments / took:7,.0f}/s), {scans:8,.0f} partition index scans a batch"
            )
    print(
        f"best: bounded {best['bounded']:.2f} s, unbounded {best['unbounded']:.2f} s;"
        f" bounded takes {best['bounded'] / best['unbounded']:.2f} x the unbounded time"
    )


if __name__ == "__main__":
    main()
