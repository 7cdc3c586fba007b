"""Reads the API and admin need; every shop-facing read is scoped to the shop here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import connections
from django.db.models import Field, Model, QuerySet

from config.db import prepared_cursor
from config.replica import read_alias
from shipments.claiming import order_number_filter
from shipments.event_bounds import status_event_in_month
from shipments.identifiers import tracking_number_clean
from shipments.models import (
    Shipment,
    ShipmentEstimate,
    Shop,
    ShopAPIKey,
    TrackingEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from shipments.readers.timeline import (
    TIMELINE_JSON,
    TimelineEntry,
    timeline_from_rows,
    timeline_rows_from_json,
)

M = TypeVar("M", bound=Model)


def shipment_get_for_shop(*, shop: Shop, tracking_number: str) -> Shipment | None:
    """The shop's shipment (with the event that set its status) or None: another shop's parcel
    is indistinguishable from one that does not exist."""
    return (
        _with_status_event(Shipment.objects.all())
        .filter(shop=shop, tracking_number=tracking_number_clean(tracking_number))
        .first()
    )


def _with_status_event(qs: QuerySet[Shipment]) -> QuerySet[Shipment]:
    """With the event that set the status (status_event_of) and the estimate, in the same
    query: the event joined in its month only (shipments.event_bounds)."""
    annotated = qs.annotate(status_event_in_month=status_event_in_month())
    # The stubs know model fields only, not a FilteredRelation's alias.
    return annotated.select_related("status_event_in_month", "estimate")  # type: ignore[misc]


_KEY_COLUMNS = ["id", "prefix", "hashed_key", "revoked", "expiry_date", "shop_id"]
_SHOP_COLUMNS = [f.attname for f in Shop._meta.concrete_fields]
_SHIPMENT_COLUMNS = [f.attname for f in Shipment._meta.concrete_fields]
_ESTIMATE_COLUMNS = [f.attname for f in ShipmentEstimate._meta.concrete_fields]
_N_KEY, _N_SHOP, _N_SHIPMENT = len(_KEY_COLUMNS), len(_SHOP_COLUMNS), len(_SHIPMENT_COLUMNS)

# The API's hottest reads are raw SQL run as prepared statements: compiling ORM queries and
# planning these joins cost more than running them.
_KEY_SQL = (
    "SELECT "
    + ", ".join([f"k.{c}" for c in _KEY_COLUMNS] + [f"sh.{c}" for c in _SHOP_COLUMNS])
    + " FROM shipments_shopapikey k JOIN shipments_shop sh ON sh.id = k.shop_id"
    " WHERE k.prefix = %(prefix)s AND NOT k.revoked"
)
# A shipment with its estimate and timeline; `{shop}` is the shop id's column.
_SHIPMENT_SQL = (
    "SELECT "
    + ", ".join([f"s.{c}" for c in _SHIPMENT_COLUMNS] + [f"est.{c}" for c in _ESTIMATE_COLUMNS])
    + f", {TIMELINE_JSON} AS timeline"
    " FROM shipments_shipment s"
    " LEFT JOIN shipments_shipmentestimate est ON est.shipment_id = s.id"
    " WHERE s.shop_id = {shop} AND s.tracking_number = %(tn)s"
)
# The key, its shop and the shop's shipment in one round trip (the detail's authentication).
KEY_AND_SHIPMENT_SQL = _KEY_SQL.replace(
    " WHERE k.prefix",
    f" LEFT JOIN LATERAL ({_SHIPMENT_SQL.format(shop='k.shop_id')}) d ON true WHERE k.prefix",
).replace(" FROM shipments_shopapikey", ", d.* FROM shipments_shopapikey", 1)


def _converters(model: type[Model], columns: list[str]) -> list[tuple[int, Field[Any, Any]]]:
    fields = {f.attname: f for f in model._meta.concrete_fields}
    return [(i, fields[c]) for i, c in enumerate(columns) if hasattr(fields[c], "from_db_value")]


_CONVERTERS = {
    ShopAPIKey: _converters(ShopAPIKey, _KEY_COLUMNS),
    Shop: _converters(Shop, _SHOP_COLUMNS),
    Shipment: _converters(Shipment, _SHIPMENT_COLUMNS),
    ShipmentEstimate: _converters(ShipmentEstimate, _ESTIMATE_COLUMNS),
}


def _from_row(model: type[M], db: str, columns: list[str], values: Sequence[Any]) -> M:
    """model.from_db() for values of a raw row read from `db`, with the fields' own conversions
    applied as the ORM's compiler applies them (a JSON column arrives as text)."""
    converters = _CONVERTERS[model]
    if converters:
        values = list(values)
        for i, field in converters:
            values[i] = field.from_db_value(values[i], None, connections[db])  # type: ignore[attr-defined]
    return model.from_db(db, columns, values)


