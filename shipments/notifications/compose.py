"""What a buyer email says: subject, plain text and HTML in the buyer's language, with the
shop's name and colour, the latest events as the buyers' page shows them (its own functions:
places from the gazetteer, the buyer's local time) and the links (tracking page, unsubscribe).

Templates: `notifications/message.txt`, `notifications/message.html` (shipments/templates/);
an operator overrides them by putting files of the same names in the project's `templates/`
folder, which Django searches first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from shipments.models import Shipment, ShopNotificationSettings
from shipments.notifications.moments import Moment
from shipments.readers.timeline import TimelineEntry
from shipments.readers.tracking_page import (
    STATUS_LABELS,
    display_offset,
    estimate_view,
    event_rows,
)

UNSUBSCRIBE_SALT = "shipments.notifications.unsubscribe"
# Events shown in a message: the moments' own and a little context, never the whole history.
EVENTS_SHOWN = 5

HEADLINES: dict[str, Promise] = {
    Moment.SHIPPED: _("Your parcel is on its way"),
    Moment.CUSTOMS_HELD: _("Your parcel is held by customs"),
    Moment.CUSTOMS_CLEARED: _("Your parcel has cleared customs"),
    Moment.OUT_FOR_DELIVERY: _("Your parcel is out for delivery"),
    Moment.AVAILABLE_FOR_PICKUP: _("Your parcel is ready for pickup"),
    Moment.DELIVERED: _("Your parcel has been delivered"),
    Moment.FAILED_ATTEMPT: _("A delivery attempt failed"),
    Moment.EXCEPTION: _("Your parcel needs attention"),
    Moment.RUNNING_LATE: _("Your parcel is running late"),
}


def unsubscribe_token(*, shop_id: int, email_hash: str) -> str:
    """A signed token naming the shop and the address's hash (never the address itself)."""
    return signing.dumps({"s": shop_id, "h": email_hash}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """(shop id, email hash) of a valid token; None for a forged or damaged one."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        return None
    return int(data["s"]), str(data.get("h", ""))


def unsubscribe_url(*, shop_id: int, email_hash: str) -> str:
    token = unsubscribe_token(shop_id=shop_id, email_hash=email_hash)
    return settings.NOTIFY_SITE_URL + reverse("notify-unsubscribe", args=[token])


def main_moment(moments: list[str]) -> str:
    """The subject names the latest moment (`moments` are in the order they happened)."""
    return moments[-1]


@dataclass(frozen=True, slots=True)
class Composed:
    subject: str
    text: str
    html: str


def compose(
    *,
    shipment: Shipment,
    shop_name: str,
    brand: ShopNotificationSettings,
    language: str,
    moments: list[str],
    entries: list[TimelineEntry],
    email_hash: str,
) -> Composed:
    """The message in `language`. `moments` in the order they happened; `entries` is the
    shipment's timeline (timeline_get)."""
    with translation.override(language):
        offset = display_offset(entries)
        context: dict[str, Any] = {
            "shop_name": shop_name,
            "brand_color": brand.brand_color,
            "number": shipment.tracking_number,
            "headline": str(HEADLINES[main_moment(moments)]),
            "headlines": [str(HEADLINES[m]) for m in moments],
            "status_label": str(STATUS_LABELS.get(shipment.status, shipment.status)),
            "events": event_rows(entries)[:EVENTS_SHOWN],
            "estimate": estimate_view(shipment, offset),
            "delivered": shipment.status in ("delivered", "returned"),
            "track_url": settings.NOTIFY_SITE_URL
            + reverse("track-detail", args=[shipment.tracking_number])
            + f"?lang={language}",
            "unsubscribe_url": unsubscribe_url(shop_id=brand.shop_id, email_hash=email_hash),
            "language": language,
        }
        subject = f"{shop_name}: {context['headline']} ({shipment.tracking_number})"
        text = render_to_string("notifications/message.txt", context)
        html = render_to_string("notifications/message.html", context)
    return Composed(subject=" ".join(subject.split()), text=text, html=html)
