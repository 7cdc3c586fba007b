"""The sender: turns due moments into messages, then sends them by email (docs/notifications.md).

One pass (`notifications_send`, the `shipments.tasks.send_notifications` task on the webhooks
queue) does three steps, each its own short transaction:

1. Compose: the shipments whose oldest unsent moment is NOTIFY_COALESCE_SECONDS old get one
   message carrying all their unsent moments (a burst is one message). The moments are claimed
   with SKIP LOCKED, so two passes never compose the same moment twice; the message's Message-ID
   is fixed here.
2. Claim: due messages (SKIP LOCKED) pass the gates: an unsubscribed address is cancelled; the
   buyer's night (quiet hours, except delivered and exception) and the daily cap per address
   postpone, with the reason in `note`. The others become `sending`, with one more attempt and a
   lease (`next_attempt_at`), and that commits before any byte goes out.
3. Send: each through Django's email framework; `sent` on success, else a retry after a doubling
   delay, and `failed` after NOTIFY_MAX_ATTEMPTS.

A sender killed mid-send leaves its messages `sending`; when the lease runs out a later pass
sends them again with the same Message-ID. The only duplicate possible is a kill between the SMTP
server's acceptance and the commit of `sent` (milliseconds): the copy then carries the same
Message-ID, which mail clients use to fold duplicates.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from shipments.models import (
    BuyerContact,
    NotificationMessage,
    NotificationMoment,
    NotificationOptOut,
    Shipment,
    ShopNotificationSettings,
)
from shipments.notifications.compose import compose, unsubscribe_url
from shipments.notifications.moments import URGENT_MOMENTS
from shipments.readers.timeline import TimelineEntry, timeline_get
from shipments.readers.tracking_page import display_offset

logger = logging.getLogger(__name__)

State = NotificationMessage.State

# Shipments whose oldest unsent moment has waited the coalescing window, oldest first; their
# unsent moments, locked (another pass skips them).
_DUE_MOMENTS_SQL = """
SELECT m.id, m.shipment_id, m.moment FROM shipments_notificationmoment m
WHERE m.message_id IS NULL AND m.shipment_id IN (
    SELECT shipment_id FROM shipments_notificationmoment
    WHERE message_id IS NULL
    GROUP BY shipment_id HAVING min(created_at) <= %(ready)s
    ORDER BY min(created_at) LIMIT %(limit)s)
ORDER BY m.shipment_id, m.id
FOR UPDATE OF m SKIP LOCKED
"""

_DUE_MESSAGES_SQL = """
SELECT id FROM shipments_notificationmessage
WHERE state IN ('pending', 'sending') AND next_attempt_at <= %(now)s
ORDER BY next_attempt_at, id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


# Ingest batches commit asynchronously; a commit with this flushes the WAL before it, so nothing
# leaves for a change a crash could still take back (as the webhook relay's claim does).
_SYNCHRONOUS = "SET LOCAL synchronous_commit = on"


def _why_not(
    contact: BuyerContact | None,
    brand: ShopNotificationSettings | None,
    opted_out: set[tuple[int, str]],
) -> str:
    """Why a shipment's moments are not sent after all (changed since they were written)."""
    if contact is None or brand is None:
        return "no buyer email any more"
    if not (brand.enabled if contact.notify is None else contact.notify):
        return "notifications turned off"
    if (contact.shop_id, contact.email_hash) in opted_out:
        return "unsubscribed"
    if contact.shipment.archived_at is not None:
        return "shipment archived"
    return ""


def _message(
    shipment_id: int,
    moments: list[str],
    contact: BuyerContact | None,
    brand: ShopNotificationSettings | None,
    opted_out: set[tuple[int, str]],
) -> NotificationMessage:
    """The message carrying a shipment's moments: pending, or cancelled with the reason."""
    why = _why_not(contact, brand, opted_out)
    if contact is None or brand is None:
        return NotificationMessage.objects.create(
            message_id=_new_message_id(),
            shipment_id=shipment_id,
            language="",
            moments=moments,
            state=State.CANCELLED,
            note=why,
        )
    return NotificationMessage.objects.create(
        message_id=_new_message_id(),
        shipment_id=shipment_id,
        shop_id=contact.shop_id,
        recipient="" if why else contact.email,
        email_hash=contact.email_hash,
        language=contact.language or brand.default_language,
        moments=moments,
        state=State.CANCELLED if why else State.PENDING,
        note=why,
    )


