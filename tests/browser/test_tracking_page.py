"""A buyer opens the tracking page in Chinese, Russian and English (Chromium, real server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from shipments.models import DeliveryEstimateStat, Shipment
from shipments.recording import EventInput, events_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# language -> (browser locale, status, current stage, an event name, estimate heading)
EXPECTED = {
    "en": ("en-US", "In transit", "Line haul", "Crossed the border", "Estimated delivery"),
    "zh-hans": ("zh-CN", "运输中", "干线运输", "已过境", "预计送达"),
    "ru": ("ru-RU", "В пути", "Магистральная перевозка", "Пересекла границу", "Ожидаемая доставка"),
}


@pytest.fixture
def parcel_in_line_haul(settings: Any) -> str:
    settings.TRACK_RATE_PER_MINUTE = 1000
    now = timezone.now()
    DeliveryEstimateStat.objects.create(
        basis="lane",
        origin_country="CN",
        destination_country="RU",
        transport_mode="rail",
        stage="line_haul",
        samples=240,
        p50_hours=120,
        p80_hours=168,
        p90_hours=200,
    )

    def ev(code: str, hours_ago: float, place: str, locode: str, country: str) -> EventInput:
        return EventInput(
            line=1,
            code=code,
            occurred_at=now - timedelta(hours=hours_ago),
            utc_offset_minutes=480 if country == "CN" else 600,
            tz_source="explicit",
            tracking_number="HLJ000000001CN",
            location_name=place,
            location_code=locode,
            country=country,
            transport_mode="rail",
        )

    # The shop registered it for Russia; the feeds then report it.
    Shipment.objects.create(tracking_number="HLJ000000001CN", destination_country="RU")
    # The recorder runs inside the caller's transaction (its staging table lives for one).
    with transaction.atomic():
        events_record(
            events=[
                ev("warehouse_received", 70, "Heihe", "CNHEK", "CN"),
                ev("customs_export_cleared", 50, "Heihe", "CNHEK", "CN"),
                ev("departed", 30, "Suifenhe", "CNSFH", "CN"),
                ev("border_crossed", 20, "Pogranichny", "RUPGS", "RU"),
            ],
            feed_id=None,
            run_id=None,
            warehouse_id=None,
            source="browser-test",
        )
    return "HLJ000000001CN"


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ru"])
def test_the_tracking_page_renders_in_each_language_with_the_current_stage_highlighted(
    live_server: Any, browser: Any, artifacts: Path, parcel_in_line_haul: str, lang: str
) -> None:
    locale, status, stage, event, estimate = EXPECTED[lang]
    # Chinese on a phone-sized screen; the others on a desktop.
    mobile = lang == "zh-hans"
    context = browser.new_context(
        locale=locale,
        viewport={"width": 390, "height": 844} if mobile else {"width": 1200, "height": 900},
        is_mobile=mobile,
        device_scale_factor=2 if mobile else 1,
    )
    try:
        page = context.new_page()
        response = page.goto(f"{live_server.url}/track/{parcel_in_line_haul}")
        assert response is not None and response.status == 200
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("#status").inner_text() == status
        current = page.locator("ol.stages li.current")
        assert current.count() == 1
        assert current.get_attribute("data-stage") == "line_haul"
        assert current.inner_text() == stage
        assert current.get_attribute("aria-current") == "step"
        # Highlighted for the eye too: bold label, and earlier stages marked done.
        assert current.evaluate("e => getComputedStyle(e).fontWeight") == "700"
        assert page.locator("ol.stages li.done").count() == 2
        assert page.locator("#history").get_by_text(event).count() == 1
        assert page.locator("#estimate h2").inner_text() == estimate
        assert page.locator("#estimate [data-confidence=high]").count() == 1
        if mobile:
            # Nothing wider than the phone's screen.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
        page.screenshot(path=str(artifacts / f"track-{lang}.png"), full_page=True)
    finally:
        context.close()


def test_the_language_switcher_changes_the_language_and_remembers_it(
    live_server: Any, browser: Any, parcel_in_line_haul: str
) -> None:
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/track/{parcel_in_line_haul}")
        assert page.locator("#status").inner_text() == "In transit"
        page.click("nav.lang a[hreflang=ru]")
        page.wait_for_selector("html[lang=ru]")
        assert page.locator("#status").inner_text() == "В пути"
        page.goto(f"{live_server.url}/track/")
        assert page.locator("html").get_attribute("lang") == "ru"
        page.fill("#tn", "nope 404")
        page.click("button[type=submit]")
        page.wait_for_selector("#not-found")
        assert "Посылка не найдена" in page.locator("h1").inner_text()
    finally:
        context.close()


@pytest.mark.parametrize("width", [320, 420])
@pytest.mark.parametrize("lang", ["en", "zh-hans", "ru"])
def test_the_page_reads_on_a_narrow_phone_with_every_stage_label_whole(
    live_server: Any, browser: Any, artifacts: Path, parcel_in_line_haul: str, lang: str, width: int
) -> None:
    # Russian stage names ("Магистральная перевозка") are the longest: at 420 px the bar used to
    # push its last stage off the screen.
    context = browser.new_context(
        locale=EXPECTED[lang][0],
        viewport={"width": width, "height": 800},
        is_mobile=True,
        device_scale_factor=2,
    )
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/track/{parcel_in_line_haul}?lang={lang}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        stages = page.locator("ol.stages li")
        assert stages.count() == 5
        for i in range(5):
            stage = stages.nth(i)
            box = stage.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, i
            # The label is whole inside its stage: not cut, not spilling over the next one.
            assert stage.evaluate("e => e.scrollWidth <= e.clientWidth"), stage.inner_text()
        page.screenshot(path=str(artifacts / f"track-{lang}-{width}px.png"), full_page=True)
    finally:
        context.close()
