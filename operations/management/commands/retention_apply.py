"""Apply the retention policy now, as the daily job does (docs/retention.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.retention.policy import retention_apply


class Command(BaseCommand):
    help = (
        "Export delivered and returned parcels older than RETENTION_DAYS to the retention "
        "storage, one file per month, then remove them from the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="instead of RETENTION_DAYS (for a one-off)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would go; change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.RETENTION_DAYS
        if days is None:
            raise CommandError("RETENTION_DAYS is not set (the hub keeps everything); or --days")
        result = retention_apply(days=days, dry_run=options["dry_run"])
        if not result.locked:
            raise CommandError("another retention run holds the lock; nothing done")
        verb = "would export and remove" if options["dry_run"] else "exported and removed"
        self.stdout.write(f"parcels delivered or returned before {result.cutoff:%Y-%m-%d %H:%M}Z")
        failed = 0
        for period in result.periods:
            line = f"{period.name}: {period.candidates} parcels {verb}"
            if not options["dry_run"]:
                line += f" ({period.removed} removed, the file holds {period.in_file})"
            if period.deferred:
                line = f"{period.name}: {period.candidates} parcels left for the next run"
            if period.error:
                failed += 1
                line += f"; KEPT, {period.error}"
            self.stdout.write(line)
        if not result.periods:
            self.stdout.write("nothing old enough")
        if result.dropped_partitions:
            self.stdout.write("event partitions dropped: " + ", ".join(result.dropped_partitions))
        if failed:
            raise CommandError(f"{failed} period(s) kept in the database: see above")
