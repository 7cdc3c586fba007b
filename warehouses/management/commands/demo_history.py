"""Load N days of realistic traffic on the demo lanes through the real pipeline."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from warehouses.demo.history import history_load, history_present


class Command(BaseCommand):
    help = (
        "Generate --days of demo traffic (orders, customs documents, containers, late and bad "
        "rows) and ingest it as runs of the demo feeds (docs/demo-history.md). Run demo_seed first."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument("--per-day", type=int, default=30, help="orders per day (all lanes)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--until",
            default="",
            help="ISO time the history ends at (default: now, to the hour); the same value "
            "gives the same payloads, so a second run only makes duplicate runs",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when a history was loaded before"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="load the lanes' feed groups in this many processes at once (the same result; "
            "each commits on its own, so not inside a transaction)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1 or options["per_day"] < 1:
            raise CommandError("--days and --per-day must be at least 1")
        if options["if_empty"] and history_present():
            self.stdout.write("demo history: already loaded, nothing to do")
            return
        until = _until(options["until"])
        result = history_load(
            days=options["days"],
            per_day=options["per_day"],
            seed=options["seed"],
            until=until,
            progress=None if options["json"] else self.stdout.write,
            jobs=options["jobs"],
        )
        figures = {
            "until": until.isoformat(),
            "parcels": result.parcels,
            "rows": result.rows,
            "runs": result.runs,
            "duplicate_runs": result.duplicates,
            "events": result.events,
            "rejected": result.rejected,
            "runs_by_status": dict(result.by_status),
            "seconds": round(result.seconds, 1),
        }
        if options["json"]:
            self.stdout.write(json.dumps(figures))
            return
        self.stdout.write(
            f"demo history: {result.parcels} parcels, {result.events} events in {result.runs} "
            f"runs ({result.duplicates} duplicate, {result.rejected} rows rejected) "
            f"in {result.seconds:.1f} s"
        )


def _until(value: str) -> datetime:
    if not value:
        return timezone.now().replace(minute=0, second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--until {value!r} is not an ISO time") from exc
    if timezone.is_naive(moment):
        raise CommandError("--until needs an offset (e.g. 2026-05-01T12:00:00+00:00)")
    return moment
