"""The REST framework, the OpenAPI schema, and the limits of the shops' and the push API."""

from __future__ import annotations

from config.env import envint, envstr

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.FastContentNegotiation",
    "UNAUTHENTICATED_USER": None,
    # Every error, the framework's own included, answers in one shape.
    "EXCEPTION_HANDLER": "shipments.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS: dict[str, object] = {
    "TITLE": "Cross-border logistics hub API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
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
        # Buyer emails: the languages of the buyers' page (docs/notifications.md).
        "LanguageEnum": "config.settings.core.LANGUAGES",
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

# Throttle counters live in Redis (REDIS_URL), shared by every web worker.
# Requests per key per window ("1200/min"); X-RateLimit-* headers report it.
API_RATE_PER_KEY = envstr("API_RATE_PER_KEY", "1200/min")
# Exports per key per window (GET /api/v1/shipments/export), on top of API_RATE_PER_KEY.
API_EXPORT_RATE_PER_KEY = envstr("API_EXPORT_RATE_PER_KEY", "10/min")
API_BULK_MAX_ITEMS = envint("API_BULK_MAX_ITEMS", 1000)
API_PAGE_SIZE_MAX = envint("API_PAGE_SIZE_MAX", 200)
# A shipment's `metadata` (its JSON, UTF-8): larger is refused with 400.
API_METADATA_MAX_BYTES = envint("API_METADATA_MAX_BYTES", 16 * 1024)
# The same physical event from two sources within this many minutes is shown once.
TIMELINE_MERGE_WINDOW_MINUTES = envint("TIMELINE_MERGE_WINDOW_MINUTES", 5)
PUSH_MAX_PAYLOAD_BYTES = envint("PUSH_MAX_PAYLOAD_BYTES", 50 * 1024 * 1024)
# Pushes per feed token per window, counted in Redis like API_RATE_PER_KEY; 429 past it.
PUSH_RATE_PER_TOKEN = envstr("PUSH_RATE_PER_TOKEN", "120/min")
