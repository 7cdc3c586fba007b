"""python manage.py ingest PATH --warehouse CODE [--format F] [--encoding E] [--json].

The workers' pipeline, from the command line. Without --feed or --format the file's format is
detected from its first bytes (warehouses/parsers/detect.py); the encoding defaults to `auto`
(warehouses/parsers/encodings.py). Both are stated in the output.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from warehouses.ingest import lifecycle
from warehouses.ingest.runs import feed_run_create, feed_run_execute
from warehouses.models import Feed, FeedRun, Warehouse
from warehouses.parsers import encodings
from warehouses.parsers.detect import HEAD_BYTES, Detected, UnknownFormat, detect_format

# Formats one file shape can serve: a detected format and a feed's agree within a family (a
# hub-csv header on a partner-csv feed is that feed's business).
_FAMILIES: dict[str, str] = {
    Feed.Format.HUB_CSV.value: "csv",
    Feed.Format.PARTNER_CSV.value: "csv",
    Feed.Format.MANIFEST_CSV.value: "csv",
}


class Command(BaseCommand):
    help = "Ingest a file through the same pipeline the Celery workers run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--warehouse", required=True, help="warehouse code")
        parser.add_argument(
            "--format",
            choices=Feed.Format.values,
            default=None,
            help="default: detected from the file (the warehouse's only feed if it has one)",
        )
        parser.add_argument(
            "--encoding",
            default=encodings.AUTO,
            help="auto (default: BOM, else UTF-8 if valid, else GB18030), utf-8 or gb18030",
        )
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
        try:
            encoding = encodings.canonical(options["encoding"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        feed, detected = self._feed(warehouse, options["format"], options["feed"], path)
        if detected and not options["json"]:
            self.stderr.write(f"format: {detected.format} (detected: {detected.evidence})")
        started = time.monotonic()
        with path.open("rb") as handle:
            run = feed_run_create(
                feed=feed,
                content=handle,
                original_name=path.name,
                source=FeedRun.Source.CLI,
                reprocess=options["reprocess"],
                enqueue=False,
                encoding=encoding,
            )
        crashed = None
        if run.status != FeedRun.Status.DUPLICATE:
            progress = self._progress(options["json"], path, feed)
            try:
                # No retries in-process: the first error ends the run `failed` with its reason
                # (the operator is right here and can re-run it from the admin).
                run = feed_run_execute(
                    run_id=run.pk,
                    progress=progress,
                    retry=False,
                    log_hint="see the ingest command's output",
                )
            except Exception as exc:
                crashed = exc
                run.refresh_from_db()
            except KeyboardInterrupt:
                lifecycle.run_interrupted(run_id=run.pk, why="interrupted (Ctrl-C)")
                raise
            if progress is not None:
                progress.done(run)
        result = {
            "run_id": run.pk,
            "feed": feed.code,
            "format": feed.format,
            "format_detected": detected is not None,
            "encoding": run.encoding,
            "encoding_detected": run.encoding_detected,
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
        else:
            self._report(run, result)
        if crashed is not None:
            raise CommandError(f"run {run.pk} failed: {type(crashed).__name__}: {crashed}")

    def _report(self, run: FeedRun, result: dict[str, Any]) -> None:
        for key, value in result.items():
            self.stdout.write(f"{key:>18}: {value}")
        if run.rejected:
            self.stdout.write("first rejected records:")
            for reject in run.rejects.order_by("line")[:10]:
                where = f"{reject.field}: " if reject.field else ""
                self.stdout.write(f"  line {reject.line}: {where}{reject.reason}")

    def _feed(
        self, warehouse: Warehouse, fmt: str | None, code: str | None, path: Path
    ) -> tuple[Feed, Detected | None]:
        """The feed to run the file through, and the detected format when it was detected.

        --feed, else --format, else the format detected from the file: the warehouse's only
        feed if it has one (and the file does not look like another format), else its feed of
        the detected format (a CLI feed is created when it has none).
        """
        feeds = Feed.objects.filter(warehouse=warehouse)
        if code:
            found = feeds.filter(code=code).first()
            if not found:
                raise CommandError(f"warehouse {warehouse.code} has no feed {code!r}")
            return found, None
        if fmt:
            return self._feed_of_format(warehouse, fmt), None
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        only = list(feeds.order_by("pk")[:2])
        try:
            detected = detect_format(head)
        except UnknownFormat as exc:
            if len(only) == 1:
                return only[0], None
            raise CommandError(
                f"cannot tell the format of {path.name}: {exc}. Pass --format or --feed."
            ) from None
        if len(only) == 1:
            feed = only[0]
            if _family(feed.format) != _family(detected.format):
                raise CommandError(
                    f"{path.name} looks like {detected.format} ({detected.evidence}) but the "
                    f"only feed of warehouse {warehouse.code}, {feed.code}, reads {feed.format}. "
                    f"Pass --format {detected.format} (a CLI feed is created) or --feed."
                )
            return feed, detected
        if detected.format == Feed.Format.PARTNER_CSV:
            partner = feeds.filter(format=Feed.Format.PARTNER_CSV).order_by("pk").first()
            if partner is None:
                raise CommandError(
                    f"{path.name} has {detected.evidence}, neither the hub-csv template nor a "
                    f"unit manifest: give warehouse {warehouse.code} a partner-csv feed with a "
                    "column mapping, or pass --format/--feed."
                )
            return partner, detected
        return self._feed_of_format(warehouse, detected.format), detected

    def _feed_of_format(self, warehouse: Warehouse, fmt: str) -> Feed:
        found = Feed.objects.filter(warehouse=warehouse, format=fmt).order_by("pk").first()
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

    def _progress(self, quiet: bool, path: Path, feed: Feed) -> Progress | None:
        if quiet:
            return None
        return Progress(sys.stderr, total=_estimate_records(path, feed.format))


def _family(fmt: str) -> str:
    return _FAMILIES.get(fmt, fmt)


# One record per line under a header: the line count gives a total to show a percentage of.
_LINE_FORMATS = {Feed.Format.HUB_CSV, Feed.Format.PARTNER_CSV, Feed.Format.MANIFEST_CSV}


def _estimate_records(path: Path, fmt: str) -> int | None:
    """Records in the file (lines minus the header) for line formats; None when unknowable.

    Counting newlines reads the file once more at disk speed, which is small next to ingesting.
    """
    if fmt not in _LINE_FORMATS:
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    return max(lines - 1, 0)


class Progress:
    """A progress bar on a terminal, plain lines otherwise (logs, CI, pipes).

    The pipeline reports after each committed batch, so the bar moves batch by batch.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, *, total: int | None) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, run: FeedRun) -> None:
        self.stream.write(self.render(run, final=False))
        self.stream.flush()
        self.shown = True

    def done(self, run: FeedRun) -> None:
        if self.shown or self.tty:
            self.stream.write(self.render(run, final=True))
            self.stream.flush()

    def render(self, run: FeedRun, *, final: bool) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = run.records_processed
        rate = done / elapsed
        counts = (
            f"{done:,} records  {rate:,.0f}/s  "
            f"{run.events_created:,} events  {run.rejected:,} rejected"
        )
        if self.total:
            fraction = 1.0 if final else min(done / self.total, 1.0)
            eta = "" if final or not rate else f"  ETA {max(self.total - done, 0) / rate:,.0f} s"
            if self.tty:
                filled = int(self.WIDTH * fraction)
                bar = "#" * filled + "-" * (self.WIDTH - filled)
                line = f"[{bar}] {fraction * 100:5.1f}%  {counts}{eta}"
            else:
                line = f"{fraction * 100:5.1f}%  {counts}{eta}"
        else:
            line = counts
        if self.tty:
            # \r + clear to end of line redraws in place; the final state ends the line.
            return "\r" + line + "\x1b[K" + ("\n" if final else "")
        return line + "\n"
