"""Input validation and the documented output shapes of the shops' API.

Output is produced by `shipments.api.render` (plain dicts: the detail endpoint is the hot path);
the output serializers here describe it for the OpenAPI schema, and schemathesis checks that the
two agree.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from shipments.models import EstimateBasis, EstimateConfidence, WebhookEventType
from shipments.notifications.moments import Moment
from shipments.statuses import Stage, Status

_COUNTRY = r"^([A-Za-z]{2})?$"
_COUNTRY_HELP = "ISO 3166-1 alpha-2, e.g. CN or RU"


def _unstorable(value: Any) -> str | None:
    """Why PostgreSQL cannot store a JSON-like value's text (keys included), or None: a NUL
    (0x00) or a lone surrogate (`\\ud800` in JSON, not Unicode, cannot be encoded as UTF-8)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "NUL characters are not allowed."
            try:
                item.encode()
            except UnicodeEncodeError:
                return "Lone surrogates (text that is not Unicode) are not allowed."
    return None


class _StrictDecimalField(serializers.DecimalField):
    """Decimals travel as strings (as documented): a JSON number could lose precision."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data == "":
            self.fail("invalid")
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string and nothing else (DRF would turn 0 into "0"; the schema says string), and one
    PostgreSQL can store (DRF already refuses a NUL)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        problem = _unstorable(data)
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        return str(super().to_internal_value(data))


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^\d{1,9}(\.\d{1,3})?$", "nullable": True}
)
class WeightField(_StrictDecimalField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=3, min_value=0, **kwargs)


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": r"^\d{1,12}(\.\d{1,2})?$", "nullable": True}
)
class MoneyField(_StrictDecimalField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=14, decimal_places=2, min_value=0, **kwargs)


class MetadataField(serializers.DictField):
    """A shop's free JSON object: storable text, its JSON (UTF-8) at most API_METADATA_MAX_BYTES."""

    default_error_messages = {
        **serializers.DictField.default_error_messages,
        "too_large": "Metadata is limited to {limit} bytes of JSON.",
    }

    def to_internal_value(self, data: Any) -> dict[Any, Any]:
        value: dict[Any, Any] = super().to_internal_value(data)
        problem = _unstorable(value)
        if problem:
            raise serializers.ValidationError(problem, code="invalid")
        limit = settings.API_METADATA_MAX_BYTES
        if len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) > limit:
            self.fail("too_large", limit=limit)
        return value


# --- buyer notifications (docs/notifications.md) ------------------------------------------------


class BuyerFieldsMixin(serializers.Serializer[Any]):
    """A shipment's buyer for notifications: personal data, returned only by the detail read
    with `?include=buyer`, never in lists."""

    buyer_email = serializers.EmailField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=254,
        help_text="The buyer's email for delivery updates; null or empty removes it.",
    )
    buyer_language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        required=False,
        allow_blank=True,
        help_text="Language of the buyer's emails; empty: the shop's default.",
    )
    notify_buyer = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Email this buyer (true/false); null: the shop's setting.",
    )


BUYER_FIELDS = ("buyer_email", "buyer_language", "notify_buyer")


class BuyerSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()
    language = serializers.CharField(help_text="Empty: the shop's default language")
    notify = serializers.BooleanField(allow_null=True)
    unsubscribed = serializers.BooleanField(help_text="The buyer unsubscribed from this shop")


class NotificationSettingsSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(
        required=False, help_text="Email buyers whose email was given (a shipment can opt out)."
    )
    moments = serializers.ListField(
        child=serializers.ChoiceField(choices=Moment.choices),
        required=False,
        max_length=len(Moment.choices),
        help_text="The moments buyers are told about.",
    )
    default_language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    brand_color = StrictRegexField(
        r"^#[0-9a-fA-F]{6}$", required=False, help_text="The messages' colour, #rrggbb."
    )
    reply_to = serializers.EmailField(required=False, allow_blank=True, max_length=254)


class NotificationSettingsOutSerializer(NotificationSettingsSerializer):
    updated_at = serializers.DateTimeField(allow_null=True)


