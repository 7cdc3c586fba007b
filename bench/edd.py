"""Delivery-estimate benchmark: known lane distributions in, error and coverage out.

    python bench/edd.py [--train 1200] [--holdout 300] [--seed 7]

1. Creates a scratch database `hub_bench_edd` (dropped first) on the server of DATABASE_URL and
   migrates it.
2. Synthetic history: each lane (origin -> destination x mode) has a lognormal duration per
   stage (first mile, export customs, line haul, import customs, last mile). `--train` parcels
   per lane (fewer on two thin lanes, so the fallback bases get exercised) are recorded through
   the real recorder with delivery in the last 150 days.
3. Runs the scheduled job's statistics refresh (`estimate_stats_refresh`).
4. Hold-out parcels (`--holdout` per lane), drawn from the same distributions, are recorded up to
   the first event of a random stage, within the last hour: the recorder estimates them at that
   moment, exactly as in production; the scheduled re-estimate runs over them too.
5. Compares each estimate with the parcel's true (held-out) delivery time: mean absolute error of
   the range start (p50) in days, share delivered inside [p50, p80], and calibration (share
   delivered by p50 and by p80; ideally 50% and 80%). Also the same with the global statistics
   only, as a baseline, and by basis and stage. Prints figures; never fails on a target.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "hub_bench_edd"
STAGES = ["first_mile", "export_customs", "line_haul", "import_customs", "last_mile"]
# Two events per stage: (code at stage entry, code later in the stage).
STAGE_CODES = {
    "first_mile": ("warehouse_received", "warehouse_dispatched"),
    "export_customs": ("customs_export_submitted", "customs_export_cleared"),
    "line_haul": ("departed", "arrived"),
    "import_customs": ("customs_import_submitted", "customs_import_cleared"),
    "last_mile": ("out_for_delivery", "delivered"),
}
OFFSETS = {"CN": 480, "RU": 180, "KZ": 300, "PL": 60, "US": -420, "BY": 180, "DE": 60}


@dataclass(frozen=True)
class Lane:
    origin: str
    destination: str
    mode: str
    # (median days, sigma) of a lognormal per stage
    stages: tuple[tuple[float, float], ...]
    weight: float = 1.0  # share of --train (thin lanes fall back)


LANES = [
    Lane("CN", "RU", "rail", ((1.5, 0.4), (0.8, 0.5), (9.0, 0.25), (2.0, 0.6), (2.5, 0.4))),
    Lane("CN", "RU", "road", ((1.2, 0.4), (0.6, 0.5), (5.0, 0.3), (1.5, 0.6), (2.5, 0.4))),
    Lane("CN", "RU", "air", ((1.0, 0.4), (0.4, 0.5), (1.5, 0.3), (1.2, 0.6), (2.5, 0.4))),
    Lane("CN", "KZ", "rail", ((1.5, 0.4), (0.8, 0.5), (6.0, 0.25), (1.5, 0.5), (2.0, 0.4))),
    Lane("CN", "PL", "rail", ((1.5, 0.4), (1.0, 0.5), (16.0, 0.2), (2.5, 0.5), (2.0, 0.4))),
    Lane("CN", "US", "air", ((1.0, 0.3), (0.5, 0.4), (2.0, 0.3), (1.0, 0.7), (3.0, 0.4))),
    # Thin lanes: too few deliveries for a lane estimate. KZ -> RU falls back to everything
    # delivered to Russia; CN -> BY (a destination with no history either) to all lanes.
    Lane("KZ", "RU", "road", ((1.0, 0.4), (0.5, 0.5), (4.0, 0.3), (1.5, 0.6), (2.5, 0.4)), 0.01),
    Lane("CN", "BY", "rail", ((1.5, 0.4), (0.8, 0.5), (12.0, 0.25), (2.0, 0.5), (2.0, 0.4)), 0.01),
]


def durations(lane: Lane, rng: random.Random) -> list[float]:
    return [median * math.exp(rng.gauss(0, sigma)) for median, sigma in lane.stages]


def country_at(lane: Lane, stage: str) -> str:
    return lane.destination if stage in ("import_customs", "last_mile") else lane.origin


def events_for(tn: str, lane: Lane, entries: list[datetime], upto: int | None, end: datetime):
    """EventInputs of a parcel; `entries[i]` is when stage i began, `end` the delivery.
    With `upto`, only events through the entry of stage `upto`."""
    from shipments.recording import EventInput

    out = []
    for i, stage in enumerate(STAGES):
        start = entries[i]
        stop = entries[i + 1] if i + 1 < len(STAGES) else end
        first, second = STAGE_CODES[stage]
        country = country_at(lane, stage)
        for code, at in ((first, start), (second, start + (stop - start) * 0.7)):
            if stage == "last_mile" and code == "delivered":
                at = end
            out.append(
                EventInput(
                    line=len(out) + 1,
                    code=code,
                    occurred_at=at,
                    utc_offset_minutes=OFFSETS[country],
                    tz_source="explicit",
                    tracking_number=tn,
                    country=country,
                    location_name=f"{country} {stage}",
                    transport_mode=lane.mode,
                )
            )
            if upto is not None and i == upto:
                return out
    return out


def record(batch) -> None:
    from django.db import transaction

    from shipments.recording import events_record

    with transaction.atomic():
        events_record(events=batch, feed_id=None, run_id=None, warehouse_id=None, source="bench")


def stage_entries(start: datetime, days: list[float]) -> tuple[list[datetime], datetime]:
    """When each stage began, from `start` and the stages' durations; and when the last ended."""
    entries = []
    t = start
    for d in days:
        entries.append(t)
        t += timedelta(days=d)
    return entries, t


