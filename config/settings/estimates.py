"""Delivery estimates and the buyer's public tracking page.

The statistics are rebuilt by the beat schedule (config/settings/celery.py).
"""

from __future__ import annotations

from config.env import envint

# History window: shipments delivered in the last N days train the lane/stage statistics.
ESTIMATE_WINDOW_DAYS = envint("ESTIMATE_WINDOW_DAYS", 180)
# A lane (then a destination) needs this many delivered shipments at a stage before it is used;
# with fewer, the estimate falls back to the next coarser basis.
ESTIMATE_MIN_SAMPLES = envint("ESTIMATE_MIN_SAMPLES", 30)
ESTIMATE_CONFIDENCE_HIGH = envint("ESTIMATE_CONFIDENCE_HIGH", 200)
ESTIMATE_CONFIDENCE_MEDIUM = envint("ESTIMATE_CONFIDENCE_MEDIUM", 30)
ESTIMATE_REFRESH_CHUNK = envint("ESTIMATE_REFRESH_CHUNK", 5000)

# Public tracking page: lookups per client IP per minute (Redis counter); a lookup of an unknown
# number costs more, so enumerating numbers hits the limit sooner than reading one's own parcel.
TRACK_RATE_PER_MINUTE = envint("TRACK_RATE_PER_MINUTE", 30)
TRACK_UNKNOWN_COST = envint("TRACK_UNKNOWN_COST", 5)
