"""Retention: delivered and returned parcels older than RETENTION_DAYS are exported, then removed.

Off by default (RETENTION_DAYS unset: the hub keeps everything). The exports go to the
"retention" storage (config/settings/core.py, STORAGES); the daily job is in the beat schedule
(config/settings/celery.py). docs/retention.md.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import envint, envint_or_none
from config.settings.dashboard import OPS_STATS_WINDOW_DAYS
from config.settings.estimates import ESTIMATE_WINDOW_DAYS

RETENTION_DAYS = envint_or_none("RETENTION_DAYS")
# Shipments per export chunk and per removal transaction.
RETENTION_BATCH = envint("RETENTION_BATCH", 2000)
# The daily task begins no month's export after this long, so it ends within its time limit
# (an hour); the months left wait for the next day (docs/retention.md).
RETENTION_RUN_SECONDS = envint("RETENTION_RUN_SECONDS", 1800)

# The dashboard's and the estimates' statistics are rebuilt from the raw rows of their windows:
# a removal inside a window would change them at the next refresh. Outside both windows it
# cannot, so the statistics built before a removal stay what they were (docs/retention.md).
_windows = max(OPS_STATS_WINDOW_DAYS, ESTIMATE_WINDOW_DAYS)
if RETENTION_DAYS is not None and _windows >= RETENTION_DAYS:
    raise ImproperlyConfigured(
        f"RETENTION_DAYS={RETENTION_DAYS} must exceed the statistics windows "
        f"(OPS_STATS_WINDOW_DAYS={OPS_STATS_WINDOW_DAYS}, "
        f"ESTIMATE_WINDOW_DAYS={ESTIMATE_WINDOW_DAYS}): removing parcels the statistics still "
        "read would change them at the next refresh. Leave it empty to keep everything."
    )
