"""A feed's URL, pulled with a conditional GET: a new body becomes a run, 304 is nothing to do."""

from __future__ import annotations

import http.client
import os
from typing import IO, cast

import urllib3
from django.conf import settings
from django.db.models.functions import Now

from config import outbound
from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun
from warehouses.sources.payloads import PayloadTooLarge

_CONNECT_TIMEOUT_SECONDS = 5.0


class FetchError(Exception):
    """The feed's URL could not be read; the fetch task records it as a failed run."""


def auth_header(feed: Feed) -> dict[str, str]:
    """The feed's Authorization header, from the environment (never stored in the database)."""
    if not feed.auth_secret_name:
        return {}
    value = os.environ.get(settings.FEED_SECRETS_PREFIX + feed.auth_secret_name.upper(), "")
    if not value:
        raise FetchError(
            f"secret {settings.FEED_SECRETS_PREFIX}{feed.auth_secret_name.upper()} is not set"
        )
    return {"Authorization": value}


def feed_http_fetch(*, feed: Feed) -> FeedRun | None:
    """Conditional GET of the feed's URL; a new body becomes a run, 304 is nothing to do.

    The URL passes the same guard as webhooks (config.outbound) before any request: a feed
    pointed at the hub's own network would otherwise read it, store what it answers in the
    feed's rejects and send it the feed's secret. FEED_ALLOW_PRIVATE_TARGETS lifts the guard
    for a partner on the operator's own network.
    """
    url = feed.source_location
    try:
        target = outbound.target_resolve(url, allow_private=settings.FEED_ALLOW_PRIVATE_TARGETS)
    except outbound.UnsafeTarget as exc:
        raise FetchError(f"GET {url} refused: {exc}") from exc
    headers = {"Accept": "*/*", "Host": target.host_header, **auth_header(feed)}
    if feed.http_etag:
        headers["If-None-Match"] = feed.http_etag
    if feed.http_last_modified:
        headers["If-Modified-Since"] = feed.http_last_modified
    conn = outbound.connection_open(target, timeout=_CONNECT_TIMEOUT_SECONDS)
    try:
        try:
            conn.connect()
            # Each read waits at most this long (urllib3 applies it to the socket per read).
            conn.timeout = settings.HTTP_FETCH_TIMEOUT
            conn.request("GET", target.path, headers=headers, preload_content=False)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
            raise FetchError(f"GET {url} failed: {exc}") from exc
        return _store(feed, response)
    finally:
        conn.close()


def _store(feed: Feed, response: urllib3.BaseHTTPResponse) -> FeedRun | None:
    url, limit = feed.source_location, settings.INGEST_MAX_PAYLOAD_BYTES
    Feed.objects.filter(pk=feed.pk).update(last_checked_at=Now())
    if response.status == 304:
        return None
    if response.status != 200:
        raise FetchError(f"GET {url} answered HTTP {response.status}")
    try:
        declared = int(response.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0  # unreadable: the store's own limit still applies while reading
    if declared > limit:
        raise FetchError(f"payload of {declared} bytes exceeds the limit of {limit} bytes")
    try:
        run = feed_run_create(
            feed=feed,
            content=cast(IO[bytes], response),
            original_name=url.rsplit("/", 1)[-1][:300],
            source=FeedRun.Source.HTTP,
        )
    except PayloadTooLarge as exc:
        raise FetchError(str(exc)) from exc
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
        raise FetchError(f"reading {url} failed: {exc}") from exc
    Feed.objects.filter(pk=feed.pk).update(
        http_etag=response.headers.get("ETag", "")[:200],
        http_last_modified=response.headers.get("Last-Modified", "")[:100],
    )
    return run
