"""What an operator may configure as a feed's source, checked when the feed is saved.

The same rules the transports apply before every fetch (config.outbound for HTTP pull,
`inbox_path` for directory feeds), so an operator learns about a refused source on the form
instead of from a failed run.
"""

from __future__ import annotations

from django.conf import settings

from config import outbound
from warehouses.models import Feed
from warehouses.sources.http_pull import FetchError
from warehouses.sources.inbox import inbox_path


def source_location_problem(feed: Feed) -> str:
    """Why the feed's source_location is refused for its transport ('' when it is fine)."""
    if feed.transport == Feed.Transport.HTTP:
        try:
            outbound.target_resolve(
                feed.source_location, allow_private=settings.FEED_ALLOW_PRIVATE_TARGETS
            )
        except outbound.UnresolvableTarget:
            return ""  # may resolve later; every fetch checks again
        except outbound.UnsafeTarget as exc:
            return str(exc)
    if feed.transport == Feed.Transport.DIRECTORY:
        try:
            inbox_path(feed)
        except FetchError as exc:
            return str(exc)
    return ""