# What the API shows of the event that set the status, from its timeline row.
_STATUS_EVENT_FIELDS = ["id", "code", "occurred_at", "location_name", "location_code", "country"]

ShipmentDetail = tuple[Shipment, list[TimelineEntry]]


def _api_key(row: Sequence[Any], db: str) -> ShopAPIKey:
    api_key = _from_row(ShopAPIKey, db, _KEY_COLUMNS, row[:_N_KEY])
    api_key.shop = _from_row(Shop, db, _SHOP_COLUMNS, row[_N_KEY : _N_KEY + _N_SHOP])
    if not ShopAPIKey.objects.key_generator.using_preferred_hasher(api_key.hashed_key):
        # An old-hasher key is upgraded by is_valid() with a full save: load all its fields.
        return ShopAPIKey.objects.select_related("shop").get(pk=api_key.pk)
    return api_key


def _shipment_detail(row: Sequence[Any], db: str) -> ShipmentDetail:
    shipment = _from_row(Shipment, db, _SHIPMENT_COLUMNS, row[:_N_SHIPMENT])
    estimate_values = row[_N_SHIPMENT:-1]
    # Cache the reverse one-to-one either way, so reading it never costs a query.
    Shipment.estimate.related.set_cached_value(
        shipment,
        _from_row(ShipmentEstimate, db, _ESTIMATE_COLUMNS, estimate_values)
        if estimate_values[0] is not None
        else None,
    )
    raw = timeline_rows_from_json(row[-1])
    # The event that set the status is one of the timeline's rows (the recorder and the
    # timeline apply the same unit-membership rule), so it needs no join of its own.
    status_event = None
    for r in raw:
        if r[0] == shipment.status_event_id:
            status_event = TrackingEvent.from_db(
                db, _STATUS_EVENT_FIELDS, [r[0], r[1], r[4], *r[6:9]]
            )
            break
    else:
        if shipment.status_event_id is not None:  # not expected; correct rather than fast
            events = TrackingEvent.objects.filter(pk=shipment.status_event_id)
            if shipment.status_event_at is not None:  # its month only
                events = events.filter(occurred_at=shipment.status_event_at)
            status_event = events.get()
    shipment.status_event = status_event
    return shipment, timeline_from_rows(raw)


def api_key_get(*, prefix: str) -> ShopAPIKey | None:
    """The live (unrevoked) key with this prefix, with its shop; the caller checks the hash."""
    db = read_alias()
    with prepared_cursor(db) as cursor:
        cursor.execute(_KEY_SQL, {"prefix": prefix})
        row = cursor.fetchone()
    return None if row is None else _api_key(row, db)


def api_key_get_with_shipment(
    *, prefix: str, tracking_number: str
) -> tuple[ShopAPIKey | None, ShipmentDetail | None]:
    """The key as api_key_get() and, in the same statement, its shop's shipment (estimate and
    merged timeline included) or None: another shop's parcel is indistinguishable from one
    that does not exist. The caller must still check the key's hash before using either."""
    db = read_alias()
    with prepared_cursor(db) as cursor:
        cursor.execute(
            KEY_AND_SHIPMENT_SQL,
            {"prefix": prefix, "tn": tracking_number_clean(tracking_number)},
        )
        row = cursor.fetchone()
    if row is None:
        return None, None
    shipment = row[_N_KEY + _N_SHOP :]
    return _api_key(row, db), None if shipment[0] is None else _shipment_detail(shipment, db)


def shipment_list_for_shop(
    *,
    shop: Shop,
    status: str | None = None,
    stage: str | None = None,
    destination_country: str | None = None,
    order_number: str | None = None,
    updated_since: datetime | None = None,
    archived: bool | None = None,
) -> QuerySet[Shipment]:
    qs = _with_status_event(Shipment.objects.filter(shop=shop))
    if status:
        qs = qs.filter(status=status)
    if stage is not None:
        qs = qs.filter(stage=stage)
    if destination_country:
        qs = qs.filter(destination_country=destination_country.upper())
    if order_number:
        qs = qs.filter(order_number_filter(order_number))
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    return qs


def webhook_endpoint_get_for_shop(*, shop: Shop, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(shop=shop, pk=endpoint_id).first()


def webhook_endpoints_for_shop(*, shop: Shop) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(shop=shop).order_by("id")


def webhook_attempts_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookAttempt]:
    return (
        WebhookAttempt.objects.filter(endpoint=endpoint)
        .select_related("delivery")
        .order_by("-attempted_at", "-id")
    )


def webhook_deliveries_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")


def shipment_get_public(*, tracking_number: str) -> Shipment | None:
    """The buyer tracking page's lookup: by tracking number alone, with its estimate (one query).
    Callers show only what a buyer may see (no shop, order number or raw records)."""
    cleaned = tracking_number_clean(tracking_number)
    if not cleaned:
        return None
    return Shipment.objects.select_related("estimate").filter(tracking_number=cleaned).first()
