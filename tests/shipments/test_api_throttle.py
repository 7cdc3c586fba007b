"""The API's per-key rate limit: numbers shared through Redis, taken a block at a time."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from shipments.api import auth
from shipments.api.auth import RateCounts
from tests.shipments.conftest import ShopClient


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    key = f"hub:test-throttle:{uuid.uuid4().hex}"
    yield key
    client.delete(*client.keys(f"{key}:*") or [key])


def _incrby_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_incrby", {}).get("calls", 0))


def test_workers_sharing_a_key_hand_out_each_number_once_and_never_pass_the_limit(
    client: redis.Redis, key: str
) -> None:
    workers = [RateCounts(), RateCounts()]
    rng = random.Random(7)
    before = _incrby_calls(client)
    numbers = [rng.choice(workers).take(client, key, 1, 1000, 61) for _ in range(1500)]
    calls = _incrby_calls(client) - before

    admitted = sorted(n for n in numbers if n <= 1000)
    # Both workers keep getting requests, so no number taken is left unused: exactly the limit.
    assert admitted == list(range(1, 1001))
    # Far from the limit a Redis round trip serves a block of requests.
    assert calls < len(numbers) / 5
    assert 0 < client.ttl(f"{key}:1") <= 61


def test_near_the_limit_every_request_is_counted_in_redis(client: redis.Redis, key: str) -> None:
    workers = [RateCounts(), RateCounts()]
    before = _incrby_calls(client)
    numbers = [workers[i % 2].take(client, key, 1, 20, 61) for i in range(25)]
    calls = _incrby_calls(client) - before

    assert sorted(n for n in numbers if n <= 20) == list(range(1, 21))
    # One INCRBY per admitted request. After the limit a worker refuses without Redis: the one
    # that took number 20 knows the window is spent, the other learns it with one more INCRBY.
    assert calls == 20 + 1


def test_a_new_window_starts_again_at_one(client: redis.Redis, key: str) -> None:
    counts = RateCounts()
    assert [counts.take(client, key, 1, 3, 61) for _ in range(4)] == [1, 2, 3, 4]
    assert counts.take(client, key, 1, 3, 61) > 3
    assert counts.take(client, key, 2, 3, 61) == 1


def test_numbers_a_worker_took_and_left_unused_are_lost_to_the_key_at_most_a_block(
    client: redis.Redis, key: str
) -> None:
    idle, busy = RateCounts(), RateCounts()
    assert idle.take(client, key, 1, 1000, 61) == 1  # takes a block, then gets no more requests
    admitted = 1
    while busy.take(client, key, 1, 1000, 61) <= 1000:
        admitted += 1
    # The idle worker's block was 1000 // 32 = 31 numbers; the 30 it never used are lost.
    assert admitted == 1000 - 30


def test_the_api_answers_without_rate_headers_while_redis_is_down(
    shop_a: ShopClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    auth._redis.cache_clear()
    try:
        response = shop_a.client.get(reverse("api-shipments"))
    finally:
        auth._redis.cache_clear()
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response
    assert "API rate limit unavailable" in caplog.text
