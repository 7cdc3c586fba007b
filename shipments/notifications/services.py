"""Writes of buyer notifications other than the recorder's: a shop's settings, a shipment's
buyer, an unsubscribe, the running-late sweep and the retention sweep."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from shipments import services
from shipments.models import (
    BuyerContact,
    NotificationMessage,
    NotificationOptOut,
    Shipment,
    Shop,
    ShopNotificationSettings,
)
from shipments.notifications.models import email_hash
from shipments.notifications.moments import ELIGIBLE_SQL, Moment
from shipments.statuses import DELIVERY_EXPECTED_STATUSES, Status, sql_list

SETTINGS_FIELDS = ("enabled", "moments", "default_language", "brand_color", "reply_to")


def shop_notification_settings(*, shop: Shop) -> ShopNotificationSettings:
    """The shop's settings; the defaults (off) until it sets them."""
    found = ShopNotificationSettings.objects.filter(shop=shop).first()
    return found or ShopNotificationSettings(shop=shop)


def shop_notification_settings_update(*, shop: Shop, **values: Any) -> ShopNotificationSettings:
    """Set the given fields of SETTINGS_FIELDS (the others keep their value)."""
    with transaction.atomic():
        current, _ = ShopNotificationSettings.objects.select_for_update().get_or_create(shop=shop)
        for name in SETTINGS_FIELDS:
            if name in values:
                setattr(current, name, values[name])
        if "moments" in values:
            current.moments = [m.value for m in Moment if m.value in set(values["moments"])]
        current.updated_at = timezone.now()
        current.save()
    return current


_UNSET = object()


def buyer_contact_set(
    *,
    shipment: Shipment,
    shop: Shop,
    email: Any = _UNSET,
    language: Any = _UNSET,
    notify: Any = _UNSET,
) -> BuyerContact | None:
    """Set the shipment's buyer: an empty or null email removes it (and its personal data);
    language and notify keep their values unless given."""
    if email is not _UNSET and not email:
        BuyerContact.objects.filter(shipment=shipment).delete()
        return None
    contact = BuyerContact.objects.filter(shipment=shipment).first()
    if contact is None:
        if email is _UNSET:
            return None
        contact = BuyerContact(shipment=shipment)
    contact.shop = shop
    if email is not _UNSET:
        contact.email = str(email).strip()
        contact.email_hash = email_hash(contact.email)
    if language is not _UNSET:
        contact.language = language or ""
    if notify is not _UNSET:
        contact.notify = notify
    contact.updated_at = timezone.now()
    contact.save()
    return contact


def _buyer_values(fields: dict[str, Any]) -> dict[str, Any]:
    """The API's buyer fields (only those given) as buyer_contact_set's arguments."""
    names = {"buyer_email": "email", "buyer_language": "language", "notify_buyer": "notify"}
    return {names[key]: fields.pop(key) for key in list(fields) if key in names}


def shipment_register_with_buyer(*, shop: Shop, **fields: Any) -> services.Registration:
    """shipments.services.shipment_register, then the buyer if given.

    Not one transaction: a refused registration records the refusal for the operator before it
    raises, and an outer transaction would roll that record back. A buyer that fails to save
    leaves the registration, which the same request sent again finds (200) and completes."""
    buyer = _buyer_values(fields)
    registration = services.shipment_register(shop=shop, **fields)
    if buyer:
        buyer_contact_set(shipment=registration.shipment, shop=shop, **buyer)
    return registration


def shipment_update_with_buyer(*, shipment: Shipment, shop: Shop, **fields: Any) -> Shipment:
    """shipments.services.shipment_update, and the buyer if given, in one transaction."""
    buyer = _buyer_values(fields)
    with transaction.atomic():
        updated = services.shipment_update(shipment=shipment, **fields)
        if buyer:
            buyer_contact_set(shipment=shipment, shop=shop, **buyer)
    return updated


def buyer_view(*, shipment: Shipment) -> dict[str, Any] | None:
    """The buyer as the shop's detail read shows it (with ?include=buyer), or None."""
    contact = BuyerContact.objects.filter(shipment=shipment).first()
    if contact is None:
        return None
    return {
        "email": contact.email,
        "language": contact.language,
        "notify": contact.notify,
        "unsubscribed": NotificationOptOut.objects.filter(
            shop_id=contact.shop_id, email_hash=contact.email_hash
        ).exists(),
    }


def unsubscribe(*, shop_id: int, email_hash_value: str) -> bool:
    """Honour an unsubscribe: no more messages from the shop to the address; the ones waiting
    are cancelled. Returns whether the shop exists. Twice is once."""
    if not Shop.objects.filter(pk=shop_id).exists():
        return False
    with transaction.atomic():
        NotificationOptOut.objects.get_or_create(shop_id=shop_id, email_hash=email_hash_value)
        NotificationMessage.objects.filter(
            shop_id=shop_id, email_hash=email_hash_value, state=NotificationMessage.State.PENDING
        ).update(state=NotificationMessage.State.CANCELLED, note="unsubscribed", recipient="")
    return True


# The estimate's p80 (ShipmentEstimate.latest) passed with no delivery: the moment, once per
# shipment. An overdue estimate is re-dated to now when recomputed, so `latest < now()` also
# holds for one recomputed overdue.
_RUNNING_LATE_SQL = f"""
INSERT INTO shipments_notificationmoment (shipment_id, moment, event_id, created_at)
SELECT s.id, '{Moment.RUNNING_LATE.value}', s.status_event_id, now()
FROM shipments_shipmentestimate est
{ELIGIBLE_SQL.format(shipment="est.shipment_id", moment=f"'{Moment.RUNNING_LATE.value}'")}
  AND est.latest < now() AND s.status IN {sql_list(DELIVERY_EXPECTED_STATUSES)}
  AND EXISTS (SELECT 1 FROM shipments_buyercontact b0)
ORDER BY s.id
ON CONFLICT (shipment_id, moment) DO NOTHING
"""


def running_late_enqueue() -> int:
    """The running-late moments of every shipment past its estimate. Safe twice."""
    with connection.cursor() as cursor:
        cursor.execute(_RUNNING_LATE_SQL)
        return int(cursor.rowcount)


_CLOSED = sql_list([Status.DELIVERED.value, Status.RETURNED.value])


def buyer_contacts_expire() -> int:
    """Retention: the buyer's email of a shipment delivered or returned NOTIFY_RETENTION_DAYS
    ago (by its last status change) or archived is erased, with the address on its messages."""
    sql = f"""
    WITH gone AS (
        DELETE FROM shipments_buyercontact b USING shipments_shipment s
        WHERE s.id = b.shipment_id
          AND (s.archived_at IS NOT NULL
               OR (s.status IN {_CLOSED}
                   AND s.status_changed_at < now() - make_interval(days => %s)))
        RETURNING b.shipment_id
    ), blanked AS (
        UPDATE shipments_notificationmessage m SET recipient = '',
               state = CASE WHEN m.state = 'pending' THEN 'cancelled' ELSE m.state END,
               note = CASE WHEN m.state = 'pending' THEN 'buyer email erased' ELSE m.note END
        FROM gone WHERE m.shipment_id = gone.shipment_id AND m.recipient <> ''
          AND m.state <> 'sending'
        RETURNING 1
    )
    SELECT count(*) FROM gone
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [settings.NOTIFY_RETENTION_DAYS])
        (count,) = cursor.fetchone()
    return int(count)
