"""Step 1 of a batch, in Python and without the database (`events_prepare`).

The dedupe keys, the rows repeated inside the batch, the facts of the shipments it names, the
state of the shipments it may create (shipments.recording.status_rules) and the COPY rows'
text. No query: the ingest worker runs it while the database still works on its previous batch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from django.utils import timezone

from shipments.recording.inputs import EventInput, ShipmentFacts, dedupe_hex
from shipments.recording.status_rules import ShipmentState, shipment_states
from shipments.statuses import EVENT_CODES, status_for

_FREE_COLUMNS = 7
# COPY text format: a backslash, tab, newline or carriage return inside a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_free_text(values: tuple[str, ...]) -> str:
    """The free-text columns of one COPY row, escaped only when a value needs it.

    Joining first and checking the joined text once is much cheaper per row than escaping each
    value; a value holding a tab shows up as one tab too many.
    """
    text = "\t".join(values)
    if (
        text.count("\t") == _FREE_COLUMNS - 1
        and "\\" not in text
        and "\n" not in text
        and "\r" not in text
        and "\x00" not in text
    ):
        return text
    if "\x00" in text:
        # What psycopg's own dumper says; PostgreSQL cannot store the byte in text.
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return "\t".join(value.translate(_COPY_ESCAPES) for value in values)


# code -> (status, stage) as plain strings, looked up once per event.
_STATUS_FOR: dict[str, tuple[str, str]] = {code: status_for(code) for code in EVENT_CODES}


def _extra_json(
    extra: Mapping[str, object], memo: dict[tuple[tuple[str, object], ...], str]
) -> str:
    """`extra` as JSON; the few shapes a batch repeats (a partner code on every row) once each."""
    if not extra:
        return "{}"
    # Only plain string keys and values: 1 and True are equal as dict keys but not as JSON.
    if all(type(key) is str and type(value) is str for key, value in extra.items()):
        key = tuple(extra.items())
        text = memo.get(key)
        if text is None:
            text = memo[key] = json.dumps(extra, ensure_ascii=False)
        return text
    return json.dumps(extra, default=str, ensure_ascii=False)


@dataclass(slots=True)
class PreparedEvents:
    """What `events_prepare` works out without the database."""

    events: Sequence[EventInput]
    times: list[str]
    keys: list[str]
    first_line: dict[str, int]
    repeats: list[tuple[int, int]]
    candidates: list[int]
    codes: list[tuple[str, str]]
    facts: dict[str, ShipmentFacts]
    units: dict[str, str]
    # Per event (candidates only): the COPY row after run_id, or None where writing it must
    # fail in the COPY itself (a NUL byte).
    copy_tails: list[str | None]
    states: dict[str, ShipmentState]


def copy_tail(
    event: EventInput,
    status_stage: tuple[str, str],
    at: str,
    key: str,
    now: str,
    memo: dict[tuple[tuple[str, object], ...], str],
) -> str:
    """One event's COPY row from `code` on (see COPY_EVENTS)."""
    free = copy_free_text(
        (
            event.tz_source,
            event.location_name,
            event.location_code,
            event.country,
            event.description,
            event.raw,
            _extra_json(event.extra, memo),
        )
    )
    status, stage = status_stage
    return (
        f"{event.code}\t{status}\t{stage}\t{at}\t{int(event.utc_offset_minutes)}\t"
        f"{int(event.line)}\t{key}\t{now}\t{free}\n"
    )


def events_prepare(
    *, events: Sequence[EventInput], feed_id: int | None, source: str | None = None
) -> PreparedEvents:
    """The Python half of step 1 of `events_record`: keys, repeats, shipment facts.

    No query: a caller may run it while the database still works on its previous batch.
    """
    source_key = source if source is not None else f"feed:{feed_id}"
    # One isoformat per event serves both the key and the COPY row (PostgreSQL reads it as is).
    times = [event.occurred_at.isoformat() for event in events]
    keys = [dedupe_hex(source_key, event, at) for event, at in zip(events, times, strict=True)]
    first_line: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    candidates: list[int] = []
    for index, key in enumerate(keys):
        seen = first_line.get(key)
        if seen is not None:
            repeats.append((events[index].line, seen))
            continue
        first_line[key] = events[index].line
        candidates.append(index)

    facts: dict[str, ShipmentFacts] = {}
    units: dict[str, str] = {}
    codes = [_STATUS_FOR.get(event.code) or status_for(event.code) for event in events]
    for event, (_, stage) in zip(events, codes, strict=True):
        if event.tracking_number:
            shipment = facts.get(event.tracking_number)
            if shipment is None:
                shipment = facts[event.tracking_number] = ShipmentFacts()
            shipment.add(event, stage)
        elif event.unit_number:
            units[event.unit_number] = units.get(event.unit_number) or event.unit_kind or "other"

    # The COPY text too, while the database may still be busy: the rows are written by hand,
    # since psycopg's write_row adapts every value of every row one by one.
    now = timezone.now().isoformat()
    memo: dict[tuple[tuple[str, object], ...], str] = {}
    tails: list[str | None] = [None] * len(events)
    for index in candidates:
        # A row that cannot be written (a NUL byte) fails in the COPY, as it always did.
        with contextlib.suppress(psycopg.DataError):
            tails[index] = copy_tail(
                events[index], codes[index], times[index], keys[index], now, memo
            )
    states = shipment_states(events, candidates, codes)
    return PreparedEvents(
        events, times, keys, first_line, repeats, candidates, codes, facts, units, tails, states
    )
