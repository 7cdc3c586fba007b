"""Encodings: detected per run (BOM, the format's declaration, UTF-8 else GB18030), stated on
the run, never replaced silently (warehouses/parsers/encodings.py)."""

from __future__ import annotations

import codecs
import io
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from warehouses.ingest.replay import rejected_records_replay
from warehouses.ingest.runs import feed_run_execute
from warehouses.models import Feed, FeedRun, RejectedRecord
from warehouses.parsers import get_declared_encoding
from warehouses.parsers.base import FormatError
from warehouses.parsers.encodings import Decoding, reader, resolve

Ingest = Callable[..., FeedRun]
FIXTURES = Path(__file__).parents[1] / "parsers" / "fixtures"

ROW_HEIHE = "HB1,warehouse_received,2026-05-01T09:00:00+08:00,,黑河保税仓,CNHEK,CN,入库,,,,"
ROW_SUIFENHE = "HB2,departed,2026-05-02T10:00:00+08:00,,绥芬河站,CNSFH,CN,发车,,,rail,"
TEXT = hub_csv(ROW_HEIHE, ROW_SUIFENHE).decode()


def detect(data: bytes, requested: str = "auto", fmt: str = "hub-csv") -> Decoding:
    return resolve(
        lambda: nullcontext(io.BytesIO(data)),
        requested=requested,
        declared=get_declared_encoding(fmt),
    )


# --------------------------------------------------------------------------- detection alone


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.encode("gbk"), "gb18030"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
        (b"tracking_number,event_code\nHB1,picked_up\n", "utf-8"),  # ASCII is UTF-8
    ],
    ids=["utf-8", "gb18030", "gbk", "utf-8 bom", "utf-16-le bom", "utf-16-be bom", "ascii"],
)
def test_auto_detects_the_encoding(data: bytes, expected: str) -> None:
    assert detect(data) == Decoding(expected, detected=True)


def test_an_explicit_encoding_is_used_as_configured() -> None:
    assert detect(TEXT.encode("gb18030"), "utf-8") == Decoding("utf-8", detected=False)
    assert detect(TEXT.encode("utf-8"), "gbk") == Decoding("gb18030", detected=False)


def test_a_utf16_bom_wins_over_an_explicit_encoding() -> None:
    data = codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")
    assert detect(data, "utf-8") == Decoding("utf-16-le", detected=True)


def test_one_corrupt_line_does_not_turn_a_utf8_file_into_gb18030() -> None:
    # 200 lines of UTF-8 Chinese and one stray byte: read as UTF-8, the stray line is rejected;
    # read as GB18030 every Chinese line would be garbled without an error.
    data = (ROW_HEIHE + "\n").encode("utf-8") * 200 + b"HB9,picked_up,\xff\n"
    assert detect(data) == Decoding("utf-8", detected=True)


def test_one_corrupt_line_does_not_turn_a_gb18030_file_into_utf8() -> None:
    data = (ROW_HEIHE + "\n").encode("gb18030") * 200 + b"HB9,picked_up,\xff\n"
    assert detect(data) == Decoding("gb18030", detected=True)


def test_an_edifact_unb_naming_latin1_is_read_as_latin1_not_gb18030() -> None:
    # UNOC = ISO 8859-1. Not valid UTF-8 (é is one byte), and read as GB18030 it would be junk.
    data = "UNB+UNOC:3+SENDER+RECEIVER+240501:0900+1'UNH+1+IFTSTA:D:01A:UN'FTX+AAA+++Café'".encode(
        "latin-1"
    )
    assert detect(data, fmt="edifact") == Decoding("iso8859-1", detected=True)
    # UNOA/UNOB say "ASCII" on anything: the bytes decide.
    unoa = "UNB+UNOA:3+SENDER+RECEIVER+240501:0900+1'FTX+AAA+++黑河'".encode("gb18030")
    assert detect(unoa, fmt="edifact") == Decoding("gb18030", detected=True)


