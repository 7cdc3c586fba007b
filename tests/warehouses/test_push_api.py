"""Warehouses' push API: per-feed token, size cap, async ingest, run status, duplicates."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import FeedFactory, hub_csv
from warehouses import services
from warehouses.api.tokens import feed_push_token_rotate
from warehouses.models import Feed, FeedRun

pytestmark = pytest.mark.django_db

PAYLOAD = hub_csv("HB001,picked_up,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,")


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _push(client: APIClient, feed: Feed, body: bytes = PAYLOAD) -> Any:
    return client.generic(
        "POST",
        reverse("api-feed-payloads", args=[feed.code]),
        body,
        content_type="text/csv",
        HTTP_X_FILENAME="events.csv",
    )


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The Celery enqueue is the outside world here; the run is executed in-process instead."""
    calls: list[int] = []
    from warehouses import tasks

    monkeypatch.setattr(tasks.ingest_run, "delay", lambda run_id: calls.append(run_id))
    return calls


def test_a_pushed_payload_is_stored_queued_and_reported(
    feed: Feed, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    with django_capture_on_commit_callbacks(execute=True):
        response = _push(client, feed)
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["feed"], body["original_name"]) == (
        "queued",
        feed.code,
        "events.csv",
    )
    assert enqueued == [body["id"]]
    services.feed_run_execute(run_id=body["id"])
    run = client.get(reverse("api-feed-run", args=[feed.code, body["id"]])).json()
    assert (run["status"], run["records"], run["events_created"]) == ("succeeded", 1, 1)
    assert FeedRun.objects.get(pk=body["id"]).source == "push"


def test_the_same_payload_twice_is_recognised(feed: Feed, enqueued: list[int]) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    first = _push(client, feed).json()
    again = _push(client, feed)
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["duplicate_of"]) == ("duplicate", first["id"])


def test_payloads_over_the_cap_are_refused(feed: Feed, settings: Any, enqueued: list[int]) -> None:
    settings.PUSH_MAX_PAYLOAD_BYTES = 100
    response = _push(_client(feed_push_token_rotate(feed=feed)), feed, PAYLOAD * 3)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not FeedRun.objects.exists()


def test_tokens_are_per_feed_and_another_feeds_objects_answer_404(
    feed: Feed, enqueued: list[int]
) -> None:
    other = FeedFactory()
    mine = _client(feed_push_token_rotate(feed=feed))
    theirs = _client(feed_push_token_rotate(feed=other))
    their_run = _push(theirs, other).json()["id"]
    assert _push(mine, other).status_code == 404
    response = mine.get(reverse("api-feed-run", args=[other.code, their_run]))
    assert response.status_code == 404
    assert mine.get(reverse("api-feed-run", args=[feed.code, their_run])).status_code == 404
    assert FeedRun.objects.filter(feed=other).count() == 1


def test_a_bad_or_rotated_token_gets_401(feed: Feed, enqueued: list[int]) -> None:
    old = feed_push_token_rotate(feed=feed)
    feed_push_token_rotate(feed=feed)
    for client in (_client(old), _client("feed_nonsense"), APIClient()):
        response = _push(client, feed)
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated"}
    Feed.objects.filter(pk=feed.pk).update(active=False)