def scratch_database() -> None:
    """A fresh, migrated `hub_bench_edd` on DATABASE_URL's server; Django set up on it."""
    admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    url = admin_url.rsplit("/", 1)[0] + f"/{DB}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def train(per_lane: int, rng: random.Random, now: datetime) -> int:
    """Delivered parcels on every lane (thin lanes get their weight's share); returns how many."""
    batch: list = []
    trained = 0
    for li, lane in enumerate(LANES):
        for k in range(max(5, int(per_lane * lane.weight))):
            d = durations(lane, rng)
            end = now - timedelta(days=rng.uniform(1, 150))
            entries, _ = stage_entries(end - timedelta(days=sum(d)), d)
            batch += events_for(f"T{li}X{k:06d}", lane, entries, None, end)
            trained += 1
            if len(batch) >= 5000:
                record(batch)
                batch = []
    if batch:
        record(batch)
    return trained


def hold_out(per_lane: int, rng: random.Random, now: datetime) -> tuple[dict, float]:
    """Open parcels up to a random stage's entry, recorded (so estimated inline by the recorder).

    Returns {tracking number: (true delivery, stage, lane)} and the seconds recording took."""
    from shipments.models import Shipment

    truth: dict[str, tuple[datetime, str, Lane]] = {}
    registrations = []
    batch = []
    for li, lane in enumerate(LANES):
        for k in range(per_lane):
            d = durations(lane, rng)
            stage_index = rng.randrange(len(STAGES))
            entered = now - timedelta(minutes=rng.uniform(1, 60))
            entries, end = stage_entries(entered - timedelta(days=sum(d[:stage_index])), d)
            tn = f"H{li}X{k:06d}"
            truth[tn] = (end, STAGES[stage_index], lane)
            # The shop registered the destination; feeds report the rest.
            registrations.append(Shipment(tracking_number=tn, destination_country=lane.destination))
            batch += events_for(tn, lane, entries, stage_index, end)
    Shipment.objects.bulk_create(registrations, batch_size=2000)
    started = time.monotonic()
    for i in range(0, len(batch), 5000):
        record(batch[i : i + 5000])
    return truth, time.monotonic() - started


def summarise(pairs):
    """pairs: (true delivery, earliest, latest) -> (n, MAE days, inside, by p50, by p80)."""
    if not pairs:
        return (0, float("nan"), float("nan"), float("nan"), float("nan"))
    errors = [abs((t - a).total_seconds()) / 86400 for t, a, _ in pairs]
    inside = sum(a <= t <= b for t, a, b in pairs) / len(pairs)
    by50 = sum(t <= a for t, a, _ in pairs) / len(pairs)
    by80 = sum(t <= b for t, _, b in pairs) / len(pairs)
    return (len(pairs), statistics.fmean(errors), inside, by50, by80)