def _new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@{settings.NOTIFY_MESSAGE_ID_DOMAIN}>"


def messages_compose(*, limit: int) -> int:
    """Step 1: one message per shipment with due moments. Returns the messages written."""
    ready = timezone.now() - timedelta(seconds=settings.NOTIFY_COALESCE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SYNCHRONOUS)
        cursor.execute(_DUE_MOMENTS_SQL, {"ready": ready, "limit": limit})
        moments: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for moment_id, shipment_id, moment in cursor.fetchall():
            moments[shipment_id].append((moment_id, moment))
        if not moments:
            return 0
        contacts = {
            c.shipment_id: c
            for c in BuyerContact.objects.filter(shipment_id__in=moments).select_related("shipment")
        }
        shops = {c.shop_id for c in contacts.values()}
        brands = {b.shop_id: b for b in ShopNotificationSettings.objects.filter(shop_id__in=shops)}
        opted_out = set(
            NotificationOptOut.objects.filter(
                shop_id__in=shops, email_hash__in=[c.email_hash for c in contacts.values()]
            ).values_list("shop_id", "email_hash")
        )
        for shipment_id, rows in moments.items():
            contact = contacts.get(shipment_id)
            brand = brands.get(contact.shop_id) if contact else None
            message = _message(shipment_id, [m for _, m in rows], contact, brand, opted_out)
            NotificationMoment.objects.filter(pk__in=[i for i, _ in rows]).update(message=message)
    return len(moments)


# --- gates ------------------------------------------------------------------------------------


def quiet_until(now: datetime, offset_minutes: int) -> datetime | None:
    """The end of the buyer's night (UTC) if `now` falls in it at this UTC offset, else None.
    The night is [NOTIFY_QUIET_START_HOUR, NOTIFY_QUIET_END_HOUR) local; start == end: none."""
    start, end = settings.NOTIFY_QUIET_START_HOUR, settings.NOTIFY_QUIET_END_HOUR
    local = now + timedelta(minutes=offset_minutes)
    hour = local.hour
    quiet = (start <= hour < end) if start < end else (hour >= start or hour < end)
    if start == end or not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends - timedelta(minutes=offset_minutes)


def cap_until(email_hash: str, now: datetime, claimed: int) -> datetime | None:
    """When the address may receive another message if it had NOTIFY_DAILY_CAP in the last 24
    hours (sent, or claimed by this pass), else None."""
    window = now - timedelta(hours=24)
    sent = [
        at
        for at in NotificationMessage.objects.filter(
            email_hash=email_hash, state=State.SENT, sent_at__gt=window
        )
        .order_by("sent_at")
        .values_list("sent_at", flat=True)
        if at is not None
    ]
    if len(sent) + claimed < settings.NOTIFY_DAILY_CAP:
        return None
    # The earliest moment the window holds one message fewer (this pass's claims count as now).
    return (sent[0] if sent else now) + timedelta(hours=24)


@dataclass
class _Claimed:
    message: NotificationMessage
    entries: list[TimelineEntry]


def _gate(
    message: NotificationMessage, entries: list[TimelineEntry], now: datetime, claimed: int
) -> tuple[str, datetime | None, str]:
    """(state, postponed until, why) for a due message: cancelled, pending or sending."""
    shop_id = message.shop_id
    assert shop_id is not None  # only a cancelled message has no shop
    if NotificationOptOut.objects.filter(shop_id=shop_id, email_hash=message.email_hash).exists():
        return State.CANCELLED, None, "unsubscribed"
    if not URGENT_MOMENTS & set(message.moments):
        night_ends = quiet_until(now, display_offset(entries))
        if night_ends is not None:
            return State.PENDING, night_ends, "quiet hours in the buyer's local time"
    capped = cap_until(message.email_hash, now, claimed)
    if capped is not None:
        return State.PENDING, capped, f"daily cap of {settings.NOTIFY_DAILY_CAP} reached"
    return State.SENDING, None, ""


