"""Compute the dashboard and the delivery estimates now, as the scheduled tasks would."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from operations import services
from shipments.recording import estimates


class Command(BaseCommand):
    help = (
        "Rebuild the delivery-estimate statistics, re-estimate open shipments, then refresh the "
        "operations dashboard with its statistics (what beat does every few minutes)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = estimates.estimate_stats_refresh()
        changed = estimates.estimates_refresh()
        result = services.dashboard_refresh(stats=True)
        self.stdout.write(
            f"estimates: {rows} statistics rows, {changed} estimates changed; "
            f"dashboard refreshed in {result.seconds:.1f} s"
        )
