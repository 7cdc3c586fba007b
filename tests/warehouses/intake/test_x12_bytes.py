"""X12 bytes that do not decode are rejected with their offset, never replaced (issue 13)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from tests.conftest import FeedFactory
from warehouses.models import Feed, FeedRun
from warehouses.parsers.base import ParseOptions, Record, RecordError
from warehouses.parsers.x12 import parse

Ingest = Callable[..., FeedRun]

ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240305*0930*U*00401*"
    "000000001*0*P*>~\n"
)


def status_set(control: str, pro: str, name: bytes) -> bytes:
    segments = [
        f"ST*214*{control}".encode(),
        f"B10*{pro}*SHIP{control}*HBCX".encode(),
        b"N1*SH*" + name,
        b"LX*1",
        b"AT7*X4*NS***20240306*0645*CS",
        f"SE*6*{control}".encode(),
    ]
    return b"".join(s + b"~\n" for s in segments)


def interchange(*sets: bytes) -> bytes:
    return (
        ISA.encode()
        + b"GS*QM*S*R*20240305*0930*1*X*004010~\n"
        + b"".join(sets)
        + f"GE*{len(sets)}*1~\nIEA*1*000000001~\n".encode()
    )


def run(data: bytes, encoding: str = "utf-8") -> list[Record | RecordError]:
    return list(parse(io.BytesIO(data), ParseOptions(encoding=encoding)))


def test_a_set_with_undecodable_bytes_is_rejected_naming_the_offset_and_the_next_is_kept() -> None:
    data = interchange(
        status_set("0001", "PRO1", b"HEIHE \xff\xfe LOGISTICS"),
        status_set("0002", "PRO2", "黑河物流".encode()),
    )
    items = run(data)
    (error,) = [i for i in items if isinstance(i, RecordError)]
    # Segments: ISA 1, GS 2, ST 3, B10 4, N1 5 ("N1*SH*HEIHE " is 12 bytes before \xff).
    assert (error.line, error.field) == (5, "N1")
    assert error.reason == (
        "segment 5 (N1): bytes at offset 12 are not valid utf-8; transaction set 0001 rejected"
    )
    assert "N1*SH*HEIHE \\xff\\xfe LOGISTICS~" in error.raw  # shown as the file holds them
    assert "\ufffd" not in error.raw
    records = [i for i in items if isinstance(i, Record)]
    assert [r.tracking_number for r in records] == ["SHIP0002"]  # B10-02
    assert all("\ufffd" not in repr(r) for r in records)


def test_gb18030_bytes_on_a_gb18030_feed_decode_and_invalid_ones_are_rejected() -> None:
    data = interchange(
        status_set("0001", "PRO1", "黑河物流".encode("gb18030")),
        status_set("0002", "PRO2", b"BAD \x80 NAME"),  # 0x80 alone is not GB18030
    )
    items = run(data, "gb18030")
    (error,) = [i for i in items if isinstance(i, RecordError)]
    assert error.reason.startswith("segment 11 (N1): bytes at offset 10 are not valid gb18030")
    (record,) = [i for i in items if isinstance(i, Record)]
    assert record.tracking_number == "SHIP0001"


@pytest.mark.django_db
def test_an_x12_file_in_gb18030_on_an_auto_feed_is_read_as_gb18030(ingest: Ingest) -> None:
    data = interchange(status_set("0001", "PRO1", "黑河物流".encode("gb18030")))
    run_ = ingest(FeedFactory(format=Feed.Format.X12), data)
    assert (run_.encoding, run_.encoding_detected) == ("gb18030", True)
    assert run_.rejects.filter(reason__contains="not valid").count() == 0
