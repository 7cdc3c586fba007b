"""Scheduled feeds: what a feed does when it is due, and its django-celery-beat schedule."""

from __future__ import annotations

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from warehouses.models import Feed, FeedRun
from warehouses.sources.http_pull import feed_http_fetch
from warehouses.sources.inbox import inbox_collect


def feed_fetch(*, feed_id: int) -> list[FeedRun]:
    """What a scheduled feed does when it is due: pull from its transport."""
    feed = Feed.objects.select_related("warehouse").get(pk=feed_id)
    if not feed.active:
        return []
    if feed.transport == Feed.Transport.HTTP:
        run = feed_http_fetch(feed=feed)
        return [run] if run else []
    if feed.transport == Feed.Transport.DIRECTORY:
        return inbox_collect(feed=feed)
    return []


def feed_fetch_failed(*, feed_id: int, error: str) -> FeedRun:
    """Keep a failed fetch visible as a failed run of the feed."""
    now = timezone.now()
    transport = Feed.objects.filter(pk=feed_id).values_list("transport", flat=True).first()
    directory = transport == Feed.Transport.DIRECTORY
    return FeedRun.objects.create(
        feed_id=feed_id,
        source=FeedRun.Source.DIRECTORY if directory else FeedRun.Source.HTTP,
        status=FeedRun.Status.FAILED,
        error=error[:4000],
        started_at=now,
        finished_at=now,
    )


def feed_schedule_set(*, feed: Feed, every_seconds: int | None) -> PeriodicTask | None:
    """Create, change or remove the feed's django-celery-beat schedule (editable in the admin)."""
    if every_seconds is None:
        if feed.schedule_id:
            PeriodicTask.objects.filter(pk=feed.schedule_id).delete()
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every_seconds, period=IntervalSchedule.SECONDS
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=f"fetch feed {feed.code}",
        defaults={
            "task": "warehouses.tasks.fetch_feed",
            "interval": interval,
            "args": f"[{feed.pk}]",
            "enabled": feed.active,
        },
    )
    if feed.schedule_id != task.pk:
        Feed.objects.filter(pk=feed.pk).update(schedule=task)
        feed.schedule = task
    return task
