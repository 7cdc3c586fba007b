"""Two beats at once, and a worker killed mid-relay: nothing twice, nothing lost."""

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
# A relay killed mid-send leaves its claimed rows leased; they go out again when the lease ends.
RELAY_BOUND = 120.0


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


def test_a_worker_killed_mid_relay_sends_every_notification_under_its_id(
    make_hub: Callable[[str], Hub],
) -> None:
    receiver = Receiver()
    hub = make_hub("relay_kill")
    numbers = tracking_numbers("RK", 10)
    ids = hub.seed(
        {
            "feeds": [{"code": "pushed"}],
            "shop": {
                "tracking_numbers": numbers,
                "endpoints": [{"name": "slow", "url": receiver.url("slow")}],
            },
        }
    )
    hub.start()
    answer = hub.push("pushed", ids["feeds"]["pushed"]["token"], hub_csv(numbers))
    assert answer.status == 202, answer.body
    wait_until(lambda: receiver.arrivals.get("/slow"), timeout=60, what="the relay's first send")
    worker = hub.webhook_worker()
    worker.kill_group()
    killed = time.monotonic()
    hub.restart(worker)
    try:
        wait_until(
            lambda: (
                _delivered(hub) == len(numbers) and len(receiver.delivered("/slow")) == len(numbers)
            ),
            timeout=RELAY_BOUND,
            what="every notification delivered after the relay's worker was killed",
        )
        recovered: float | None = time.monotonic() - killed
    except AssertionError:
        recovered = None
        raise
    finally:
        record(
            "worker killed mid-relay, restarted",
            expected=len(numbers),
            stored=min(_delivered(hub), len(receiver.delivered("/slow"))),
            duplicated=receiver.duplicated("/slow"),
            recovered=recovered,
            note=f"{len(receiver.hits_for('/slow'))} calls for {len(numbers)} notifications",
        )
        receiver.close()
    assert receiver.duplicated("/slow") == 0
    assert hub.events() == len(numbers)
    assert [status for _, status, *_ in hub.runs()] == ["succeeded"], hub.runs()