def messages_claim(*, limit: int) -> list[_Claimed]:
    """Step 2: due messages through the gates; those to send are `sending`, committed."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFY_SEND_LEASE_SECONDS)
    claimed: list[_Claimed] = []
    per_address: dict[str, int] = defaultdict(int)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SYNCHRONOUS)
        cursor.execute(_DUE_MESSAGES_SQL, {"now": now, "limit": limit})
        ids = [row[0] for row in cursor.fetchall()]
        for message in NotificationMessage.objects.filter(pk__in=ids).order_by("id"):
            entries = timeline_get(shipment_id=message.shipment_id)
            state, until, why = _gate(message, entries, now, per_address[message.email_hash])
            rows = NotificationMessage.objects.filter(pk=message.pk)
            if state == State.CANCELLED:
                rows.update(state=state, note=why, recipient="")
            elif until is not None:
                rows.update(
                    state=state,
                    next_attempt_at=until,
                    note=f"{why}: waits until {until:%Y-%m-%d %H:%M} UTC",
                )
            else:
                rows.update(state=state, attempts=F("attempts") + 1, next_attempt_at=lease)
                message.refresh_from_db()
                per_address[message.email_hash] += 1
                claimed.append(_Claimed(message, entries))
    return claimed


# --- sending ----------------------------------------------------------------------------------


def _email(item: _Claimed) -> EmailMultiAlternatives:
    message = item.message
    shop_id = message.shop_id
    assert shop_id is not None  # only a cancelled message has no shop
    shipment = Shipment.objects.select_related("estimate", "shop").get(pk=message.shipment_id)
    brand = ShopNotificationSettings.objects.get(shop_id=shop_id)
    composed = compose(
        shipment=shipment,
        shop_name=shipment.shop.name if shipment.shop else "",
        brand=brand,
        language=message.language,
        moments=list(message.moments),
        entries=item.entries,
        email_hash=message.email_hash,
    )
    unsubscribe = unsubscribe_url(shop_id=shop_id, email_hash=message.email_hash)
    email = EmailMultiAlternatives(
        subject=composed.subject,
        body=composed.text,
        to=[message.recipient],
        reply_to=[brand.reply_to] if brand.reply_to else None,
        headers={
            "Message-ID": message.message_id,
            # RFC 2369 and RFC 8058: one-click unsubscribe by POST.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    email.attach_alternative(composed.html, "text/html")
    return email


def _failed(message: NotificationMessage, error: str, *, permanent: bool) -> None:
    now = timezone.now()
    give_up = permanent or message.attempts >= settings.NOTIFY_MAX_ATTEMPTS
    delay = min(
        settings.NOTIFY_RETRY_MAX_DELAY_SECONDS,
        settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(message.attempts - 1, 0),
    )
    NotificationMessage.objects.filter(
        pk=message.pk, state=State.SENDING, attempts=message.attempts
    ).update(
        state=State.FAILED if give_up else State.PENDING,
        next_attempt_at=now if give_up else now + timedelta(seconds=delay),
        last_error=error[:2000],
    )


def _send_one(backend: BaseEmailBackend, item: _Claimed) -> bool:
    message = item.message
    try:
        email = _email(item)
        sent = backend.send_messages([email])
    except smtplib.SMTPRecipientsRefused as exc:
        _failed(message, f"recipient refused: {exc.recipients}", permanent=True)
        return False
    except Exception as exc:  # any failure is recorded and retried, bounded
        logger.warning("notification %s not sent", message.message_id, exc_info=True)
        _failed(message, f"{type(exc).__name__}: {exc}", permanent=False)
        return False
    if not sent:
        _failed(message, "the email backend sent nothing", permanent=False)
        return False
    # Only our own claim: a pass whose lease ran out must not overwrite a later one's outcome.
    NotificationMessage.objects.filter(
        pk=message.pk, state=State.SENDING, attempts=message.attempts
    ).update(state=State.SENT, sent_at=timezone.now(), note="", last_error="")
    return True


def notifications_send(*, limit: int | None = None) -> int:
    """One pass: compose, claim, send. Returns the messages sent."""
    limit = limit or settings.NOTIFY_BATCH
    messages_compose(limit=limit)
    claimed = messages_claim(limit=limit)
    if not claimed:
        return 0
    backend = get_connection(fail_silently=False)
    sent = 0
    try:
        backend.open()
    except Exception as exc:  # an unreachable server: each message retries
        for item in claimed:
            _failed(item.message, f"{type(exc).__name__}: {exc}", permanent=False)
        return 0
    try:
        for item in claimed:
            sent += _send_one(backend, item)
    finally:
        backend.close()
    return sent
