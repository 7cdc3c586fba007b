"""The operations dashboard's statistics.

The dashboard reads only tables its refresh job rebuilds; that job's period
(OPS_REFRESH_EVERY_SECONDS) is in the beat schedule (config/settings/celery.py).
"""

from __future__ import annotations

from config.env import envint, envstr

OPS_STATS_WINDOW_DAYS = envint("OPS_STATS_WINDOW_DAYS", 180)
# Lane and warehouse-dwell percentiles (most of a refresh's time) are rebuilt this often; the
# rest of the dashboard every OPS_REFRESH_EVERY_SECONDS. "Refresh now" rebuilds both.
OPS_STATS_REFRESH_EVERY_SECONDS = envint("OPS_STATS_REFRESH_EVERY_SECONDS", 3600)
# Fewer delivered samples than this on a lane: staleness is judged against all lanes.
OPS_LANE_MIN_SAMPLES = envint("OPS_LANE_MIN_SAMPLES", 10)
# A feed without a schedule is quiet after this long without a successful run; a scheduled one
# after OPS_FEED_QUIET_FACTOR times its interval.
OPS_FEED_QUIET_HOURS = envint("OPS_FEED_QUIET_HOURS", 24)
OPS_FEED_QUIET_FACTOR = envint("OPS_FEED_QUIET_FACTOR", 3)
# An order may wait this long for its payment or waybill before "missing" is an exception.
OPS_DOCUMENTS_GRACE_HOURS = envint("OPS_DOCUMENTS_GRACE_HOURS", 24)
OPS_REFRESH_WORK_MEM = envstr("OPS_REFRESH_WORK_MEM", "256MB")