class ShipmentRegisterSerializer(BuyerFieldsMixin):
    tracking_number = StrictRegexField(
        # A carrier's number, or a case-sensitive GS1 identifier URI (docs/identifiers.md).
        r"^\s*(?:[A-Za-z0-9][A-Za-z0-9 \-]{2,63}"
        r"|(?:[Uu][Rr][Nn]:|[Hh][Tt][Tt][Pp][Ss]?://)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+)\s*$",
        max_length=64,
        # The documented maxLength applies to the value as sent.
        trim_whitespace=False,
        help_text=(
            "Letters, digits, dashes; spaces are ignored and letters uppercased. An EPC URI "
            "(urn:epc:id:...) or GS1 Digital Link URI keeps its case."
        ),
    )
    order_number = StrictCharField(max_length=64, required=False, default="", allow_blank=True)
    carrier = StrictCharField(max_length=64, required=False, default="", allow_blank=True)
    origin_country = StrictRegexField(
        _COUNTRY, required=False, default="", allow_blank=True, help_text=_COUNTRY_HELP
    )
    destination_country = StrictRegexField(
        _COUNTRY, required=False, default="", allow_blank=True, help_text=_COUNTRY_HELP
    )
    declared_value = MoneyField(required=False, allow_null=True, default=None)
    currency = StrictRegexField(
        r"^([A-Za-z]{3})?$", required=False, default="", allow_blank=True, help_text="ISO 4217"
    )
    weight_kg = WeightField(required=False, allow_null=True, default=None)
    metadata = MetadataField(required=False, default=dict, help_text="Free JSON object.")


class BulkRegisterSerializer(serializers.Serializer[Any]):
    # Items are validated one by one in the view, so one bad item never fails the others.
    items = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=settings.API_BULK_MAX_ITEMS,
        help_text=f"Up to {settings.API_BULK_MAX_ITEMS} shipments (same fields as a single one).",
    )


class ShipmentUpdateSerializer(BuyerFieldsMixin):
    metadata = MetadataField(required=False, help_text="Replaces the metadata object.")
    order_number = StrictCharField(max_length=64, required=False, allow_blank=True)


class ShipmentFilterSerializer(serializers.Serializer[Any]):
    """The list's filters; the export takes the same ones (`list_filters`)."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False, allow_blank=True)
    destination_country = serializers.RegexField(
        r"^[A-Za-z]{2}$", required=False, help_text=_COUNTRY_HELP
    )
    order_number = StrictCharField(max_length=64, required=False, allow_blank=True)
    updated_since = serializers.DateTimeField(required=False)
    archived = serializers.BooleanField(required=False)


FILTERS = ("status", "stage", "destination_country", "order_number", "updated_since", "archived")


def list_filters(validated: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of selectors.shipment_list_for_shop from validated filters."""
    return {name: validated.get(name) for name in FILTERS}


class ShipmentListQuerySerializer(ShipmentFilterSerializer):
    ordering = serializers.ChoiceField(
        choices=["-updated_at", "updated_at"],
        required=False,
        default="-updated_at",
        help_text="Of the shipments as they were when the walk began; those changed since "
        "follow in the order they changed (docs/api-sync.md).",
    )
    page_size = serializers.IntegerField(
        min_value=1, max_value=settings.API_PAGE_SIZE_MAX, required=False, default=50
    )
    cursor = serializers.CharField(required=False, max_length=200, help_text="From `next`.")


class ShipmentExportQuerySerializer(ShipmentFilterSerializer):
    format = serializers.ChoiceField(
        choices=["csv", "xlsx"],
        required=False,
        help_text="csv (the default) or xlsx; or ask by the Accept header (text/csv, "
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)",
    )


# --- output shapes (documentation) -------------------------------------------------------------


class EventRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    code = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    location_name = serializers.CharField()
    location_code = serializers.CharField()
    country = serializers.CharField()


class MilestonesSerializer(serializers.Serializer[Any]):
    first_mile_completed = serializers.DateTimeField(allow_null=True)
    export_cleared = serializers.DateTimeField(allow_null=True)
    departed_origin_country = serializers.DateTimeField(allow_null=True)
    arrived_destination_country = serializers.DateTimeField(allow_null=True)
    import_cleared = serializers.DateTimeField(allow_null=True)
    out_for_delivery = serializers.DateTimeField(allow_null=True)
    delivered = serializers.DateTimeField(allow_null=True)


class LocationSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    code = serializers.CharField(help_text="UN/LOCODE when known")
    country = serializers.CharField()


class SourceSerializer(serializers.Serializer[Any]):
    event_id = serializers.IntegerField()
    feed = serializers.CharField(allow_null=True)
    warehouse = serializers.CharField(allow_null=True)
    warehouse_name = serializers.CharField(allow_null=True)
    unit = serializers.CharField(
        allow_null=True, help_text="Transport unit (container, ULD…) the event was reported on"
    )


