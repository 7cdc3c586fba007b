"""Operator admin for the domain: shipments with their read-only timeline, shops, units."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from shipments.admin_secrets import SecretIssue, SecretIssuingAdmin
from shipments.identifiers import tracking_number_clean
from shipments.models import (
    DeliveryEstimateStat,
    Shipment,
    ShipmentClaim,
    ShipmentEstimate,
    Shop,
    ShopAPIKey,
    StatusChange,
    TrackingEvent,
    TransportUnit,
    UnitMembership,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def _shop_api_key_issue(request: HttpRequest, shop: Shop) -> str:
    from shipments.services import shop_api_key_create

    return shop_api_key_create(shop=shop, name=f"admin {request.user}")[1]


@admin.register(Shop)
class ShopAdmin(SecretIssuingAdmin[Shop]):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    # The warehouses whose parcels are this shop's: proof for claims (docs/claiming.md).
    filter_horizontal = ("warehouses",)
    actions = ("create_api_key",)
    secret_issues = (
        SecretIssue[Shop](
            slug="create-api-key",
            title="Create API keys",
            consequence="Each of these shops gets a new API key; its existing keys keep working.",
            issue=_shop_api_key_issue,
        ),
    )

    @admin.action(description="Create an API key (shown once)", permissions=["change"])
    def create_api_key(self, request: HttpRequest, queryset: QuerySet[Shop]) -> HttpResponse:
        return self.confirm_secret_issue(request, queryset, "create-api-key")


@admin.register(ShopAPIKey)
class ShopAPIKeyAdmin(admin.ModelAdmin[ShopAPIKey]):
    list_display = ("name", "shop", "prefix", "created", "revoked", "expiry_date")
    list_filter = ("revoked",)
    list_select_related = ("shop",)
    raw_id_fields = ("shop",)
    search_fields = ("name", "prefix", "shop__name")
    readonly_fields = ("prefix", "hashed_key", "created")


class EventInline(admin.TabularInline[TrackingEvent, Shipment]):
    model = TrackingEvent
    fk_name = "shipment"
    fields = (
        "occurred_at",
        "utc_offset_minutes",
        "tz_source",
        "code",
        "status",
        "place",
        "description",
        "feed",
        "run",
    )
    readonly_fields = fields
    ordering = ("occurred_at", "id")
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrackingEvent]:
        return super().get_queryset(request).select_related("feed", "run")

    @admin.display(description="place")
    def place(self, obj: TrackingEvent) -> str:
        # Blank when the source named no place: shown as such, never as the warehouse.
        parts = (obj.location_name, obj.location_code, obj.country)
        return " · ".join(p for p in parts if p) or "— (not given)"


class StatusChangeInline(admin.TabularInline[StatusChange, Shipment]):
    model = StatusChange
    fields = ("changed_at", "from_status", "to_status", "from_stage", "to_stage", "event")
    readonly_fields = fields
    ordering = ("changed_at", "id")
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[StatusChange]:
        # One join instead of a query per row. By id alone it probes every month's primary key
        # (a status change records no time of its event): a few probes per row, once per page.
        return super().get_queryset(request).select_related("event")


class WarehouseFilter(admin.SimpleListFilter):
    """Shipments a warehouse has reported on (a semi-join per shipment, no DISTINCT)."""

    title = "warehouse"
    parameter_name = "warehouse"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # The warehouses through the events' link to them: shipments does not import the
        # warehouses app, which records into it.
        warehouses = TrackingEvent._meta.get_field("warehouse").related_model
        return [(str(w.pk), str(w)) for w in warehouses._default_manager.order_by("code")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        warehouse_id = self.value()
        if not warehouse_id:
            return queryset
        seen = TrackingEvent.objects.filter(shipment=OuterRef("pk"), warehouse_id=warehouse_id)
        return queryset.filter(Exists(seen))


class EstimateInline(admin.StackedInline[ShipmentEstimate, Shipment]):
    """The shipment's current estimate, read-only: the recorder and the scheduled job write it."""

    model = ShipmentEstimate
    fields = (
        "estimated_range",
        "confidence",
        "basis",
        "samples",
        "stage",
        "stage_entered_at",
        "computed_at",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "delivery estimate"
    verbose_name_plural = "delivery estimate"

    @admin.display(description="estimated delivery (p50 – p80, UTC)")
    def estimated_range(self, obj: ShipmentEstimate) -> str:
        if obj.earliest is None or obj.latest is None:
            return "no history to estimate from yet"
        return f"{obj.earliest:%Y-%m-%d %H:%M} – {obj.latest:%Y-%m-%d %H:%M}"


class UnprovenClaimFilter(admin.SimpleListFilter):
    """Parcels whose shop registered them after a feed, without proof (docs/claiming.md)."""

    title = "claim"
    parameter_name = "claim"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unproven", "Unproven claims")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "unproven":
            return queryset.filter(claim_limited_since__isnull=False)
        return queryset


class ClaimInline(admin.TabularInline[ShipmentClaim, Shipment]):
    model = ShipmentClaim
    extra = 0
    fields = ("shop", "proof", "outcome", "order_number", "created_at", "updated_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ShipmentClaim)
class ShipmentClaimAdmin(admin.ModelAdmin[ShipmentClaim]):
    """Every claim that was not plainly proven: unproven, displaced, refused (the conflicts)."""

    list_display = ("shipment", "shop", "proof", "outcome", "order_number", "updated_at")
    list_filter = ("outcome", "proof")
    list_select_related = ("shipment", "shop")
    search_fields = ("=shipment__tracking_number", "=order_number")
    raw_id_fields = ("shipment", "shop")
    readonly_fields = (
        "shipment",
        "shop",
        "proof",
        "outcome",
        "order_number",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin[Shipment]):
    list_display = (
        "tracking_number",
        "order_number",
        "shop",
        "status",
        "stage",
        "origin_country",
        "destination_country",
        "last_event_at",
        "status_changed_at",
    )
    list_filter = (
        "status",
        "stage",
        "destination_country",
        "origin_country",
        WarehouseFilter,
        UnprovenClaimFilter,
    )
    list_select_related = ("shop",)
    search_fields = ("=tracking_number", "=order_number")
    search_help_text = "A tracking number (any case, spaces ignored) or an order number."
    raw_id_fields = ("shop", "status_event")
    readonly_fields = (
        "status",
        "stage",
        "status_changed_at",
        "status_event",
        "last_event_at",
        "claim_limited_since",
        "claim_order_number",
    )
    inlines = (EventInline, StatusChangeInline, EstimateInline, ClaimInline)
    show_full_result_count = False
    actions = ("approve_claim",)

    @admin.action(description="Approve the shop's claim (it then sees the whole history)")
    def approve_claim(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        from shipments.services import shipment_claim_approve

        approved = sum(
            shipment_claim_approve(shipment_id=pk)
            for pk in queryset.filter(claim_limited_since__isnull=False).values_list(
                "pk", flat=True
            )
        )
        self.message_user(request, f"{approved} claim(s) approved.")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Shipment], search_term: str
    ) -> tuple[QuerySet[Shipment], bool]:
        # Django's "=" search compares upper-cased values, which no index serves: a scan of
        # every shipment. Tracking numbers are stored clean (upper case, no spaces), so the
        # term is cleaned the same way and both numbers are compared exactly (two index reads).
        term = search_term.strip()
        if not term:
            return queryset, False
        wanted = Q(tracking_number=tracking_number_clean(term)) | Q(order_number=term)
        return queryset.filter(wanted), False


class MembershipInline(admin.TabularInline[UnitMembership, TransportUnit]):
    model = UnitMembership
    fields = ("shipment", "loaded_at", "unloaded_at")
    raw_id_fields = ("shipment",)
    extra = 0


@admin.register(TransportUnit)
class TransportUnitAdmin(admin.ModelAdmin[TransportUnit]):
    list_display = ("number", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("=number",)
    inlines = (MembershipInline,)


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookEndpoint]):
    model = WebhookAttempt
    fields = ("attempted_at", "delivery", "status_code", "latency_ms", "error")
    readonly_fields = fields
    ordering = ("-attempted_at",)
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookAttempt]:
        # The log grows forever; the inline shows the latest attempts only.
        latest = WebhookAttempt.objects.order_by("-attempted_at").values("pk")[:50]
        return super().get_queryset(request).filter(pk__in=latest)


