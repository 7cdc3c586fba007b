"""An operator logs into the admin through the real login form and reads the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from operations import services
from tests.operations.conftest import History, build_history
from warehouses.models import FeedRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(ingest: Callable[..., FeedRun]) -> History:
    """The operations tests' history: a lane of delivered parcels plus three exceptions."""
    return build_history(ingest)


def test_an_operator_logs_in_and_the_dashboard_charts_render_with_data(
    live_server: Any, page: Any, history: History, artifacts: Path
) -> None:
    User.objects.create_superuser("operator", "op@example.com", "s3cret-pass")
    services.dashboard_refresh()

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.click("text=Operations dashboard")
    page.wait_for_selector("#operations-dashboard")

    assert page.locator("svg.chart").count() >= 6
    assert page.locator("svg.chart.empty").count() == 0
    assert page.locator("svg.columns rect.point").count() == 60  # 30 days x 2 charts
    assert page.locator("svg.hbars rect.point").count() >= 4
    assert page.locator("svg.lines circle.point").count() >= 4
    bars = page.locator("svg.columns rect.point")
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert max(heights) > 0
    assert page.locator("tr.exception-row").count() == 3
    assert page.locator("#feed-health .state-ok").count() == 1
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
