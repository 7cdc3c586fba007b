"""Per-feed push tokens: random, shown once, stored as sha256 (high entropy needs no salt)."""

from __future__ import annotations

import hashlib
import secrets

from warehouses.models import Feed

TOKEN_PREFIX = "feed_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_push_token_rotate(*, feed: Feed) -> str:
    """A new push token for the feed (the previous one stops working at once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    Feed.objects.filter(pk=feed.pk).update(push_token_hash=token_hash(token))
    feed.push_token_hash = token_hash(token)
    return token


def feed_for_token(token: str) -> Feed | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    return (
        Feed.objects.select_related("warehouse")
        .filter(push_token_hash=token_hash(token), active=True)
        .first()
    )
