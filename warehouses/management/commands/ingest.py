"""python manage.py ingest PATH --warehouse CODE [--format F] [--json]: the workers' pipeline."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from warehouses import services
from warehouses.models import Feed, FeedRun, Warehouse


class Command(BaseCommand):
    help = "Ingest a file through the same pipeline the Celery workers run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--warehouse", required=True, help="warehouse code")
        parser.add_argument("--format", choices=Feed.Format.values, default=None)
        parser.add_argument(
            "--feed", default=None, help="feed code (default: the warehouse's feed of that format)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object last")
        parser.add_argument(
            "--reprocess", action="store_true", help="run again even if this file was seen"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        try:
            warehouse = Warehouse.objects.get(code=options["warehouse"])
        except Warehouse.DoesNotExist:
            raise CommandError(f"no warehouse with code {options['warehouse']!r}") from None
        feed = self._feed(warehouse, options["format"], options["feed"])
        started = time.monotonic()
        with path.open("rb") as handle:
            run = services.feed_run_create(
                feed=feed,
                content=handle,
                original_name=path.name,
                source=FeedRun.Source.CLI,
                reprocess=options["reprocess"],
                enqueue=False,
            )
        if run.status != FeedRun.Status.DUPLICATE:
            run = services.feed_run_execute(run_id=run.pk, progress=self._progress(options["json"]))
        result = {
            "run_id": run.pk,
            "feed": feed.code,
            "status": run.status,
            "records": run.records,
            "events_created": run.events_created,
            "duplicates": run.duplicates,
            "rejected": run.rejected,
            "shipments_touched": run.shipments_touched,
            "seconds": round(time.monotonic() - started, 3),
            "error": run.error,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        for key, value in result.items():
            self.stdout.write(f"{key:>18}: {value}")
        if run.rejected:
            self.stdout.write("first rejected records:")
            for reject in run.rejects.order_by("line")[:10]:
                where = f"{reject.field}: " if reject.field else ""
                self.stdout.write(f"  line {reject.line}: {where}{reject.reason}")

    def _feed(self, warehouse: Warehouse, fmt: str | None, code: str | None) -> Feed:
        feeds = Feed.objects.filter(warehouse=warehouse)
        if code:
            found = feeds.filter(code=code).first()
            if not found:
                raise CommandError(f"warehouse {warehouse.code} has no feed {code!r}")
            return found
        fmt = fmt or Feed.Format.HUB_CSV
        found = feeds.filter(format=fmt).order_by("pk").first()
        if found:
            return found
        feed, _ = Feed.objects.get_or_create(
            code=f"{warehouse.code}-{fmt}-cli",
            defaults={
                "name": f"{warehouse.name} ({fmt}, CLI)",
                "warehouse": warehouse,
                "format": fmt,
            },
        )
        return feed

    def _progress(self, quiet: bool) -> Any:
        if quiet:
            return None
        tty = sys.stderr.isatty()

        def show(run: FeedRun) -> None:
            line = (
                f"{run.records_processed:>10} records  {run.events_created:>10} events  "
                f"{run.rejected:>7} rejected"
            )
            sys.stderr.write(("\r" + line) if tty else (line + "\n"))
            sys.stderr.flush()

        return show