def line(label, s):
    n, mae, inside, by50, by80 = s
    return (
        f"{label:<28} n={n:>5}  MAE {mae:5.2f} d  inside [p50,p80] {inside:6.1%}  "
        f"by p50 {by50:6.1%}  by p80 {by80:6.1%}"
    )


def compare(truth: dict):
    """Each hold-out parcel's estimate, and the global-only baseline, against its true delivery.

    Returns (model pairs, baseline pairs, pairs by basis, pairs by stage, parcels without one)."""
    from shipments.models import DeliveryEstimateStat, ShipmentEstimate

    global_stats = {s.stage: s for s in DeliveryEstimateStat.objects.filter(basis="global")}
    ests = {
        e.shipment.tracking_number: e
        for e in ShipmentEstimate.objects.select_related("shipment").filter(
            shipment__tracking_number__in=list(truth)
        )
    }
    model: list = []
    baseline: list = []
    by_basis: dict[str, list] = defaultdict(list)
    by_stage: dict[str, list] = defaultdict(list)
    missing = 0
    for tn, (end, stage, _lane) in truth.items():
        est = ests.get(tn)
        if est is None or est.earliest is None or est.latest is None:
            missing += 1
            continue
        pair = (end, est.earliest, est.latest)
        model.append(pair)
        by_basis[est.basis].append(pair)
        by_stage[stage].append(pair)
        g = global_stats[stage]
        anchor = est.stage_entered_at
        baseline.append(
            (end, anchor + timedelta(hours=g.p50_hours), anchor + timedelta(hours=g.p80_hours))
        )
    return model, baseline, by_basis, by_stage, missing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=1200, help="delivered parcels per lane")
    parser.add_argument("--holdout", type=int, default=300, help="open parcels per lane")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    scratch_database()
    from django.conf import settings

    from shipments.models import DeliveryEstimateStat
    from shipments.recording import estimates

    now = datetime.now(UTC)

    started = time.monotonic()
    trained = train(args.train, rng, now)
    load_s = time.monotonic() - started

    started = time.monotonic()
    rows = estimates.estimate_stats_refresh()
    stats_s = time.monotonic() - started

    truth, holdout_s = hold_out(args.holdout, rng, now)
    started = time.monotonic()
    estimates.estimates_refresh()
    refresh_s = time.monotonic() - started

    model, baseline, by_basis, by_stage, missing = compare(truth)

    # Learned vs true quantiles for one lane and stage (Monte Carlo of the known distribution).
    lane = LANES[0]
    sims = sorted(sum(durations(lane, rng)[2:]) for _ in range(200_000))
    true_p50, true_p80 = sims[len(sims) // 2] * 24, sims[int(len(sims) * 0.8)] * 24
    learned = DeliveryEstimateStat.objects.get(
        basis="lane",
        origin_country="CN",
        destination_country="RU",
        transport_mode="rail",
        stage="line_haul",
    )

    print(
        f"history: {trained:,} delivered parcels on {len(LANES)} lanes "
        f"(2 thin), recorded in {load_s:.1f} s; statistics refresh {stats_s * 1000:.0f} ms "
        f"({rows} rows; min samples {settings.ESTIMATE_MIN_SAMPLES})"
    )
    print(
        f"hold-out: {len(truth):,} open parcels recorded (estimated inline) in {holdout_s:.1f} s; "
        f"scheduled re-estimate {refresh_s * 1000:.0f} ms; without estimate: {missing}"
    )
    print(
        f"CN->RU rail from line haul: true p50 {true_p50 / 24:.2f} d / p80 {true_p80 / 24:.2f} d, "
        f"learned p50 {learned.p50_hours / 24:.2f} d / p80 {learned.p80_hours / 24:.2f} d "
        f"({learned.samples} samples)"
    )
    print(line("estimates (lane fallback)", summarise(model)))
    print(line("baseline: global only", summarise(baseline)))
    for basis in ("lane", "destination", "global"):
        print(line(f"  basis {basis}", summarise(by_basis.get(basis, []))))
    for stage in STAGES:
        print(line(f"  from {stage}", summarise(by_stage.get(stage, []))))


if __name__ == "__main__":
    main()
