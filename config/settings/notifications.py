"""Buyer notifications by email (docs/notifications.md): the mail backend, the sender's pace,
coalescing, the daily cap, quiet hours, retries and retention.

The sender's period and the running-late sweep are in the beat schedule (config/settings/celery.py).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envint, envstr

# Django's email framework: SMTP in production; `make demo` sets the file backend
# (django.core.mail.backends.filebased.EmailBackend, files under .local/mail/).
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 20)
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", ".local/mail")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Parcel tracking <tracking@localhost>")

# The public address of the hub: the links in a message (tracking page, unsubscribe) start here.
NOTIFY_SITE_URL = envstr("NOTIFY_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The domain after "@" in a message's Message-ID.
NOTIFY_MESSAGE_ID_DOMAIN = envstr("NOTIFY_MESSAGE_ID_DOMAIN", "hub.localhost")
# Coalescing: a shipment's moments wait until the first one is this old, then leave as one
# message (five events in ten minutes are one message).
NOTIFY_COALESCE_SECONDS = envint("NOTIFY_COALESCE_SECONDS", 600)
# At most this many messages per buyer email in any 24 hours; more wait, never dropped.
NOTIFY_DAILY_CAP = envint("NOTIFY_DAILY_CAP", 5)
# The buyer's night, in the buyer's local hours [start, end): only delivered and exception
# messages leave then; others wait until it ends.
NOTIFY_QUIET_START_HOUR = envint("NOTIFY_QUIET_START_HOUR", 21)
NOTIFY_QUIET_END_HOUR = envint("NOTIFY_QUIET_END_HOUR", 8)
# Retries: the n-th failure waits base * 2**(n-1) seconds (at most the max), then gives up.
NOTIFY_RETRY_BASE_SECONDS = envint("NOTIFY_RETRY_BASE_SECONDS", 60)
NOTIFY_RETRY_MAX_DELAY_SECONDS = envint("NOTIFY_RETRY_MAX_DELAY_SECONDS", 3600)
NOTIFY_MAX_ATTEMPTS = envint("NOTIFY_MAX_ATTEMPTS", 8)
# A message being sent is held this long; a sender killed mid-send leaves it due again after.
NOTIFY_SEND_LEASE_SECONDS = envint("NOTIFY_SEND_LEASE_SECONDS", 120)
# Messages per sender pass.
NOTIFY_BATCH = envint("NOTIFY_BATCH", 100)
# A buyer's email is erased this many days after the shipment was delivered or returned.
NOTIFY_RETENTION_DAYS = envint("NOTIFY_RETENTION_DAYS", 30)

for _name, _hour in (
    ("NOTIFY_QUIET_START_HOUR", NOTIFY_QUIET_START_HOUR),
    ("NOTIFY_QUIET_END_HOUR", NOTIFY_QUIET_END_HOUR),
):
    if not 0 <= _hour <= 23:
        raise ImproperlyConfigured(f"{_name}={_hour} is not an hour of the day (0-23).")