def _webhook_secret_issue(request: HttpRequest, endpoint: WebhookEndpoint) -> str:
    from shipments.webhooks import webhook_endpoint_rotate_secret

    return webhook_endpoint_rotate_secret(endpoint=endpoint).secret


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SecretIssuingAdmin[WebhookEndpoint]):
    """Disabled endpoints are what operators look at: filter on `active`."""

    secret_issues = (
        SecretIssue[WebhookEndpoint](
            slug="rotate-secret",
            title="Rotate signing secrets",
            consequence=(
                "Each of these endpoints gets a new signing secret; deliveries carry a second "
                "signature with the current one until the overlap period ends."
            ),
            issue=_webhook_secret_issue,
            label=lambda endpoint: endpoint.url,
        ),
    )

    list_display = (
        "url",
        "shop",
        "active",
        "breaker",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
    )
    list_filter = ("active",)
    list_select_related = ("shop",)
    raw_id_fields = ("shop",)
    search_fields = ("url", "shop__name")
    readonly_fields = (
        "secret",
        "previous_secret",
        "previous_secret_expires_at",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "breaker",
        "breaker_open_until",
        "breaker_trips",
        "relay_leased_until",
    )

    @admin.display(description="circuit breaker")
    def breaker(self, obj: WebhookEndpoint) -> str:
        from shipments.relay import breaker_state

        return breaker_state(obj)

    exclude = ("secret", "previous_secret")
    inlines = (WebhookAttemptInline,)
    actions = ("enable_and_replay", "rotate_secret", "retry_now")

    @admin.action(description="Re-enable and replay failed deliveries")
    def enable_and_replay(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        from shipments.webhooks import webhook_endpoint_enable

        replayed = sum(webhook_endpoint_enable(endpoint=e) for e in queryset)
        self.message_user(request, f"{queryset.count()} enabled, {replayed} deliveries replayed")

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> HttpResponse:
        return self.confirm_secret_issue(request, queryset, "rotate-secret")

    @admin.action(description="Retry pending deliveries now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        from shipments.webhooks import webhook_deliveries_retry_now

        count = sum(webhook_deliveries_retry_now(endpoint=e) for e in queryset)
        self.message_user(request, f"{count} deliveries due now")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = (
        "message_id",
        "endpoint",
        "event_type",
        "sequence",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("state", "event_type")
    list_select_related = ("endpoint",)
    raw_id_fields = ("endpoint", "shipment")
    search_fields = ("=message_id", "=shipment__tracking_number")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- units: member counts and big units (issue 4) ----------------------------------------------
# Registered again as a subclass so the class above stays as it is.

_INLINE_MEMBERS_MAX = 200


@admin.register(UnitMembership)
class UnitMembershipAdmin(admin.ModelAdmin[UnitMembership]):
    """A container holds 20,000 parcels: its members are listed here, paginated, not inline."""

    list_display = ("unit", "shipment", "loaded_at", "unloaded_at")
    list_filter = ("unit__kind",)
    list_select_related = ("unit", "shipment")
    raw_id_fields = ("unit", "shipment")
    search_fields = ("=unit__number", "=shipment__tracking_number")
    date_hierarchy = "loaded_at"
    show_full_result_count = False


admin.site.unregister(TransportUnit)


@admin.register(TransportUnit)
class TransportUnitMembersAdmin(TransportUnitAdmin):
    list_display = ("number", "kind", "member_count", "open_member_count", "created_at")  # type: ignore[assignment]
    readonly_fields = ("members_link",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TransportUnit]:
        # Counted in the list query itself: no query per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                members=Count("memberships"),
                open_members=Count("memberships", filter=Q(memberships__unloaded_at__isnull=True)),
            )
        )

    @admin.display(description="members", ordering="members")
    def member_count(self, obj: TransportUnit) -> int:
        return int(getattr(obj, "members", 0))

    @admin.display(description="inside now", ordering="open_members")
    def open_member_count(self, obj: TransportUnit) -> int:
        return int(getattr(obj, "open_members", 0))

    @admin.display(description="members")
    def members_link(self, obj: TransportUnit) -> str:
        url = reverse("admin:shipments_unitmembership_changelist") + f"?unit__id__exact={obj.pk}"
        return format_html('<a href="{}">All {} members</a>', url, self.member_count(obj))

    def get_inlines(self, request: HttpRequest, obj: TransportUnit | None) -> list[Any]:
        # An inline renders every row: big units link to the paginated membership list instead.
        if obj is not None and self.member_count(obj) > _INLINE_MEMBERS_MAX:
            return []
        return list(super().get_inlines(request, obj))


# --- Delivery estimates (issue 5) ---------------------------------------------------------------


@admin.register(DeliveryEstimateStat)
class DeliveryEstimateStatAdmin(admin.ModelAdmin[DeliveryEstimateStat]):
    """What the estimates are built from (rebuilt by the scheduled job; read-only here)."""

    list_display = (
        "basis",
        "origin_country",
        "destination_country",
        "transport_mode",
        "stage",
        "samples",
        "p50_days",
        "p80_days",
        "p90_days",
        "computed_at",
    )
    list_filter = ("basis", "stage", "destination_country", "transport_mode")
    ordering = ("basis", "origin_country", "destination_country", "transport_mode", "stage")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="p50 (days)")
    def p50_days(self, obj: DeliveryEstimateStat) -> str:
        return f"{obj.p50_hours / 24:.1f}"

    @admin.display(description="p80 (days)")
    def p80_days(self, obj: DeliveryEstimateStat) -> str:
        return f"{obj.p80_hours / 24:.1f}"

    @admin.display(description="p90 (days)")
    def p90_days(self, obj: DeliveryEstimateStat) -> str:
        return f"{obj.p90_hours / 24:.1f}"


# Buyer notifications' admin registers itself (issue 17).
from shipments.notifications import admin as _notifications_admin  # noqa: E402, F401
