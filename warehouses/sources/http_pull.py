"""A feed's URL, pulled with a conditional GET: a new body becomes a run, 304 is nothing to do."""

from __future__ import annotations

import os
from typing import IO, cast

import requests
from django.conf import settings
from django.db.models.functions import Now

from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun
from warehouses.sources.payloads import PayloadTooLarge


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
    """Conditional GET of the feed's URL; a new body becomes a run, 304 is nothing to do."""
    headers = {"Accept": "*/*", **auth_header(feed)}
    if feed.http_etag:
        headers["If-None-Match"] = feed.http_etag
    if feed.http_last_modified:
        headers["If-Modified-Since"] = feed.http_last_modified
    limit = settings.INGEST_MAX_PAYLOAD_BYTES
    try:
        response = requests.get(
            feed.source_location,
            headers=headers,
            timeout=(5, settings.HTTP_FETCH_TIMEOUT),
            stream=True,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise FetchError(f"GET {feed.source_location} failed: {exc}") from exc
    with response:
        Feed.objects.filter(pk=feed.pk).update(last_checked_at=Now())
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise FetchError(f"GET {feed.source_location} answered HTTP {response.status_code}")
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > limit:
            raise FetchError(f"payload of {declared} bytes exceeds the limit of {limit} bytes")
        response.raw.decode_content = True
        try:
            run = feed_run_create(
                feed=feed,
                content=cast(IO[bytes], response.raw),
                original_name=feed.source_location.rsplit("/", 1)[-1][:300],
                source=FeedRun.Source.HTTP,
            )
        except PayloadTooLarge as exc:
            raise FetchError(str(exc)) from exc
        except requests.RequestException as exc:
            raise FetchError(f"reading {feed.source_location} failed: {exc}") from exc
        Feed.objects.filter(pk=feed.pk).update(
            http_etag=response.headers.get("ETag", "")[:200],
            http_last_modified=response.headers.get("Last-Modified", "")[:100],
        )
    return run
