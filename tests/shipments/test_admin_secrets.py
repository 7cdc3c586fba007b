"""Admin actions that issue secrets ask first, and show the secret once in the response itself:
never in the messages cookie or the session."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from shipments.models import Shop, ShopAPIKey, WebhookEndpoint
from shipments.webhooks import secret_generate
from tests.conftest import FeedFactory
from warehouses.api.tokens import feed_for_token
from warehouses.models import Feed

pytestmark = pytest.mark.django_db


def _run_action(client: Client, changelist: str, action: str, pk: int) -> Any:
    return client.post(reverse(changelist), {"action": action, "_selected_action": [pk]})


def _shown_secrets(page: str) -> list[str]:
    return [
        html.unescape(s) for s in re.findall(r'<code class="issued-secret">([^<]+)</code>', page)
    ]


def _assert_not_kept(client: Client, response: Any, secret: str) -> None:
    assert "no-store" in response["Cache-Control"]
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert all(secret not in morsel.value for morsel in client.cookies.values())
    assert secret not in str(dict(client.session))


def _confirmation(client: Client, response: Any) -> tuple[str, str, dict[str, str]]:
    """Follow the action to its confirmation page: (page, form URL, form data)."""
    assert response.status_code == 302
    url = response["Location"]
    page = client.get(url)
    assert page.status_code == 200
    ids = re.search(r'name="ids" value="([^"]*)"', page.text)
    assert ids is not None
    return page.text, url.split("?")[0], {"ids": ids.group(1)}


def test_rotating_a_push_token_asks_first_and_shows_the_token_once(admin_client: Client) -> None:
    feed = FeedFactory(code="feed-rotate")
    before = Feed.objects.get(pk=feed.pk).push_token_hash

    action = _run_action(
        admin_client, "admin:warehouses_feed_changelist", "rotate_push_token", feed.pk
    )
    # The action alone (and the confirmation page) changes nothing.
    assert Feed.objects.get(pk=feed.pk).push_token_hash == before
    confirm_page, url, form = _confirmation(admin_client, action)
    assert "feed-rotate" in confirm_page
    assert "stops working at once" in confirm_page
    assert Feed.objects.get(pk=feed.pk).push_token_hash == before

    result = admin_client.post(url, form)

    assert result.status_code == 200
    (token,) = _shown_secrets(result.text)
    found = feed_for_token(token)
    assert found is not None and found.pk == feed.pk
    _assert_not_kept(admin_client, result, token)
    # Nothing was left for a later page to show either.
    later = admin_client.get(reverse("admin:warehouses_feed_changelist"))
    assert token not in later.text


def test_rotating_a_webhook_secret_asks_first_and_shows_the_secret_once(
    admin_client: Client,
) -> None:
    shop = Shop.objects.create(name="Rotating shop", slug="rotating-shop")
    old = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        shop=shop, url="https://shop.example/hook", secret=old
    )

    action = _run_action(
        admin_client, "admin:shipments_webhookendpoint_changelist", "rotate_secret", endpoint.pk
    )
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == old
    confirm_page, url, form = _confirmation(admin_client, action)
    assert "https://shop.example/hook" in confirm_page
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == old

    result = admin_client.post(url, form)

    (secret,) = _shown_secrets(result.text)
    rotated = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert rotated.secret == secret != old
    assert rotated.previous_secret == old
    _assert_not_kept(admin_client, result, secret)


def test_a_new_api_key_is_shown_in_the_page_not_in_a_message(admin_client: Client) -> None:
    shop = Shop.objects.create(name="Keyed shop", slug="keyed-shop")
    action = _run_action(admin_client, "admin:shipments_shop_changelist", "create_api_key", shop.pk)
    assert not ShopAPIKey.objects.filter(shop=shop).exists()
    _, url, form = _confirmation(admin_client, action)
    assert not ShopAPIKey.objects.filter(shop=shop).exists()
    result = admin_client.post(url, form)
    (key,) = _shown_secrets(result.text)
    assert ShopAPIKey.objects.get_from_key(key).shop_id == shop.pk
    _assert_not_kept(admin_client, result, key)


def test_the_confirmation_page_is_for_staff_who_may_change_the_rows(client: Client) -> None:
    feed = FeedFactory()
    url = reverse("admin:warehouses_feed_rotate_push_token") + f"?ids={feed.pk}"
    assert client.get(url).status_code == 302  # to the login page
    User.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    client.login(username="viewer", password="pw-viewer-1")
    assert client.get(url).status_code == 403
    assert client.post(url.split("?")[0], {"ids": str(feed.pk)}).status_code == 403
    assert Feed.objects.get(pk=feed.pk).push_token_hash == feed.push_token_hash