class TimelineEventSerializer(serializers.Serializer[Any]):
    occurred_at = serializers.DateTimeField(help_text="UTC")
    local_time = serializers.CharField(help_text="Local wall-clock time with its offset")
    utc_offset_minutes = serializers.IntegerField()
    code = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    location = LocationSerializer()
    description = serializers.CharField()
    sources = SourceSerializer(many=True)


class EstimatedDeliverySerializer(serializers.Serializer[Any]):
    earliest = serializers.DateTimeField(
        help_text="Start of the range: median remaining time (p50) from entering the stage"
    )
    latest = serializers.DateTimeField(
        help_text="End of the range: 80th percentile (p80); overdue dates move to now"
    )
    confidence = serializers.ChoiceField(
        choices=EstimateConfidence.choices,
        help_text="From the number of delivered shipments behind it (high >= 200, medium >= 30)",
    )
    basis = serializers.ChoiceField(
        choices=EstimateBasis.choices,
        help_text="The narrowest history with enough deliveries: the lane (origin -> "
        "destination x transport mode), the destination country, or all lanes",
    )
    samples = serializers.IntegerField(help_text="Delivered shipments behind the estimate")
    stage = serializers.ChoiceField(
        choices=Stage.choices, help_text="Stage the estimate starts from"
    )
    computed_at = serializers.DateTimeField()


class ShipmentSerializer(serializers.Serializer[Any]):
    tracking_number = serializers.CharField()
    order_number = serializers.CharField()
    carrier = serializers.CharField()
    transport_mode = serializers.CharField()
    origin_country = serializers.CharField()
    destination_country = serializers.CharField()
    weight_kg = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True)
    declared_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    metadata = serializers.DictField()
    status = serializers.ChoiceField(choices=Status.choices)
    stage = serializers.ChoiceField(choices=Stage.choices)
    status_changed_at = serializers.DateTimeField(allow_null=True)
    status_event = EventRefSerializer(allow_null=True)
    last_event_at = serializers.DateTimeField(allow_null=True)
    estimated_delivery = EstimatedDeliverySerializer(
        allow_null=True,
        help_text="Null when delivered, returned, not yet moving, or without history to go on",
    )
    archived_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    history_from = serializers.DateTimeField(
        allow_null=True,
        help_text="Set when the shop registered a parcel a feed had reported first without "
        "proof that it is the shop's: the timeline starts here (docs/claiming.md)",
    )


class ShipmentDetailSerializer(ShipmentSerializer):
    milestones = MilestonesSerializer()
    timeline = TimelineEventSerializer(many=True)


class ShipmentDetailWithBuyerSerializer(ShipmentDetailSerializer):
    buyer = BuyerSerializer(
        required=False, allow_null=True, help_text="Only with ?include=buyer; null: none given"
    )


class ShipmentPageSerializer(serializers.Serializer[Any]):
    results = ShipmentSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="URL of the next page, or null")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Null when no more rows are available now"
    )
    resume_cursor = serializers.CharField(
        help_text="Pass as `cursor` later to continue after this page, with what changed since "
        "(docs/api-sync.md)"
    )


class BulkItemResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["created", "existing", "error"])
    tracking_number = serializers.CharField(allow_null=True)
    error = serializers.JSONField(allow_null=True)


class BulkResultSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


# --- webhooks -----------------------------------------------------------------------------------


class WebhookEndpointInputSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=1000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices),
        required=False,
        default=list,
        max_length=len(WebhookEventType.choices),
    )
    description = StrictCharField(max_length=200, required=False, default="", allow_blank=True)


class WebhookEndpointPatchSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=1000, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices),
        required=False,
        max_length=len(WebhookEventType.choices),
    )
    description = StrictCharField(max_length=200, required=False, allow_blank=True)


class WebhookEndpointSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="Shown once: store it now.")


class WebhookEnableResultSerializer(WebhookEndpointSerializer):
    replayed = serializers.IntegerField(help_text="Failed deliveries queued again")


class WebhookAttemptSerializer(serializers.Serializer[Any]):
    attempted_at = serializers.DateTimeField()
    webhook_id = serializers.CharField()
    event_type = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField()


class WebhookAttemptPageSerializer(serializers.Serializer[Any]):
    results = WebhookAttemptSerializer(many=True)