def test_a_ceb_xml_declaration_is_the_encoding() -> None:
    data = '<?xml version="1.0" encoding="GBK"?><ceb:CEB513Message/>'.encode("gbk")
    assert detect(data, fmt="ceb") == Decoding("gb18030", detected=True)


class _Endless(io.RawIOBase):
    """`size` bytes of UTF-8 Chinese CSV made up as they are read; nothing is kept."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.line = (ROW_HEIHE + "\n").encode("utf-8")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        assert (offset, whence) == (0, 0)
        self.left = self.size = getattr(self, "size", self.left)
        return 0

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        size = min(len(buffer), self.left) // len(self.line) * len(self.line)
        if not size:
            size = min(len(buffer), self.left)
        chunk = (self.line * (size // len(self.line) + 1))[:size]
        buffer[:size] = chunk
        self.left -= size
        return size


def test_detection_scans_a_large_payload_in_constant_memory() -> None:
    # 64 MB with a GB18030-only byte at the very end: the whole payload must be scanned
    # (twice), and the peak must stay far below its size.
    stream = io.BufferedReader(_Endless(64 * 1024 * 1024))
    tail = b"\x81\x30\x81\x30\n"  # a GB18030 four-byte character, not UTF-8

    class WithTail(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            self.done = False
            return stream.seek(offset, whence)

        def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
            got = stream.readinto(buffer)
            if got or getattr(self, "done", False):
                return got
            self.done = True
            buffer[: len(tail)] = tail
            return len(tail)

    payload = WithTail()
    tracemalloc.start()
    try:
        decoding = resolve(lambda: nullcontext(payload), requested="auto")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoding == Decoding("gb18030", detected=True)
    assert peak < 16 * 1024 * 1024, peak


def test_utf16_is_handed_to_parsers_as_utf8_with_a_bom() -> None:
    data = codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be")
    got = reader(io.BytesIO(data), Decoding("utf-16-be", detected=True)).read()
    assert got == codecs.BOM_UTF8 + TEXT.encode("utf-8")


def test_bytes_that_are_not_utf16_are_a_format_error_naming_their_offset() -> None:
    # BOM (2 bytes) + "ab" (4 bytes), then a high surrogate with no low one after it.
    data = codecs.BOM_UTF16_LE + "ab".encode("utf-16-le") + b"\x00\xd8" + "c".encode("utf-16-le")
    with pytest.raises(FormatError, match="bytes at offset 6 are not valid utf-16-le"):
        reader(io.BytesIO(data), Decoding("utf-16-le", detected=True)).read()


# --------------------------------------------------------------------------- through the pipeline


def _locations(run: FeedRun) -> list[str]:
    return list(
        TrackingEvent.objects.filter(run=run)
        .order_by("occurred_at")
        .values_list("location_name", flat=True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "encoding"),
    [
        (TEXT.encode("gb18030"), "gb18030"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["gb18030", "utf-8 bom", "utf-16-le bom", "utf-16-be bom"],
)
def test_an_auto_feed_reads_each_encoding_and_states_it_on_the_run(
    ingest: Ingest, payload: bytes, encoding: str
) -> None:
    feed = FeedFactory()
    assert feed.encoding == Feed.Encoding.AUTO  # the default for new feeds
    run = ingest(feed, payload)
    assert (run.status, run.events_created, run.rejected) == (FeedRun.Status.SUCCEEDED, 2, 0)
    assert (run.encoding, run.encoding_detected) == (encoding, True)
    assert _locations(run) == ["黑河保税仓", "绥芬河站"]


@pytest.mark.django_db
def test_a_gb18030_file_on_an_explicit_utf8_feed_rejects_its_lines_naming_offsets(
    ingest: Ingest,
) -> None:
    feed = FeedFactory(encoding=Feed.Encoding.UTF8)
    ascii_row = "HB4,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,\n"
    run = ingest(feed, (TEXT + ascii_row).encode("gb18030"))
    assert (run.status, run.events_created) == (FeedRun.Status.PARTIAL, 1)
    assert (run.encoding, run.encoding_detected) == ("utf-8", False)
    # "HB1,warehouse_received,2026-05-01T09:00:00+08:00,," is 50 bytes, "HB2,departed,…,," 40.
    assert list(
        RejectedRecord.objects.filter(run=run).order_by("line").values_list("line", "reason")
    ) == [
        (2, "bytes at offset 50 are not valid utf-8 (is the file GB18030/GBK?)"),
        (3, "bytes at offset 40 are not valid utf-8 (is the file GB18030/GBK?)"),
    ]


@pytest.mark.django_db
def test_a_utf16_file_with_a_broken_surrogate_keeps_the_lines_before_it(ingest: Ingest) -> None:
    good = codecs.BOM_UTF16_LE + hub_csv(ROW_HEIHE).decode().encode("utf-16-le")
    broken = good + b"\x00\xd8" + "x\n".encode("utf-16-le")
    run = ingest(FeedFactory(), broken)
    assert run.events_created == 1
    reject = RejectedRecord.objects.get(run=run)
    assert reject.reason == f"bytes at offset {len(good)} are not valid utf-16-le"


@pytest.mark.django_db
def test_a_ceb_message_in_utf16_gives_what_its_utf8_original_gives(ingest: Ingest) -> None:
    original = (FIXTURES / "ceb" / "chain_513_status.xml").read_text(encoding="utf-8")
    utf16 = codecs.BOM_UTF16_LE + original.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode(
        "utf-16-le"
    )
    from_utf8 = ingest(FeedFactory(format=Feed.Format.CEB), original.encode("utf-8"))
    from_utf16 = ingest(FeedFactory(format=Feed.Format.CEB), utf16)
    assert from_utf16.encoding == "utf-16-le"
    assert from_utf16.rejected == 0
    fields = ("status", "records", "events_created", "rejected")
    assert [getattr(from_utf16, f) for f in fields] == [getattr(from_utf8, f) for f in fields]


@pytest.mark.django_db
def test_a_replayed_reject_of_a_gb18030_run_is_written_in_gb18030(ingest: Ingest) -> None:
    bad = "HB3,picked_up,yesterday,,黑河,,CN,,,,,"
    run = ingest(FeedFactory(), hub_csv(ROW_HEIHE, bad).decode().encode("gb18030"))
    assert (run.encoding, run.rejected) == ("gb18030", 1)
    reject = run.rejects.get()
    assert reject.raw == bad
    reject.corrected_raw = bad.replace("yesterday", "2026-05-03T08:00:00+08:00")
    reject.save()
    (replay,) = rejected_records_replay(rejects=[reject], enqueue=False).runs
    assert (replay.encoding, replay.encoding_detected) == ("gb18030", False)
    replay = feed_run_execute(run_id=replay.pk)
    assert (replay.status, replay.events_created) == (FeedRun.Status.SUCCEEDED, 1)
    assert _locations(replay) == ["黑河"]


@pytest.mark.django_db
def test_the_admin_run_list_states_the_encoding(ingest: Ingest, client: Client) -> None:
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    detected = ingest(FeedFactory(), TEXT.encode("gb18030"))
    configured = ingest(FeedFactory(encoding=Feed.Encoding.UTF8), hub_csv(ROW_SUIFENHE))
    page = client.get(reverse("admin:warehouses_feedrun_changelist")).content.decode()
    assert f'<td class="field-read_as">{detected.encoding} (detected)</td>' in page
    assert '<td class="field-read_as">utf-8</td>' in page
    assert configured.encoding_detected is False


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), requested=st.sampled_from(["auto", "utf-8", "gb18030"]))
def test_any_bytes_resolve_to_one_stated_encoding_and_read_without_crashing(
    data: bytes, requested: str
) -> None:
    decoding = detect(data, requested)
    assert decoding.encoding in {"utf-8", "gb18030", "utf-16-le", "utf-16-be"}
    try:
        reader(io.BytesIO(data), decoding).read()
    except FormatError as exc:
        assert "are not valid utf-16" in exc.reason
