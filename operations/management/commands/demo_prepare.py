"""Everything `make demo` does before it serves, in one process: schema, seed, history, figures."""

from __future__ import annotations

import gc
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = (
        "Migrate (when anything is unapplied), demo_seed, demo_history --if-empty (the lanes "
        "loaded side by side) and refresh_dashboard, in one process: each Django start-up "
        "costs seconds on a busy machine (docs/demo-history.md)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=60, help="history days; 0 = none")
        parser.add_argument("--jobs", type=int, default=2, help="history processes at once")
        parser.add_argument("--history-log", default="", help="write the history's output here")

    def handle(self, *args: Any, **options: Any) -> None:
        # Django's modules are never garbage: left out of every collection while the history's
        # many small objects come and go, and out of the teardown's (a second on a busy machine).
        gc.freeze()
        # A new demo database: its hundreds of small commits need not wait for the disk (a crash
        # loses the last few; the next `make demo` applies or loads them again).
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        self._step("migrate", self._migrate)
        self._step("demo_seed", lambda: call_command("demo_seed", stdout=self.stdout))
        if options["days"]:
            self._step("demo_history", lambda: self._history(options))
            self._step("refresh_dashboard", lambda: call_command("refresh_dashboard"))
        gc.freeze()

    def _step(self, name: str, step: Any) -> None:
        clock = time.monotonic()
        step()
        self.stdout.write(f"demo_prepare: {name} {time.monotonic() - clock:.1f} s")

    def _migrate(self) -> None:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:  # a second `make demo` skips migrate's start-up work and post_migrate signals
            call_command("migrate", interactive=False, verbosity=0, skip_checks=True)

    def _history(self, options: dict[str, Any]) -> None:
        if options["history_log"]:
            with open(options["history_log"], "a", encoding="utf-8") as log:
                self._history_to(log, options)
        else:
            self._history_to(self.stdout, options)

    def _history_to(self, out: Any, options: dict[str, Any]) -> None:
        call_command(
            "demo_history", if_empty=True, days=options["days"], jobs=options["jobs"], stdout=out
        )
