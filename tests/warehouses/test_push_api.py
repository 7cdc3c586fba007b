"""Warehouses' push API: per-feed token, size cap, async ingest, run status, duplicates."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import FeedFactory, hub_csv
from warehouses.api.tokens import feed_push_token_rotate
from warehouses.ingest.runs import feed_run_execute
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
    feed_run_execute(run_id=body["id"])
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


def _error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


def _chunked(client: APIClient, feed: Feed, body: bytes, **extra: Any) -> Any:
    """A chunked request as gunicorn hands it to the app: a Transfer-Encoding header, no
    Content-Length, and an input stream that ends where the decoded body ends."""
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": "text/csv",
        **extra,
    }
    return client.generic("POST", reverse("api-feed-payloads", args=[feed.code]), **environ)


def test_a_content_length_that_is_not_a_number_is_a_400(feed: Feed, enqueued: list[int]) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    for length in ("abc", "-1", "1e3", " "):
        response = client.generic(
            "POST",
            reverse("api-feed-payloads", args=[feed.code]),
            PAYLOAD,
            content_type="text/csv",
            CONTENT_LENGTH=length,
        )
        assert response.status_code == 400, length
        assert _error(response) == "invalid_content_length"
    assert not FeedRun.objects.exists()


def test_an_empty_body_is_a_400(feed: Feed, enqueued: list[int]) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    response = _push(client, feed, b"")
    assert (response.status_code, _error(response)) == (400, "empty_payload")
    chunked = _chunked(client, feed, b"")
    assert (chunked.status_code, _error(chunked)) == (400, "empty_payload")
    assert not FeedRun.objects.exists()


def test_a_chunked_body_is_streamed_in(feed: Feed, enqueued: list[int]) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    body = PAYLOAD + b"".join(
        f"HB{n:03d},picked_up,2026-05-01T09:00:00+08:00,,,CNHEK,CN,,,,,\n".encode()
        for n in range(2, 5000)
    )
    response = _chunked(client, feed, body)
    assert response.status_code == 202, response.content
    run = FeedRun.objects.get(pk=response.json()["id"])
    assert (run.payload_size, run.source) == (len(body), "push")
    assert run.payload_sha256 == hashlib.sha256(body).hexdigest()


def test_a_chunked_body_past_the_cap_is_a_413(
    feed: Feed, settings: Any, enqueued: list[int]
) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    settings.PUSH_MAX_PAYLOAD_BYTES = len(PAYLOAD)
    assert _chunked(client, feed, PAYLOAD).status_code == 202
    for size in (len(PAYLOAD) + 1, 3 * 1024 * 1024):
        response = _chunked(client, feed, b"x" * size)
        assert (response.status_code, _error(response)) == (413, "payload_too_large"), size
    assert FeedRun.objects.count() == 1


def test_a_chunked_body_a_server_cannot_delimit_is_a_411(feed: Feed, enqueued: list[int]) -> None:
    client = _client(feed_push_token_rotate(feed=feed))
    response = _chunked(client, feed, PAYLOAD, **{"wsgi.input_terminated": False})
    assert (response.status_code, _error(response)) == (411, "length_required")


def test_pushes_over_the_rate_are_refused_per_token_with_retry_after(
    feed: Feed, settings: Any, enqueued: list[int]
) -> None:
    settings.PUSH_RATE_PER_TOKEN = "2/min"
    client = _client(feed_push_token_rotate(feed=feed))
    other = FeedFactory()
    theirs = _client(feed_push_token_rotate(feed=other))
    codes = [_push(client, feed, PAYLOAD + b"\n" * n).status_code for n in range(3)]
    assert codes == [202, 202, 429]
    refused = client.get(reverse("api-feed-run", args=[feed.code, 1]))
    assert (refused.status_code, _error(refused)) == (429, "throttled")
    assert int(refused["Retry-After"]) >= 1
    assert refused["X-RateLimit-Remaining"] == "0"
    assert FeedRun.objects.filter(feed=feed).count() == 2
    # Another token has its own budget.
    assert _push(theirs, other).status_code == 202
