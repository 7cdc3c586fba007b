"""One env-driven settings module. `config.test_settings` overrides the few things tests need."""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
from celery.schedules import crontab

from config import queues
from config.env import database_from_url, envbool, envint, envlist, envstr

# Lets admin/queryset classes be subscripted at run time (ModelAdmin[Shop]) for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = envstr("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "shipments",
    "warehouses",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic, run by the image build) in every process that
    # serves the app: with DEBUG off Django serves none, and there is no other web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# No silent fallback to SQLite: without DATABASE_URL, `make` starts an embedded PostgreSQL and
# exports its URL (config/embedded.py). Running Django by hand needs DATABASE_URL set.
DATABASE_URL = envstr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / ".local" / "static")))
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(BASE_DIR / ".local" / "media")))

# Payloads go through the storage API so a worker on another machine can read them: local disk
# here, object storage (django-storages) in production by changing this one setting.
STORAGES = {
    "default": {
        "BACKEND": envstr("PAYLOAD_STORAGE", "django.core.files.storage.FileSystemStorage")
    },
    # Gzip copies next to each file at collectstatic; no manifest of hashed names, so a
    # process that never ran collectstatic still renders its pages (it only lacks the assets).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# A killed worker's task goes back to the queue instead of being lost (tasks are idempotent).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 3600)
# Must exceed the hard time limit, or Redis re-delivers a long ingest still in progress.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3900}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Queues by kind of work (config/queues.py); a task not routed there is maintenance.
CELERY_TASK_QUEUES = queues.task_queues()
CELERY_TASK_ROUTES = queues.task_routes()
CELERY_TASK_DEFAULT_QUEUE = queues.MAINTENANCE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# The one place fixed schedules are defined; per-feed schedules are PeriodicTask rows that the
# admin edits (warehouses.services.feed_schedule_set).
CELERY_BEAT_SCHEDULE = {
    # Inbox folders are scanned this often (the fault suite shortens it).
    "scan-inboxes": {
        "task": "warehouses.tasks.scan_inboxes",
        "schedule": float(envint("INBOX_SCAN_EVERY_SECONDS", 30)),
    },
    # Re-sends runs that lost their message or their worker (warehouses/run_lifecycle.py).
    "requeue-stuck-runs": {
        "task": "warehouses.tasks.requeue_stuck_runs",
        "schedule": float(envint("INGEST_SWEEP_EVERY_SECONDS", 30)),
    },
}

# --- Ingestion ----------------------------------------------------------------------------
INGEST_BATCH_SIZE = envint("INGEST_BATCH_SIZE", 20000)
# See warehouses.services._flush: batches commit without waiting for the WAL flush.
INGEST_ASYNC_COMMIT = envbool("INGEST_ASYNC_COMMIT", True)
INGEST_MAX_PAYLOAD_BYTES = envint("INGEST_MAX_PAYLOAD_BYTES", 512 * 1024 * 1024)
INGEST_MAX_LINE_BYTES = envint("INGEST_MAX_LINE_BYTES", 1_000_000)
# A JSON record nested deeper, or a record (CSV row, JSON object) with more fields, is rejected
# with its line (warehouses.parsers.limits); Python's JSON decoder fails near 1,000 levels.
INGEST_MAX_JSON_DEPTH = envint("INGEST_MAX_JSON_DEPTH", 64)
INGEST_MAX_FIELDS = envint("INGEST_MAX_FIELDS", 1000)
# Run lifecycle (docs/reliability.md): a run is claimed at most this many times, then fails.
INGEST_MAX_ATTEMPTS = envint("INGEST_MAX_ATTEMPTS", 5)
# A worker beats at least this often while it parses; a `running` run silent for
# INGEST_STALE_AFTER_SECONDS has lost its worker and the sweep sends it again.
INGEST_HEARTBEAT_SECONDS = envint("INGEST_HEARTBEAT_SECONDS", 5)
INGEST_STALE_AFTER_SECONDS = envint("INGEST_STALE_AFTER_SECONDS", 60)
# A `queued` run whose message could not be published is sent by the sweep once this old; one
# whose message went out but was never taken, after INGEST_LOST_AFTER_SECONDS.
INGEST_UNSENT_GRACE_SECONDS = envint("INGEST_UNSENT_GRACE_SECONDS", 30)
INGEST_LOST_AFTER_SECONDS = envint("INGEST_LOST_AFTER_SECONDS", 600)
INGEST_SWEEP_LIMIT = envint("INGEST_SWEEP_LIMIT", 500)
# Wait before the next attempt of a run whose attempt raised: base * 2^(attempt - 1), capped.
INGEST_RETRY_BASE_SECONDS = envint("INGEST_RETRY_BASE_SECONDS", 15)
INBOX_ROOT = Path(envstr("INBOX_ROOT", str(BASE_DIR / ".local" / "inbox")))
HTTP_FETCH_TIMEOUT = float(envstr("HTTP_FETCH_TIMEOUT", "30"))
# Feeds name a secret here (Feed.auth_secret_name) instead of storing credentials in the DB:
# FEED_SECRET_<NAME>="Bearer abc" is sent as the Authorization header.
FEED_SECRETS_PREFIX = "FEED_SECRET_"

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.FastContentNegotiation",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS: dict[str, object] = {
    "TITLE": "Cross-border logistics hub API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

# --- Shops' API (issue 3) -------------------------------------------------------------------
REST_FRAMEWORK.update(
    {
        "EXCEPTION_HANDLER": "shipments.api.errors.exception_handler",
        "TEST_REQUEST_DEFAULT_FORMAT": "json",
    }
)
SPECTACULAR_SETTINGS.update(
    {
        "DESCRIPTION": (
            "Shops register shipments and read one unified timeline per parcel; warehouses push "
            "feed payloads. Authenticate with `Authorization: Api-Key <key>` (shops) or "
            "`Authorization: Bearer <feed token>` (push API). Errors share one shape: "
            '`{"error": {"code", "message", "details"}}`. Every response of the shops\' API '
            "carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a "
            "429 adds `Retry-After`."
        ),
        "COMPONENT_SPLIT_REQUEST": True,
        "ENUM_NAME_OVERRIDES": {
            "ShipmentStatusEnum": "shipments.statuses.Status",
            "FeedRunStatusEnum": "warehouses.models.FeedRun.Status",
        },
    }
)
# Throttle counters live in Redis (REDIS_URL), shared by every web worker.
# Requests per key per window ("1200/min"); X-RateLimit-* headers report it.
API_RATE_PER_KEY = envstr("API_RATE_PER_KEY", "1200/min")
API_BULK_MAX_ITEMS = envint("API_BULK_MAX_ITEMS", 1000)
API_PAGE_SIZE_MAX = envint("API_PAGE_SIZE_MAX", 200)
# The same physical event from two sources within this many minutes is shown once.
TIMELINE_MERGE_WINDOW_MINUTES = envint("TIMELINE_MERGE_WINDOW_MINUTES", 5)
PUSH_MAX_PAYLOAD_BYTES = envint("PUSH_MAX_PAYLOAD_BYTES", 50 * 1024 * 1024)

# --- Webhooks -------------------------------------------------------------------------------
# Off in production: a shop could otherwise point a webhook at the hub's own network.
WEBHOOK_ALLOW_PRIVATE_TARGETS = envbool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Per request: connecting, then the whole request (a receiver trickling bytes included) is cut
# at WEBHOOK_TIMEOUT_SECONDS.
WEBHOOK_CONNECT_TIMEOUT_SECONDS = float(envstr("WEBHOOK_CONNECT_TIMEOUT_SECONDS", "3"))
WEBHOOK_TIMEOUT_SECONDS = float(envstr("WEBHOOK_TIMEOUT_SECONDS", "10"))
# A relay pass starts no request after this many seconds; it holds each endpoint it serves for
# this plus one request's timeout plus a margin (shipments.relay.lease_seconds).
WEBHOOK_RELAY_PASS_SECONDS = float(envstr("WEBHOOK_RELAY_PASS_SECONDS", "20"))
# While a pass still sends (a slow endpoint), it claims newly due endpoints this often.
WEBHOOK_RELAY_POLL_SECONDS = float(envstr("WEBHOOK_RELAY_POLL_SECONDS", "1"))
# Endpoints are sent in parallel threads, each with at most this many requests in flight
# (one shipment's notifications always go one after the other, in sequence).
WEBHOOK_RELAY_THREADS = envint("WEBHOOK_RELAY_THREADS", 16)
WEBHOOK_RELAY_ENDPOINTS = envint("WEBHOOK_RELAY_ENDPOINTS", 100)
WEBHOOK_ENDPOINT_CONCURRENCY = envint("WEBHOOK_ENDPOINT_CONCURRENCY", 2)
# Circuit breaker: this many consecutive failures open it for the base period, doubled on each
# failed probe up to the maximum; deliveries stay due meanwhile.
WEBHOOK_BREAKER_FAILURES = envint("WEBHOOK_BREAKER_FAILURES", 5)
WEBHOOK_BREAKER_OPEN_SECONDS = envint("WEBHOOK_BREAKER_OPEN_SECONDS", 30)
WEBHOOK_BREAKER_MAX_OPEN_SECONDS = envint("WEBHOOK_BREAKER_MAX_OPEN_SECONDS", 600)
WEBHOOK_RETRY_BASE_SECONDS = envint("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_RETRY_MAX_DELAY_SECONDS = envint("WEBHOOK_RETRY_MAX_DELAY_SECONDS", 12 * 3600)
WEBHOOK_RETRY_WINDOW_SECONDS = envint("WEBHOOK_RETRY_WINDOW_SECONDS", 3 * 24 * 3600)
WEBHOOK_DISABLE_AFTER_FAILURES = envint("WEBHOOK_DISABLE_AFTER_FAILURES", 100)
WEBHOOK_SECRET_OVERLAP_SECONDS = envint("WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600)
# Deliveries per endpoint per pass.
WEBHOOK_RELAY_BATCH = envint("WEBHOOK_RELAY_BATCH", 200)
CELERY_BEAT_SCHEDULE["relay-webhooks"] = {
    "task": "shipments.tasks.relay_webhooks",
    "schedule": float(envint("WEBHOOK_RELAY_EVERY_SECONDS", 5)),
    # Passes queued while no webhooks worker ran are worth nothing later: the next one sends.
    "options": {"expires": 60},
}
CELERY_BEAT_SCHEDULE["prune-idempotency-keys"] = {
    "task": "shipments.tasks.prune_idempotency_keys",
    "schedule": crontab(minute=17),
}

# JIT compilation costs tens of milliseconds per query and only pays off on long analytic scans;
# the API's lookups are sub-millisecond, yet a plan over near-empty tables (default estimates)
# can cross jit_above_cost. DB_JIT=1 turns it back on.
# random_page_cost: PostgreSQL's default (4) prices an index probe as a spinning-disk seek, so
# the recorder's 5,000 dedupe-key probes per batch plan as a sequential scan of the whole events
# table. On SSD/cloud storage 1.1 is the usual setting (DB_RANDOM_PAGE_COST to change it).
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
assert isinstance(_db_options, dict)
_pg_flags = [f"-c random_page_cost={envstr('DB_RANDOM_PAGE_COST', '1.1')}"]
if not envbool("DB_JIT", False):
    _pg_flags.append("-c jit=off")
_db_options.setdefault("options", " ".join(_pg_flags))

# --- Delivery estimates and the buyer tracking page (issue 5) --------------------------------
# History window: shipments delivered in the last N days train the lane/stage statistics.
ESTIMATE_WINDOW_DAYS = envint("ESTIMATE_WINDOW_DAYS", 180)
# A lane (then a destination) needs this many delivered shipments at a stage before it is used;
# with fewer, the estimate falls back to the next coarser basis.
ESTIMATE_MIN_SAMPLES = envint("ESTIMATE_MIN_SAMPLES", 30)
ESTIMATE_CONFIDENCE_HIGH = envint("ESTIMATE_CONFIDENCE_HIGH", 200)
ESTIMATE_CONFIDENCE_MEDIUM = envint("ESTIMATE_CONFIDENCE_MEDIUM", 30)
ESTIMATE_REFRESH_CHUNK = envint("ESTIMATE_REFRESH_CHUNK", 5000)
CELERY_BEAT_SCHEDULE["refresh-delivery-estimates"] = {
    "task": "shipments.tasks.refresh_delivery_estimates",
    "schedule": crontab(minute=envint("ESTIMATE_REFRESH_MINUTE", 23)),
}
# Public tracking page: lookups per client IP per minute (Redis counter); a lookup of an unknown
# number costs more, so enumerating numbers hits the limit sooner than reading one's own parcel.
TRACK_RATE_PER_MINUTE = envint("TRACK_RATE_PER_MINUTE", 30)
TRACK_UNKNOWN_COST = envint("TRACK_UNKNOWN_COST", 5)

# --- Operations dashboard (issue 5) ---------------------------------------------------------
# The dashboard reads only tables this job rebuilds; figures are at most this old.
CELERY_BEAT_SCHEDULE["refresh-operations"] = {
    "task": "operations.tasks.refresh_dashboard",
    "schedule": float(envint("OPS_REFRESH_EVERY_SECONDS", 300)),
}
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
