"""The admin's "unknown codes" page of a feed: codes seen in rejects with their counts, and a
one-click "map to…" that saves the mapping and replays (CSV/JSON) or re-runs (EDI, EPCIS) what
the code rejected (issue 13)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from tests.warehouses.mapping.conftest import iftsta
from warehouses.ingest.replay import CodeMappingError, feed_code_map
from warehouses.ingest.runs import feed_run_execute
from warehouses.models import Feed, FeedRun, RejectedRecord
from warehouses.selectors import feed_unknown_codes

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]

# Two consignments with the carrier's VD (`STS+1+VD::22`), one with its P.
CARRIER_FILE = iftsta(
    ("HEK300000001CN", "VD::22"), ("HEK300000002CN", "VD::22"), ("HEK300000003CN", "P")
)


def _rows(html: str) -> dict[str, int]:
    """partner code -> count, as the page's table shows them."""
    table = html.split('id="unknown-codes"', 1)[1].split("</table>", 1)[0]
    return {
        code: int(count)
        for code, count in re.findall(
            r"<td><code>([^<]+)</code></td>\s*<td class=\"count\">(\d+)</td>", table
        )
    }


def _queued_runs(feed: Feed) -> list[FeedRun]:
    return list(FeedRun.objects.filter(feed=feed, source=FeedRun.Source.REPLAY).order_by("pk"))


def test_the_page_lists_each_unknown_code_with_its_count_and_mapping_one_reruns_the_run(
    admin_client: Client, ingest: Ingest, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    feed = FeedFactory(format="edifact")
    original = ingest(feed, CARRIER_FILE)
    assert original.rejected == 3
    url = reverse("admin:warehouses_feed_unknown_codes", args=[feed.pk])

    page = admin_client.get(url)

    assert page.status_code == 200
    assert _rows(page.content.decode()) == {"VD": 2, "P": 1}
    assert f"run {original.pk}" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = admin_client.post(url, {"partner_code": "VD", "event_code": "departed"})

    assert answer.status_code == 302
    feed.refresh_from_db()
    assert feed.code_mapping == {"VD": "departed"}
    (rerun,) = _queued_runs(feed)
    assert len(callbacks) == 1  # the re-run is queued after commit
    rerun = feed_run_execute(run_id=rerun.pk)
    assert (rerun.events_created, rerun.rejected) == (2, 1)
    assert sorted(TrackingEvent.objects.values_list("shipment__tracking_number", "code")) == [
        ("HEK300000001CN", "departed"),
        ("HEK300000002CN", "departed"),
    ]
    assert not RejectedRecord.objects.filter(run=original, replayed_in__isnull=True).exists()
    # P is still unknown, now seen in the re-run.
    after = admin_client.get(url).content.decode()
    assert _rows(after) == {"P": 1}
    assert f"run {rerun.pk}" in after


def test_mapping_a_csv_code_replays_only_its_rejected_lines(
    admin_client: Client, ingest: Ingest, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    feed = FeedFactory()
    ingest(
        feed,
        hub_csv(
            "HEK1,departed,2026-05-01T09:00:00+08:00,,Heihe,CNHEK,CN,,,,rail,",
            "HEK2,GATE-OUT,2026-05-01T10:00:00+08:00,,Heihe,CNHEK,CN,,,,rail,",
            "HEK3,GATE-OUT,2026-05-01T11:00:00+08:00,,Heihe,CNHEK,CN,,,,rail,",
            "HEK4,departed,2026-13-45 25:00,,Heihe,CNHEK,CN,,,,rail,",
        ),
    )
    url = reverse("admin:warehouses_feed_unknown_codes", args=[feed.pk])
    # The bad date is a reject too, but not a code: it is not listed.
    assert _rows(admin_client.get(url).content.decode()) == {"GATE-OUT": 2}

    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(url, {"partner_code": "GATE-OUT", "event_code": "warehouse_dispatched"})

    (replay,) = _queued_runs(feed)
    replay = feed_run_execute(run_id=replay.pk)
    assert (replay.records, replay.events_created, replay.rejected) == (2, 2, 0)
    assert set(
        TrackingEvent.objects.filter(run=replay).values_list("shipment__tracking_number", "code")
    ) == {("HEK2", "warehouse_dispatched"), ("HEK3", "warehouse_dispatched")}
    assert "No unknown codes" in admin_client.get(url).content.decode()


def test_an_event_code_outside_the_vocabulary_is_refused_and_nothing_is_saved(
    ingest: Ingest,
) -> None:
    feed = FeedFactory(format="edifact")
    ingest(feed, CARRIER_FILE)

    with pytest.raises(CodeMappingError):
        feed_code_map(feed_id=feed.pk, partner_code="VD", event_code="teleported", enqueue=False)

    feed.refresh_from_db()
    assert feed.code_mapping == {}
    assert [c.code for c in feed_unknown_codes(feed_id=feed.pk)] == ["VD", "P"]


def test_counting_unknown_codes_is_one_query(ingest: Ingest, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    feed = FeedFactory(format="edifact")
    ingest(feed, CARRIER_FILE)

    with django_assert_num_queries(1):
        codes = feed_unknown_codes(feed_id=feed.pk)

    assert [(c.code, c.count) for c in codes] == [("VD", 2), ("P", 1)]
