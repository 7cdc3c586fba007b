"""Two beats at once: every scheduled task sent twice, nothing done twice."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.conftest import record
from tests.faults.hub import Hub
from tests.faults.payloads import hub_csv, tracking_numbers
from tests.faults.receiver import Receiver
from tests.faults.services import wait_until

pytestmark = pytest.mark.faults

# The inbox is scanned every 5 s here (INBOX_SCAN_EVERY_SECONDS); a file is ingested in seconds.
TWO_BEATS_BOUND = 60.0


def _delivered(hub: Hub) -> int:
    return int(
        hub.value("SELECT count(*) FROM shipments_webhookdelivery WHERE state = 'delivered'")
    )


def test_two_beats_store_every_event_and_send_every_notification_once(
    make_hub: Callable[[str], Hub],
) -> None:
    receiver = Receiver()
    hub = make_hub("two_beats")
    inbox = hub.inbox / "drop"
    inbox.mkdir(parents=True)
    numbers = tracking_numbers("TB", 3 * 2000)
    ids = hub.seed(
        {
            "feeds": [
                {"code": "dropped", "transport": "directory", "source_location": str(inbox)},
                {"code": "pushed"},
            ],
            "shop": {
                "tracking_numbers": numbers[:200],
                "endpoints": [{"name": "ok", "url": receiver.url("ok")}],
            },
        }
    )
    hub.start(beats=2)
    for i in range(3):
        (inbox / f"drop-{i}.csv").write_bytes(hub_csv(numbers[i * 2000 : (i + 1) * 2000]))
    pushed = tracking_numbers("TP", 2000)
    answer = hub.push("pushed", ids["feeds"]["pushed"]["token"], hub_csv(pushed))
    assert answer.status == 202, answer.body
    expected = len(numbers) + len(pushed)
    started = time.monotonic()
    try:
        wait_until(
            lambda: (
                hub.events() == expected
                and not hub.unfinished_runs()
                and _delivered(hub) == 200
                and len(receiver.delivered("/ok")) == 200
            ),
            timeout=TWO_BEATS_BOUND,
            what="every file, push and notification",
            explain=lambda: (
                f"{hub.events()} events, {_delivered(hub)} delivered; " + hub.runs_summary()
            ),
        )
    finally:
        record(
            "two beats",
            expected=expected,
            stored=hub.events(),
            duplicated=hub.duplicated() + receiver.duplicated("/ok"),
            recovered=None,
            note=f"{len(receiver.hits_for('/ok'))} webhook calls for 200 notifications, "
            f"all in {time.monotonic() - started:.0f} s",
        )
        receiver.close()
    assert hub.duplicated() == 0
    assert receiver.duplicated("/ok") == 0
    runs = hub.runs()
    # Each file and the push: one run each (a second beat's scan finds nothing left to take).
    assert sorted(status for _, status, *_ in runs) == ["succeeded"] * 4, runs
