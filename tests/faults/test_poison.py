"""Each poison input of issue 12 through the worker path: it costs that record, nothing else.

The four payloads are pushed together (one feed each) to one hub; every run must end on its
own within POISON_BOUND, keep every good record and reject the bad one with its line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.faults.conftest import record
from tests.faults.hub import FINAL, Hub
from tests.faults.payloads import (
    hub_csv_with_nul,
    json_lines_lone_surrogate,
    json_lines_nested,
    random_bytes,
    tracking_numbers,
)

pytestmark = pytest.mark.faults

GOOD = 1_000
POISON_AT = 500
POISON_BOUND = 60.0


@dataclass
class Outcome:
    run_id: int
    status: str
    error: str
    stored: int
    duplicated: int
    rejects: list[tuple[int, str, str]]  # line, field, reason
    seconds: float | None


INPUTS = {
    # feed code: (format, payload, good records expected, line of the bad record or None)
    "nul": (
        "hub-csv",
        hub_csv_with_nul(tracking_numbers("PN", GOOD), POISON_AT),
        GOOD - 1,
        POISON_AT + 2,  # after the header line
    ),
    "random": ("hub-csv", random_bytes(256 * 1024), 0, None),
    "nested": (
        "json",
        json_lines_nested(tracking_numbers("PJ", GOOD), POISON_AT),
        GOOD,
        POISON_AT + 1,
    ),
    "surrogate": (
        "json",
        json_lines_lone_surrogate(tracking_numbers("PS", GOOD), POISON_AT),
        GOOD - 1,
        POISON_AT + 1,
    ),
}
NAMES = {
    "nul": "poison: NUL in a hub-csv description",
    "random": "poison: random bytes on a CSV feed",
    "nested": "poison: JSON line nested 100,000 deep",
    "surrogate": "poison: JSON \\ud800",
}


@pytest.fixture(scope="module")
def outcomes(make_module_hub: Callable[[str], Hub]) -> dict[str, Outcome]:
    hub = make_module_hub("poison")
    ids = hub.seed({"feeds": [{"code": code, "format": fmt} for code, (fmt, *_) in INPUTS.items()]})
    hub.start()
    pushed: dict[str, tuple[int, float]] = {}
    for code, (_, payload, _, _) in INPUTS.items():
        answer = hub.push(code, ids["feeds"][code]["token"], payload, name=f"{code}.dat")
        assert answer.status == 202, answer.body
        pushed[code] = (int(answer.body["id"]), time.monotonic())
    finished: dict[str, float] = {}
    deadline = time.monotonic() + POISON_BOUND
    while len(finished) < len(pushed) and time.monotonic() < deadline:
        for code, (run_id, at) in pushed.items():
            status = hub.value("SELECT status FROM warehouses_feedrun WHERE id = %s", [run_id])
            if code not in finished and status in FINAL:
                finished[code] = time.monotonic() - at
        time.sleep(0.2)
    out = {}
    for code, (run_id, _) in pushed.items():
        status, error = hub.rows(
            "SELECT status, error FROM warehouses_feedrun WHERE id = %s", [run_id]
        )[0]
        stored = int(
            hub.value("SELECT count(*) FROM shipments_trackingevent WHERE run_id = %s", [run_id])
        )
        rejects = [
            (int(line), str(field), str(reason))
            for line, field, reason in hub.rows(
                "SELECT line, field, reason FROM warehouses_rejectedrecord WHERE run_id = %s"
                " ORDER BY line",
                [run_id],
            )
        ]
        out[code] = Outcome(
            run_id, status, error, stored, hub.duplicated(), rejects, finished.get(code)
        )
        record(
            NAMES[code],
            expected=INPUTS[code][2],
            stored=stored,
            duplicated=hub.duplicated(),
            recovered=finished.get(code),
            note="" if code in finished else f"run still {status} after {POISON_BOUND:.0f} s",
        )
    return out


def _assert_costs_one_record(outcome: Outcome, good: int, line: int) -> None:
    assert outcome.status == "partial", (outcome.status, outcome.error, outcome.rejects)
    assert outcome.stored == good
    assert outcome.duplicated == 0
    assert [reject[0] for reject in outcome.rejects] == [line], outcome.rejects
    assert all(reason for _, _, reason in outcome.rejects)


def test_a_nul_byte_in_a_description_costs_that_record(outcomes: dict[str, Outcome]) -> None:
    _assert_costs_one_record(outcomes["nul"], GOOD - 1, POISON_AT + 2)


def test_random_bytes_on_a_csv_feed_end_the_run_with_a_reason(
    outcomes: dict[str, Outcome],
) -> None:
    outcome = outcomes["random"]
    assert outcome.status == "failed", (outcome.status, outcome.error, outcome.rejects)
    assert outcome.stored == 0
    assert outcome.error or outcome.rejects, "a failed run says why"


def test_a_json_line_nested_100000_deep_costs_that_line(outcomes: dict[str, Outcome]) -> None:
    _assert_costs_one_record(outcomes["nested"], GOOD, POISON_AT + 1)


def test_a_lone_surrogate_in_json_costs_that_record(outcomes: dict[str, Outcome]) -> None:
    _assert_costs_one_record(outcomes["surrogate"], GOOD - 1, POISON_AT + 1)
