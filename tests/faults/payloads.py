"""Payloads whose every event is known in advance: one `picked_up` per tracking number."""

from __future__ import annotations

import json
import random

HUB_HEADER = (
    "tracking_number,event_code,event_time,time_zone,location_name,location_code,country,"
    "description,order_number,carrier,transport_mode,unit_id\n"
)


def tracking_numbers(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(start, start + count)]


def hub_csv_row(number: str, description: str = "") -> str:
    return f"{number},picked_up,2026-05-01T09:00:00+08:00,,,,CN,{description},,,,\n"


def hub_csv(numbers: list[str]) -> bytes:
    """One event per number: `len(numbers)` events expected."""
    return (HUB_HEADER + "".join(hub_csv_row(n) for n in numbers)).encode()


def json_line(number: str) -> str:
    return json.dumps(
        {
            "tracking_number": number,
            "event_code": "picked_up",
            "event_time": "2026-05-01T09:00:00+08:00",
            "country": "CN",
        }
    )


# --- poison inputs (issue 12, item 1) ----------------------------------------------------------


def hub_csv_with_nul(numbers: list[str], poison_at: int) -> bytes:
    """A NUL byte in one description; every other row is good."""
    rows = [
        hub_csv_row(n, "fragile\x00glass" if i == poison_at else "") for i, n in enumerate(numbers)
    ]
    return (HUB_HEADER + "".join(rows)).encode()


def random_bytes(size: int, seed: int = 12) -> bytes:
    return random.Random(seed).randbytes(size)


def json_lines_nested(numbers: list[str], poison_at: int, depth: int = 100_000) -> bytes:
    """JSON Lines with one line nested `depth` arrays deep."""
    lines = [json_line(n) for n in numbers]
    lines.insert(poison_at, "[" * depth + "]" * depth)
    return ("\n".join(lines) + "\n").encode()


def json_lines_lone_surrogate(numbers: list[str], poison_at: int) -> bytes:
    r"""JSON Lines where one record's description is the escape `\ud800` (valid JSON text,
    not a valid Unicode string)."""
    lines = [json_line(n) for n in numbers]
    record = json.loads(lines[poison_at])
    lines[poison_at] = json.dumps(record)[:-1] + ', "description": "\\ud800"}'
    return ("\n".join(lines) + "\n").encode()
