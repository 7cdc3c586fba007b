"""Rejected-record triage (warehouses.rejected_records_replay / feed_run_rerun)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from warehouses.admin.runs import run_progress
from warehouses.ingest.replay import feed_run_rerun, rejected_records_replay
from warehouses.ingest.runs import feed_run_execute
from warehouses.management.commands.ingest import Progress
from warehouses.models import Feed, FeedRun, RejectedRecord

pytestmark = pytest.mark.django_db

GOOD = "TN1,departed,2026-05-01T09:00:00+08:00,,Heihe,CNHEK,CN,,,,rail,"
BAD_DATE = "TN2,departed,2026-13-45 25:00,,Heihe,CNHEK,CN,,,,rail,"
FIXED_DATE = "TN2,departed,2026-05-02T10:00:00+08:00,,Heihe,CNHEK,CN,,,,rail,"


def execute(runs: list[FeedRun]) -> list[FeedRun]:
    return [feed_run_execute(run_id=run.pk) for run in runs]


def test_a_corrected_date_replayed_becomes_an_event(
    feed: Feed, ingest: Callable[..., FeedRun]
) -> None:
    original = ingest(feed, hub_csv(GOOD, BAD_DATE))
    (reject,) = original.rejects.all()
    reject.corrected_raw = FIXED_DATE
    reject.save()

    result = rejected_records_replay(rejects=[reject], enqueue=False)
    (run,) = execute(result.runs)

    assert run.source == FeedRun.Source.REPLAY
    assert run.status == FeedRun.Status.SUCCEEDED
    assert run.events_created == 1
    event = TrackingEvent.objects.get(shipment__tracking_number="TN2")
    assert event.occurred_at.isoformat() == "2026-05-02T02:00:00+00:00"
    reject.refresh_from_db()
    assert reject.replayed_in == run


def test_a_bulk_replay_makes_one_run_per_original_run(
    feed: Feed, ingest: Callable[..., FeedRun]
) -> None:
    first = ingest(feed, hub_csv(BAD_DATE, "TN3,departed,yesterday,,,,CN,,,,rail,"))
    second = ingest(feed, hub_csv("TN4,departed,2026-05-03 09:00,Asia/Nowhere,,,CN,,,,rail,"))
    rejects = list(RejectedRecord.objects.filter(run__in=[first, second]))
    assert len(rejects) == 3
    for reject, fixed in zip(
        sorted(rejects, key=lambda r: (r.run_id, r.line)),
        [
            FIXED_DATE,
            "TN3,departed,2026-05-02T11:00:00Z,,,,CN,,,,rail,",
            "TN4,departed,2026-05-03 09:00,Asia/Shanghai,,,CN,,,,rail,",
        ],
        strict=True,
    ):
        reject.corrected_raw = fixed
        reject.save()

    result = rejected_records_replay(rejects=rejects, enqueue=False)
    runs = execute(result.runs)

    assert result.replayed == 3
    assert [r.events_created for r in runs] == [2, 1]
    assert set(TrackingEvent.objects.values_list("shipment__tracking_number", flat=True)) == {
        "TN2",
        "TN3",
        "TN4",
    }
    assert not RejectedRecord.objects.filter(pk__in=[r.pk for r in rejects], replayed_in=None)


def test_replaying_twice_creates_no_second_event(
    feed: Feed, ingest: Callable[..., FeedRun]
) -> None:
    original = ingest(feed, hub_csv(BAD_DATE))
    reject = original.rejects.get()
    reject.corrected_raw = FIXED_DATE
    reject.save()

    (once,) = execute(rejected_records_replay(rejects=[reject], enqueue=False).runs)
    (twice,) = execute(rejected_records_replay(rejects=[reject], enqueue=False).runs)

    assert (once.events_created, twice.events_created, twice.duplicates) == (1, 0, 1)
    assert twice.duplicate_of == once
    assert TrackingEvent.objects.filter(shipment__tracking_number="TN2").count() == 1


def test_replay_keeps_the_original_header_and_encoding(ingest: Callable[..., FeedRun]) -> None:
    feed = FeedFactory(encoding=Feed.Encoding.GB18030)
    payload = hub_csv("TN5,departed,bad,,黑河,CNHEK,CN,入库,,,rail,").decode().encode("gb18030")
    reject = ingest(feed, payload).rejects.get()
    reject.corrected_raw = "TN5,departed,2026-05-01T09:00:00+08:00,,黑河,CNHEK,CN,入库,,,rail,"
    reject.save()

    (run,) = execute(rejected_records_replay(rejects=[reject], enqueue=False).runs)

    assert run.events_created == 1
    assert TrackingEvent.objects.get(shipment__tracking_number="TN5").description == "入库"


def test_records_without_text_are_skipped_with_a_reason(
    feed: Feed, ingest: Callable[..., FeedRun]
) -> None:
    # A file-level reject has no record text. (This test used a repeated row, which was a
    # reject without raw text until repeats became duplicates only, issue 13 item 7.)
    run = ingest(feed, b"")
    reject = run.rejects.get()
    assert reject.raw == ""
    result = rejected_records_replay(rejects=[reject], enqueue=False)
    assert result.runs == []
    assert result.skipped == [(reject.pk, "no raw text to replay")]


def test_rerunning_a_run_after_fixing_the_mapping_records_the_mapped_code(
    feed: Feed, ingest: Callable[..., FeedRun]
) -> None:
    original = ingest(feed, hub_csv(GOOD, "TN6,GATE-OUT,2026-05-01T10:00:00Z,,,,CN,,,,rail,"))
    assert original.rejected == 1
    Feed.objects.filter(pk=feed.pk).update(code_mapping={"GATE-OUT": "departed"})

    rerun = feed_run_execute(run_id=feed_run_rerun(run_id=original.pk, enqueue=False).pk)

    assert (rerun.events_created, rerun.duplicates, rerun.rejected) == (1, 1, 0)
    assert rerun.duplicate_of == original
    assert original.rejects.get().replayed_in == rerun


def test_the_admin_saves_a_correction_and_replays_it(
    admin_client: Client,
    feed: Feed,
    ingest: Callable[..., FeedRun],
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    reject = ingest(feed, hub_csv(BAD_DATE)).rejects.get()
    url = reverse("admin:warehouses_rejectedrecord_change", args=[reject.pk])
    assert "Save and replay" in admin_client.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url, {"corrected_raw": FIXED_DATE, "_replay": "1"})

    reject.refresh_from_db()
    assert reject.corrected_raw == FIXED_DATE
    assert reject.replayed_in is not None
    assert response["Location"] == reverse(
        "admin:warehouses_feedrun_change", args=[reject.replayed_in.pk]
    )
    assert len(callbacks) == 1  # ingest_run enqueued after commit


def test_the_admin_bulk_action_replays_the_selection(
    admin_client: Client,
    feed: Feed,
    ingest: Callable[..., FeedRun],
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    run = ingest(feed, hub_csv(BAD_DATE, "TN3,departed,yesterday,,,,CN,,,,rail,"))
    ids = list(run.rejects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(
            reverse("admin:warehouses_rejectedrecord_changelist"),
            {"action": "replay", "_selected_action": ids, "index": "0"},
        )
    assert RejectedRecord.objects.filter(pk__in=ids, replayed_in__isnull=False).count() == 2
    assert FeedRun.objects.filter(source=FeedRun.Source.REPLAY).count() == 1


def test_a_running_run_shows_its_progress_and_rate(admin_client: Client, feed: Feed) -> None:
    from datetime import timedelta

    from django.utils import timezone

    run = FeedRun.objects.create(
        feed=feed,
        status=FeedRun.Status.RUNNING,
        records_processed=50_000,
        started_at=timezone.now() - timedelta(seconds=10),
    )
    page = admin_client.get(reverse("admin:warehouses_feedrun_change", args=[run.pk]))
    html = page.content.decode()
    assert "50,000 records processed" in html
    assert "run_progress.js" in html
    data = admin_client.get(reverse("admin:warehouses_feedrun_progress", args=[run.pk])).json()
    assert data["active"] is True
    assert data["records_processed"] == 50_000
    assert 4000 < data["rate"] < 5100
    assert run_progress(run)["status"] == "running"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_in_place_on_a_terminal(feed: Feed) -> None:
    out = FakeTTY()
    progress = Progress(out, total=200)
    run = FeedRun(feed=feed, records_processed=100, events_created=90, rejected=10)
    progress(run)
    run.records_processed = 200
    progress.done(run)
    text = out.getvalue()
    assert text.startswith("\r[###############---------------]  50.0%")
    assert text.endswith("\n")
    assert "\r[##############################] 100.0%" in text


def test_ingest_prints_plain_progress_lines_when_not_a_terminal(
    feed: Feed, settings, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    settings.INGEST_BATCH_SIZE = 2
    path = tmp_path / "five.csv"
    path.write_bytes(hub_csv(*(GOOD.replace("TN1", f"TN{i}") for i in range(5))))
    call_command("ingest", str(path), "--warehouse", feed.warehouse.code, "--feed", feed.code)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(" 40.0%  2 records")
    assert lines[-1].startswith("100.0%  5 records")
    assert not any("\r" in line for line in lines)
