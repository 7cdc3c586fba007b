"""Buyer emails sent through a real SMTP server the test starts (tests/shipments/smtp.py),
read back as the server received them: languages, local times, coalescing, the daily cap,
quiet hours, unsubscribe, retries (a worker killed mid-send: test_notifications_worker_kill.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from shipments.models import NotificationMessage, NotificationMoment, NotificationOptOut
from shipments.notifications import services
from shipments.notifications.sender import notifications_send, quiet_until
from tests.conftest import hub_csv
from tests.shipments.conftest import ShopClient
from tests.shipments.smtp import SMTPServer
from warehouses.models import Feed, FeedRun

Ingest = Callable[..., FeedRun]


@pytest.fixture
def smtp(settings: Any) -> Iterator[SMTPServer]:
    server = SMTPServer()
    _point_at(settings, server)
    yield server
    server.close()


def _point_at(settings: Any, server: SMTPServer) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.NOTIFY_SITE_URL = "https://track.example"
    settings.NOTIFY_COALESCE_SECONDS = 0
    # No night unless a test sets one.
    settings.NOTIFY_QUIET_START_HOUR = settings.NOTIFY_QUIET_END_HOUR = 0
    settings.NOTIFY_DAILY_CAP = 50


def _buyer(shop: ShopClient, number: str, email: str, language: str = "") -> None:
    body = {"tracking_number": number, "buyer_email": email, "buyer_language": language}
    answer = shop.client.post("/api/v1/shipments", body, format="json")
    assert answer.status_code == 201, answer.content


def _on(shop: ShopClient, **values: Any) -> None:
    services.shop_notification_settings_update(shop=shop.shop, enabled=True, **values)


def _header(message: EmailMessage, name: str) -> str:
    """A header's value; a long one is folded after the name, so without the fold's space."""
    return str(message[name]).strip()


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_one_message_per_buyer_in_the_buyers_language_with_local_times_and_links(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer
) -> None:
    _on(shop_a, brand_color="#aa3300")
    _buyer(shop_a, "NS-EN", "en@example.com", "en")
    _buyer(shop_a, "NS-RU", "ru@example.com", "ru")
    _buyer(shop_a, "NS-ZH", "zh@example.com", "zh-hans")
    for number in ("NS-EN", "NS-RU", "NS-ZH"):
        # 10:00 in Heihe is 02:00 UTC; the buyer reads 10:00 UTC+08:00.
        ingest(feed, hub_csv_row(number, "departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"))
    assert notifications_send() == 3
    got = {m["To"]: m for m in smtp.received}
    assert sorted(got) == ["en@example.com", "ru@example.com", "zh@example.com"]
    expected = {
        "en@example.com": ("Your parcel is on its way", "Departed", "China", "NS-EN", "en"),
        "ru@example.com": ("Ваша посылка в пути", "Отправлена", "Китай", "NS-RU", "ru"),
        "zh@example.com": ("您的包裹已发出", "已发出", "中国", "NS-ZH", "zh-hans"),
    }
    for address, (headline, event, country, number, language) in expected.items():
        message = got[address]
        assert _header(message, "Subject") == f"Shop A: {headline} ({number})"
        text, html = _text(message), _html(message)
        assert headline in text and headline in html
        assert event in text and country in text
        # Django's date format of the language, as the buyers' page shows it.
        clock, utc_clock = ("10 a.m.", "2 a.m.") if language == "en" else ("10:00", "02:00")
        assert f"{clock} UTC+08:00" in text
        assert utc_clock not in text
        assert f"https://track.example/track/{number}?lang={language}" in text
        assert "#aa3300" in html and "Shop A" in html
        assert f'lang="{language}"' in html
        stored = NotificationMessage.objects.get(shipment__tracking_number=number)
        assert (stored.state, stored.attempts, stored.moments) == ("sent", 1, ["shipped"])
        assert message["Message-ID"] == stored.message_id
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # Folded (a long line), so read without the fold's leading space.
        assert _header(message, "List-Unsubscribe").startswith(
            "<https://track.example/notifications/unsubscribe/"
        )
    # Nothing more to send: a second pass sends nothing again.
    assert notifications_send() == 0
    assert len(smtp.received) == 3


def hub_csv_row(number: str, code: str, at: str, place: str, country: str) -> bytes:
    return hub_csv(f"{number},{code},{at},,,{place},{country},,,,,")


def test_five_moments_in_ten_minutes_are_one_message(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer, settings: Any
) -> None:
    settings.NOTIFY_COALESCE_SECONDS = 600
    _on(shop_a)
    _buyer(shop_a, "NC001", "burst@example.com")
    events = [
        ("departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"),  # shipped
        ("customs_held", "2026-05-05T09:00:00+03:00", "RUMOW", "RU"),  # customs held
        ("customs_import_cleared", "2026-05-05T12:00:00+03:00", "RUMOW", "RU"),  # cleared
        ("out_for_delivery", "2026-05-06T09:00:00+03:00", "RUMOW", "RU"),
        ("delivery_failed", "2026-05-06T13:00:00+03:00", "RUMOW", "RU"),  # failed attempt
    ]
    for code, at, place, country in events:
        ingest(feed, hub_csv_row("NC001", code, at, place, country))
        # A pass after each: the first moment is not ten minutes old, nothing leaves.
        assert notifications_send() == 0
    assert smtp.received == []
    # Ten minutes later (the moments' clock moved back rather than the test waiting).
    NotificationMoment.objects.update(created_at=timezone.now() - timedelta(minutes=10, seconds=1))
    assert notifications_send() == 1
    (message,) = smtp.received
    text = _text(message)
    moments = ["shipped", "customs_held", "customs_cleared", "out_for_delivery", "failed_attempt"]
    assert NotificationMessage.objects.get().moments == moments
    # The subject names the latest; the body each of them.
    assert _header(message, "Subject") == "Shop A: A delivery attempt failed (NC001)"
    for headline in (
        "Your parcel is on its way",
        "Your parcel is held by customs",
        "Your parcel has cleared customs",
        "Your parcel is out for delivery",
        "A delivery attempt failed",
    ):
        assert headline in text
    assert notifications_send() == 0


def test_the_daily_cap_holds_the_third_message_for_a_day(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer, settings: Any
) -> None:
    settings.NOTIFY_DAILY_CAP = 2
    _on(shop_a)
    for number in ("NK001", "NK002", "NK003"):
        _buyer(shop_a, number, "Same.Buyer@example.com")
        ingest(feed, hub_csv_row(number, "departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"))
    before = timezone.now()
    assert notifications_send() == 2
    assert len(smtp.received) == 2
    waiting = NotificationMessage.objects.get(state="pending")
    assert waiting.attempts == 0
    assert waiting.note.startswith("daily cap of 2 reached")
    # A day after the pass that claimed the two (they count from their claim).
    first_sent = min(
        NotificationMessage.objects.filter(state="sent").values_list("sent_at", flat=True)
    )
    assert (
        before + timedelta(hours=24) <= waiting.next_attempt_at <= first_sent + timedelta(hours=24)
    )
    assert notifications_send() == 0
    # A day later it leaves: held, never dropped.
    NotificationMessage.objects.filter(state="sent").update(
        sent_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    NotificationMessage.objects.filter(state="pending").update(next_attempt_at=timezone.now())
    assert notifications_send() == 1
    assert len(smtp.received) == 3


def test_quiet_hours_hold_news_but_not_a_delivery(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer, settings: Any
) -> None:
    # The buyer's night is the hour it is now at +03:00 (Moscow, the latest event's place).
    local_hour = (timezone.now() + timedelta(hours=3)).hour
    settings.NOTIFY_QUIET_START_HOUR = local_hour
    settings.NOTIFY_QUIET_END_HOUR = (local_hour + 1) % 24
    _on(shop_a)
    _buyer(shop_a, "NQ001", "night@example.com")
    _buyer(shop_a, "NQ002", "night2@example.com")
    ingest(
        feed, hub_csv_row("NQ001", "out_for_delivery", "2026-05-06T09:00:00+03:00", "RUMOW", "RU")
    )
    ingest(feed, hub_csv_row("NQ002", "delivered", "2026-05-06T15:00:00+03:00", "RUMOW", "RU"))
    assert notifications_send() == 1
    assert [m["To"] for m in smtp.received] == ["night2@example.com"]
    held = NotificationMessage.objects.get(shipment__tracking_number="NQ001")
    assert (held.state, held.attempts) == ("pending", 0)
    assert held.note.startswith("quiet hours")
    # It waits until the night's end hour, local: whole hour at +03:00.
    local_end = held.next_attempt_at + timedelta(hours=3)
    assert (local_end.hour, local_end.minute) == ((local_hour + 1) % 24, 0)


def test_quiet_hours_span_midnight_in_the_buyers_offset() -> None:
    with override_settings(NOTIFY_QUIET_START_HOUR=21, NOTIFY_QUIET_END_HOUR=8):
        # 20:30 UTC is 23:30 in Moscow: night until 08:00 Moscow = 05:00 UTC next day.
        now = datetime(2026, 5, 6, 20, 30, tzinfo=UTC)
        assert quiet_until(now, 180) == datetime(2026, 5, 7, 5, 0, tzinfo=UTC)
        # The same instant is 04:30 next day in Beijing (+08:00): night until 08:00 = 00:00 UTC.
        assert quiet_until(now, 480) == datetime(2026, 5, 7, 0, 0, tzinfo=UTC)
        # 12:00 UTC is 15:00 in Moscow: day.
        assert quiet_until(datetime(2026, 5, 6, 12, 0, tzinfo=UTC), 180) is None


def test_the_unsubscribe_link_is_honoured(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer
) -> None:
    _on(shop_a)
    _buyer(shop_a, "NU001", "leave@example.com")
    _buyer(shop_a, "NU002", "stay@example.com")
    for number in ("NU001", "NU002"):
        ingest(feed, hub_csv_row(number, "departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"))
    assert notifications_send() == 2
    message = next(m for m in smtp.received if m["To"] == "leave@example.com")
    link = re.fullmatch(r"<https://track\.example(/[^>]+)>", _header(message, "List-Unsubscribe"))
    assert link is not None
    client = Client()
    confirm = client.get(link.group(1))
    assert confirm.status_code == 200
    assert "Shop A" in confirm.content.decode()
    assert not NotificationOptOut.objects.exists()  # a GET (a link scanner) changes nothing
    # RFC 8058: the mail client's one-click POST, without any CSRF token.
    done = client.post(
        link.group(1),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert done.status_code == 200
    assert "unsubscribed" in done.content.decode()
    forged = client.post(link.group(1)[:-3] + "xyz")
    assert forged.status_code == 404
    # The next moments: none for the buyer who left, one for the other.
    for number in ("NU001", "NU002"):
        ingest(feed, hub_csv_row(number, "delivered", "2026-05-06T15:00:00+03:00", "RUMOW", "RU"))
    assert notifications_send() == 1
    assert [m["To"] for m in smtp.received[2:]] == ["stay@example.com"]
    # A new moment is not even written for an opted-out address.
    assert list(
        NotificationMoment.objects.filter(shipment__tracking_number="NU001").values_list(
            "moment", flat=True
        )
    ) == ["shipped"]
    assert (
        shop_a.client.get("/api/v1/shipments/NU001?include=buyer").json()["buyer"]["unsubscribed"]
        is True
    )


def test_a_failing_server_is_retried_with_backoff_then_given_up(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer, settings: Any
) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 2
    settings.NOTIFY_RETRY_BASE_SECONDS = 60
    _on(shop_a)
    _buyer(shop_a, "NF001", "retry@example.com")
    ingest(feed, hub_csv_row("NF001", "departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"))
    settings.EMAIL_PORT = smtp.port + 1 if smtp.port < 65535 else smtp.port - 1  # nobody there
    started = timezone.now()
    assert notifications_send() == 0
    message = NotificationMessage.objects.get()
    assert (message.state, message.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in message.last_error
    assert message.next_attempt_at >= started + timedelta(seconds=60)
    NotificationMessage.objects.update(next_attempt_at=timezone.now())
    assert notifications_send() == 0
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("failed", 2)
    assert smtp.received == []


def test_an_operator_overrides_the_templates_in_the_project_templates_folder(
    shop_a: ShopClient, feed: Feed, ingest: Ingest, smtp: SMTPServer, settings: Any, tmp_path: Path
) -> None:
    # The project's templates/ folder (TEMPLATES DIRS) is searched before the apps': a file of
    # the same name there wins. Here a temporary folder stands in for it.
    (tmp_path / "notifications").mkdir()
    (tmp_path / "notifications" / "message.txt").write_text(
        "{% load i18n %}Custom for {{ shop_name }}: {{ headline }} {{ track_url }}\n"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    _on(shop_a)
    _buyer(shop_a, "NO001", "custom@example.com", "ru")
    ingest(feed, hub_csv_row("NO001", "departed", "2026-05-02T10:00:00+08:00", "CNHEK", "CN"))
    assert notifications_send() == 1
    (message,) = smtp.received
    assert _text(message).strip() == (
        "Custom for Shop A: Ваша посылка в пути https://track.example/track/NO001?lang=ru"
    )
    # The HTML part was not overridden: the app's own.
    assert "Ваша посылка в пути" in _html(message) and "<table" in _html(message)
