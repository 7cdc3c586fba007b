"""Admin login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures the right password
is refused until the cool-off has passed; counted per client address behind trusted proxies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-42"


@pytest.fixture
def throttled(settings: Any) -> None:
    # Off in the other tests (config/test_settings.py); the values production has by default.
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("operator", password=PASSWORD, is_staff=True)


def login(client: Client, password: str, username: str = "operator", **extra: Any) -> Any:
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        **extra,
    )


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.usefixtures("throttled")
def test_after_five_failures_the_right_password_is_refused_until_the_cool_off(
    staff: User,
) -> None:
    client = Client(REMOTE_ADDR="198.51.100.20")
    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    # The fifth failure reaches the limit.
    assert login(client, "wrong").status_code == 429
    refused = login(client, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    # Once the cool-off has passed (the attempts are older than it), the password works again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert logged_in(login(client, PASSWORD))


@pytest.mark.usefixtures("throttled")
def test_a_success_before_the_limit_clears_the_count(staff: User) -> None:
    client = Client(REMOTE_ADDR="198.51.100.21")
    for _ in range(4):
        login(client, "wrong")
    assert logged_in(login(client, PASSWORD))
    client.logout()
    for _ in range(4):
        assert login(client, "wrong").status_code == 200
    assert logged_in(login(client, PASSWORD))


@pytest.mark.usefixtures("throttled")
def test_the_username_is_locked_from_any_address(staff: User) -> None:
    for n in range(5):
        login(Client(REMOTE_ADDR=f"203.0.113.{n + 1}"), "wrong")
    assert login(Client(REMOTE_ADDR="203.0.113.99"), PASSWORD).status_code == 429


@pytest.mark.usefixtures("throttled")
def test_behind_a_trusted_proxy_the_client_address_is_locked_not_the_proxy(
    staff: User, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    User.objects.create_user("colleague", password=PASSWORD, is_staff=True)
    proxy = Client(REMOTE_ADDR="10.0.0.5")
    for n in range(5):
        # One guesser behind the proxy, trying five usernames (none reaches its own limit).
        login(proxy, "wrong", username=f"guess{n}", HTTP_X_FORWARDED_FOR="198.51.100.66")
    guesser = login(proxy, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert guesser.status_code == 429
    # A colleague behind the same proxy logs in.
    colleague = login(proxy, PASSWORD, username="colleague", HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert logged_in(colleague)
