"""Transports: the watched inbox and HTTP pull against a real local HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from warehouses.ingest.runs import feed_run_execute
from warehouses.models import Feed, FeedRun
from warehouses.sources.http_pull import FetchError
from warehouses.sources.inbox import inbox_collect, inbox_path
from warehouses.sources.schedules import feed_fetch
from warehouses.tasks import fetch_feed

pytestmark = pytest.mark.django_db

PAYLOAD = hub_csv("HTTP001,picked_up,2026-05-01T09:00:00+08:00,,,,CN,,,,,")


class PartnerServer:
    """A partner's HTTP endpoint: serves PAYLOAD with an ETag and records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.status = 200
        self.body = PAYLOAD
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                time.sleep(server.delay)
                if self.headers.get("If-None-Match") == '"v1"':
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("ETag", '"v1"')
                self.send_header("Last-Modified", "Fri, 01 May 2026 01:00:00 GMT")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/export.csv"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def partner(settings: Any) -> Iterator[PartnerServer]:
    # The partner is a local server: allowed only because the setting says so.
    settings.FEED_ALLOW_PRIVATE_TARGETS = True
    server = PartnerServer()
    yield server
    server.httpd.shutdown()


def http_feed(url: str, **kw: object) -> Feed:
    return FeedFactory(transport=Feed.Transport.HTTP, source_location=url, **kw)


def test_http_pull_ingests_then_uses_a_conditional_get(
    partner: PartnerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_SECRET_PARTNER_A", "Bearer s3cret")
    feed = http_feed(partner.url, auth_secret_name="partner_a")
    (run,) = feed_fetch(feed_id=feed.pk)
    feed_run_execute(run_id=run.pk)
    assert TrackingEvent.objects.count() == 1
    assert partner.requests[0]["Authorization"] == "Bearer s3cret"
    assert feed_fetch(feed_id=feed.pk) == []  # 304: nothing new
    assert partner.requests[1]["If-None-Match"] == '"v1"'
    assert partner.requests[1]["If-Modified-Since"] == "Fri, 01 May 2026 01:00:00 GMT"
    assert FeedRun.objects.count() == 1


def test_http_pull_errors_are_precise(partner: PartnerServer, settings: object) -> None:
    partner.status = 503
    feed = http_feed(partner.url)
    with pytest.raises(FetchError, match="HTTP 503"):
        feed_fetch(feed_id=feed.pk)
    partner.status = 200
    settings.INGEST_MAX_PAYLOAD_BYTES = 10  # type: ignore[attr-defined]
    with pytest.raises(FetchError, match="exceeds the limit"):
        feed_fetch(feed_id=feed.pk)
    settings.INGEST_MAX_PAYLOAD_BYTES = 10**6  # type: ignore[attr-defined]
    settings.HTTP_FETCH_TIMEOUT = 0.3  # type: ignore[attr-defined]
    partner.delay = 1.0
    with pytest.raises(FetchError, match="timed out"):
        feed_fetch(feed_id=feed.pk)


def test_a_missing_secret_is_reported_not_sent_empty(partner: PartnerServer) -> None:
    feed = http_feed(partner.url, auth_secret_name="nobody")
    with pytest.raises(FetchError, match="FEED_SECRET_NOBODY is not set"):
        feed_fetch(feed_id=feed.pk)
    assert partner.requests == []


def test_the_inbox_takes_each_file_once_and_moves_it_aside(tmp_path: Path, settings: Any) -> None:
    settings.INBOX_ROOT = tmp_path
    feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location=str(tmp_path))
    (tmp_path / "a.csv").write_bytes(PAYLOAD)
    (tmp_path / ".b.csv").write_bytes(PAYLOAD)  # still being written by the partner
    runs = inbox_collect(feed=feed)
    assert [r.original_name for r in runs] == ["a.csv"]
    assert not (tmp_path / "a.csv").exists()
    assert len(list((tmp_path / "processed").iterdir())) == 1
    assert inbox_collect(feed=feed) == []
    (tmp_path / "again.csv").write_bytes(PAYLOAD)  # the same content under another name
    (again,) = inbox_collect(feed=feed)
    assert again.status == FeedRun.Status.DUPLICATE


def test_a_file_left_in_processing_by_a_dead_worker_is_picked_up_later(
    tmp_path: Path, settings: Any
) -> None:
    settings.INBOX_ROOT = tmp_path
    feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location=str(tmp_path))
    (tmp_path / "processing").mkdir()
    orphan = tmp_path / "processing" / "orphan.csv"
    orphan.write_bytes(PAYLOAD)
    assert inbox_collect(feed=feed, stale_after=3600) == []
    (run,) = inbox_collect(feed=feed, stale_after=0)
    assert run.original_name == "orphan.csv"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # the hub's own admin, Redis, PostgreSQL
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
        "[2002:7f00:1::1]",  # 6to4 carrying 127.0.0.1
        "[64:ff9b::a9fe:a9fe]",  # NAT64 carrying 169.254.169.254 (cloud metadata)
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo carrying a client 127.0.0.1
        "169.254.169.254",
        "10.0.0.5",
    ],
)
def test_an_http_pull_feed_is_refused_a_private_target_and_sends_nothing(
    partner: PartnerServer, settings: Any, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    settings.FEED_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setenv("FEED_SECRET_PARTNER_A", "Bearer s3cret")
    port = partner.httpd.server_address[1]
    feed = http_feed(f"http://{address}:{port}/internal-admin", auth_secret_name="partner_a")

    with pytest.raises(FetchError, match=r"refused: .* resolves to a private, loopback"):
        feed_fetch(feed_id=feed.pk)

    assert partner.requests == []  # neither the request nor the secret left the hub
    assert not FeedRun.objects.exists()


def test_a_refused_http_pull_is_a_failed_run_the_operator_sees(
    partner: PartnerServer, settings: Any
) -> None:
    settings.FEED_ALLOW_PRIVATE_TARGETS = False
    feed = http_feed(partner.url)

    with pytest.raises(Retry):
        fetch_feed.apply(args=[feed.pk], throw=True)

    failed = FeedRun.objects.get(feed=feed)
    assert failed.status == FeedRun.Status.FAILED
    assert failed.source == FeedRun.Source.HTTP
    assert f"GET {partner.url} refused: 127.0.0.1 resolves to a private" in failed.error


def test_a_directory_feed_outside_the_inbox_root_is_refused_and_its_files_stay(
    tmp_path: Path, settings: Any
) -> None:
    settings.INBOX_ROOT = tmp_path / "inbox"
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "passwd").write_bytes(b"root:x:0:0")
    for location in (str(elsewhere), "../etc", "partner/../../etc"):
        feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location=location)
        with pytest.raises(FetchError, match="is outside INBOX_ROOT"):
            feed_fetch(feed_id=feed.pk)
    assert (elsewhere / "passwd").read_bytes() == b"root:x:0:0"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["passwd"]


def test_a_directory_feed_names_its_folder_relative_to_the_inbox_root(
    tmp_path: Path, settings: Any
) -> None:
    settings.INBOX_ROOT = tmp_path
    feed = FeedFactory(transport=Feed.Transport.DIRECTORY, source_location="partner-a/exports")
    (tmp_path / "partner-a" / "exports").mkdir(parents=True)
    (tmp_path / "partner-a" / "exports" / "a.csv").write_bytes(PAYLOAD)

    (run,) = inbox_collect(feed=feed)

    assert run.original_name == "a.csv"
    assert inbox_path(feed) == tmp_path.resolve() / "partner-a" / "exports"
