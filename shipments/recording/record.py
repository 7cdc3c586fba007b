"""One batch of events recorded: `events_record`, and `events_record_start` for the ingest
worker, which ends the batch with `EventsRecording.copy_unawaited` (shipments.recording.pipelining).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection

from shipments.recording import status_rules
from shipments.recording.inputs import EventInput, RecordResult
from shipments.recording.pipelining import EndUnawaitedWriter
from shipments.recording.prepare import PreparedEvents, copy_tail, events_prepare
from shipments.recording.statements import (
    COPY_EVENTS,
    EXISTING_KEYS,
    INSERT_SHIPMENTS,
    PROBE_DRAWING_SHIPMENTS,
    TOUCH,
    TOUCHED_DDL,
    execute_binary,
)
from shipments.recording.status_rules import ShipmentState
from shipments.recording.upserts import facts_document, shipments_upsert, units_upsert

# COPY data is written in chunks of this many rows.
_COPY_CHUNK = 2000


def _numbered(
    states: Mapping[str, ShipmentState],
    fresh: Sequence[int],
    event_ids: Sequence[int],
    warehouse_id: int | None,
) -> dict[str, ShipmentState]:
    """`states` with their event's id for its index, and its warehouse (the run's, as every
    new event's); none where that event is not new."""
    id_of = dict(zip(fresh, event_ids, strict=True))
    numbered: dict[str, ShipmentState] = {}
    for number, state in states.items():
        if state.status_event_id is None:
            numbered[number] = state
        elif state.status_event_id in id_of:
            # Built directly: dataclasses.replace inspects the fields on every call.
            numbered[number] = ShipmentState(
                state.status,
                state.stage,
                id_of[state.status_event_id],
                state.last_event_at,
                state.stage_entered_at,
                state.first_event_at,
                state.status_event_at,
                warehouse_id,
            )
    return numbered


def _copy_number(value: int | None) -> str:
    return "\\N" if value is None else str(int(value))


@dataclass(slots=True)
class EventsRecording:
    """A batch between its statements and its COPY (see `events_record_start`)."""

    result: RecordResult
    rows: Callable[[], Iterator[str]]
    # With `defer_shipments`: the shipments' upsert and the touched shipments, as a script that
    # runs after the COPY (only `copy_unawaited` sends it).
    deferred: str = ""

    def finish(self) -> RecordResult:
        """Steps 3 and 4 of `events_record`, waiting for each."""
        if self.deferred:
            raise RuntimeError("a recording with deferred shipments is sent by copy_unawaited")
        result = self.result
        if result.created:
            with connection.cursor() as cursor:
                with cursor.copy(COPY_EVENTS) as copy:
                    for chunk in self.rows():
                        copy.write(chunk)
                changes = status_rules.touched_recompute(cursor)
            result.status_changes = changes
        return result

    def copy_unawaited(self) -> tuple[str, bool]:
        """COPY the new events, ending it without waiting; returns the script to send next, and
        whether a COPY was sent (then the script waits for its answer).

        The connection is busy until the COPY's answer is taken; the script (deferred
        shipments, lock, recompute) must then run in the same transaction, before it commits.
        """
        if not self.result.created:
            # Known events only: their facts may still fill a shipment's blanks.
            return self.deferred, False
        with (
            connection.cursor() as cursor,
            # The psycopg cursor itself: Django's debug wrapper (DEBUG, query-count tests) takes
            # no `writer`; the statement is logged below instead.
            cursor.cursor.copy(COPY_EVENTS, writer=EndUnawaitedWriter(cursor.cursor)) as copy,
        ):
            for chunk in self.rows():
                copy.write(chunk)
        if connection.queries_logged:
            connection.queries_log.append({"sql": COPY_EVENTS, "time": "0.000"})
        return self.deferred + status_rules.recompute_script(), True


def events_record(
    *,
    events: Sequence[EventInput],
    feed_id: int | None,
    run_id: int | None,
    warehouse_id: int | None,
    source: str | None = None,
) -> RecordResult:
    """Record a batch of events; call inside a transaction (the caller commits the batch).

    1. Dedupe in Python within the batch and against stored keys (one indexed lookup, which
       also draws the ids of the new events).
    2. Upsert the shipments and units the batch names, getting their ids (one query each); a
       shipment it creates takes its final status from the batch's events. Note which
       shipments the new events touch.
    3. COPY the new events straight into the events table.
    4. Lock the touched shipments it did not create, recompute their status (RECOMPUTE_SQL),
       and record the history and estimates of all of them.

    Re-recording the same events is a no-op. Keys include the source (the feed by default), and
    a feed's runs hold the feed's advisory lock, so no concurrent writer can COPY the same key;
    if a caller breaks that rule the COPY fails on the unique index, the batch's transaction
    rolls back, and the retry finds the keys stored: nothing is duplicated or lost.
    """
    return events_record_start(
        events=events, feed_id=feed_id, run_id=run_id, warehouse_id=warehouse_id, source=source
    ).finish()


def events_record_start(
    *,
    events: Sequence[EventInput],
    feed_id: int | None,
    run_id: int | None,
    warehouse_id: int | None,
    source: str | None = None,
    prepared: PreparedEvents | None = None,
    defer_shipments: bool = False,
) -> EventsRecording:
    """Steps 1 and 2 of `events_record`; the caller finishes with `finish()` or
    `copy_unawaited()`.

    For a caller that sends the end of its transaction without waiting (the warehouses app's
    ingest worker): the result's counts are known before the COPY, so its own statements go
    first. It may pass `prepared` (`events_prepare` of the same events and source), worked out
    earlier. With `defer_shipments` (only with `copy_unawaited`), one statement finds the known
    shipments and draws the new ones' ids; their upsert is sent after the COPY, without waiting,
    instead of before it.
    """
    if not events:
        return EventsRecording(result=RecordResult(), rows=lambda: iter(()))
    if prepared is None or len(prepared.events) != len(events):
        prepared = events_prepare(events=events, feed_id=feed_id, source=source)
    facts = prepared.facts

    connection.ensure_connection()
    # Django's cursors bind parameters client-side (as SQL literals); the big arrays of this
    # path travel faster as binary parameters of a plain psycopg cursor on the same connection
    # (same transaction).
    with connection.cursor() as cursor, psycopg.Cursor(connection.connection) as binary:
        stored: dict[str, tuple[Any, Any]] = {}
        new_ids: list[int] = []
        created: set[int] = set()
        if defer_shipments:
            shipment_ids = _probe_drawing_shipments(
                binary, prepared, stored=stored, new_ids=new_ids, created=created
            )
        else:
            cursor.execute(TOUCHED_DDL)
            _probe_keys(binary, prepared, stored=stored, new_ids=new_ids)
        fresh = [i for i in prepared.candidates if prepared.keys[i] not in stored]
        if len(new_ids) != len(fresh):
            raise RuntimeError(f"{len(new_ids)} event ids drawn for {len(fresh)} new events")
        # Ids in file order, as a COPY would have numbered them (ties in time go to the later).
        new_ids.sort()
        repeats = _repeats(prepared, stored, run_id)
        states = _numbered(prepared.states, fresh, new_ids, warehouse_id)
        deferred: list[str] = []
        if defer_shipments:
            if facts:
                document = facts_document(facts, states, shipment_ids)
                deferred.append(_script_statement(INSERT_SHIPMENTS, {"facts": document}))
        else:
            shipment_ids = shipments_upsert(
                facts=facts, cursor=binary, states=states, inserted=created
            )
        if any(shipment_ids[number] in created for number in facts.keys() - states.keys()):
            # Every event of a shipment the batch created is new (see `shipment_states`).
            raise RuntimeError("a new shipment's status event is not among the batch's new events")
        unit_ids = units_upsert(kinds=prepared.units, cursor=binary)
        # Each new event's subject, and what it touches: the touched shipments depend on the
        # memberships, not on the events, so they are noted before the COPY.
        subjects, touched = _subjects(prepared.events, fresh, new_ids, shipment_ids, unit_ids)
        if fresh:
            touch = touched.arrays(states, shipment_ids, created)
            if defer_shipments:
                arrays = {name: _array_text(values) for name, values in touch.items()}
                deferred += [TOUCHED_DDL.strip(), _script_statement(TOUCH, arrays)]
            else:
                execute_binary(binary, TOUCH, touch)

    result = RecordResult(
        created=len(fresh), duplicates=len(events) - len(fresh), repeated_lines=repeats
    )
    script = "".join(f"{statement.strip()};\n" for statement in deferred)
    rows = _copy_rows(prepared, fresh, subjects, (warehouse_id, feed_id, run_id))
    return EventsRecording(result=result, rows=rows, deferred=script)


def _probe_keys(
    cursor: psycopg.Cursor[Any],
    prepared: PreparedEvents,
    *,
    stored: dict[str, tuple[Any, Any]],
    new_ids: list[int],
) -> None:
    """`EXISTING_KEYS`: fills `stored` (key -> run, line) and `new_ids` (the new events')."""
    first_line = prepared.first_line
    execute_binary(
        cursor,
        EXISTING_KEYS,
        {"keys": " ".join(first_line), "times": _key_times(prepared), "count": len(first_line)},
    )
    for key, run, line, new_id in cursor.fetchall():
        if key is None:
            new_ids.append(new_id)
        else:
            stored[key] = (run, line)


def _key_times(prepared: PreparedEvents) -> str:
    """The occurred_at of each key of `first_line`, in its order (that of `candidates`): the
    probes look a key up in its month's partition only (`_KEY_STORED`)."""
    times = prepared.times
    return " ".join(times[index] for index in prepared.candidates)


def _repeats(
    prepared: PreparedEvents, stored: Mapping[str, tuple[Any, Any]], run_id: int | None
) -> list[tuple[int, int]]:
    """(line, line it repeats), sorted: the batch's own repeats, and its rows that repeat an
    event an earlier batch of the same run stored."""
    repeats = list(prepared.repeats)
    if run_id is not None:
        events, keys = prepared.events, prepared.keys
        for index in prepared.candidates:
            run, line = stored.get(keys[index], (None, None))
            if run == run_id and line != events[index].line:
                repeats.append((events[index].line, int(line)))
    repeats.sort()
    return repeats


@dataclass(slots=True)
class _Touched:
    """What the new events touch: shipments directly (with the span of their new events'
    times), and units at a moment."""

    shipments: dict[int, tuple[datetime, datetime]]
    units: list[tuple[int, datetime]]

    def add(self, shipment_id: int, at: datetime) -> None:
        low, high = self.shipments.get(shipment_id, (at, at))
        self.shipments[shipment_id] = (min(low, at), max(high, at))

    def arrays(
        self, states: Mapping[str, ShipmentState], ids: Mapping[str, int], created: set[int]
    ) -> dict[str, Sequence[int | datetime | None]]:
        """`TOUCH`'s parameters; a shipment the batch created carries its stage's entry."""
        new_shipments = sorted(
            (ids[number], state.stage_entered_at)
            for number, state in states.items()
            if ids[number] in created and ids[number] in self.shipments
        )
        known = sorted(pk for pk in self.shipments if pk not in created)
        return {
            "shipments": known,
            "lows": [self.shipments[pk][0] for pk in known],
            "highs": [self.shipments[pk][1] for pk in known],
            "created": [pk for pk, _ in new_shipments],
            "entered": [at for _, at in new_shipments],
            "units": [unit for unit, _ in self.units],
            "times": [at for _, at in self.units],
        }


def _subjects(
    events: Sequence[EventInput],
    fresh: Sequence[int],
    new_ids: Sequence[int],
    shipment_ids: Mapping[str, int],
    unit_ids: Mapping[str, int],
) -> tuple[list[str], _Touched]:
    """Each new event's COPY columns (id, shipment_id, unit_id), and what they touch."""
    subjects: list[str] = []
    touched = _Touched(shipments={}, units=[])
    for index, event_id in zip(fresh, new_ids, strict=True):
        event = events[index]
        if event.tracking_number:
            shipment_id = shipment_ids[event.tracking_number]
            touched.add(shipment_id, event.occurred_at)
            subjects.append(f"{event_id}\t{shipment_id}\t\\N")
        else:
            unit_id = unit_ids[event.unit_number]
            touched.units.append((unit_id, event.occurred_at))
            subjects.append(f"{event_id}\t\\N\t{unit_id}")
    return subjects, touched


def _copy_rows(
    prepared: PreparedEvents,
    fresh: Sequence[int],
    subjects: Sequence[str],
    provenance: tuple[int | None, int | None, int | None],
) -> Callable[[], Iterator[str]]:
    """The new events' COPY text, in chunks; `provenance` is (warehouse, feed, run)."""
    events, codes, times, keys = prepared.events, prepared.codes, prepared.times, prepared.keys
    tails = prepared.copy_tails

    def rows() -> Iterator[str]:
        fixed = "\t".join(_copy_number(value) for value in provenance)
        chunk: list[str] = []
        for index, subject in zip(fresh, subjects, strict=True):
            tail = tails[index]
            if tail is None:
                # Raises the reason the row cannot be written (see `copy_free_text`).
                tail = copy_tail(events[index], codes[index], times[index], keys[index], "", {})
            chunk.append(f"{subject}\t{fixed}\t{tail}")
            if len(chunk) >= _COPY_CHUNK:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    return rows


def _probe_drawing_shipments(
    cursor: psycopg.Cursor[Any],
    prepared: PreparedEvents,
    *,
    stored: dict[str, tuple[Any, Any]],
    new_ids: list[int],
    created: set[int],
) -> dict[str, int]:
    """`PROBE_DRAWING_SHIPMENTS`: fills `stored` (key -> run, line), `new_ids` (the new
    events') and `created` (the drawn shipment ids); returns tracking number -> shipment id."""
    events = prepared.events
    numbers = sorted(prepared.facts)
    # `first_line` holds the keys of `candidates`, in the same order.
    key_numbers = [events[index].tracking_number or "~" for index in prepared.candidates]
    execute_binary(
        cursor,
        PROBE_DRAWING_SHIPMENTS,
        {
            "keys": " ".join(prepared.first_line),
            "times": _key_times(prepared),
            "key_numbers": " ".join(key_numbers),
            "count": len(prepared.first_line),
            "numbers": " ".join(numbers),
            "numbers_count": len(numbers),
        },
    )
    shipment_ids: dict[str, int] = {}
    drawn: list[int] = []
    for kind, name, run, number in cursor.fetchall():
        if kind == "stored":
            stored[name] = (run, number)
        elif kind == "event":
            new_ids.append(number)
        elif kind == "known":
            shipment_ids[name] = number
        else:
            drawn.append(number)
    missing = [number for number in numbers if number not in shipment_ids]
    if len(drawn) != len(missing):
        raise RuntimeError(f"{len(drawn)} shipment ids drawn for {len(missing)} new shipments")
    drawn.sort()
    shipment_ids.update(zip(missing, drawn, strict=True))
    created.update(drawn)
    return shipment_ids


def _array_text(values: Sequence[int | datetime | None]) -> str:
    """A PostgreSQL array literal of numbers or times (neither needs quoting), None as NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else v.isoformat() if isinstance(v, datetime) else str(int(v))
            for v in values
        )
        + "}"
    )


def _script_statement(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` with its parameters bound client-side, for a script sent without waiting."""
    with psycopg.ClientCursor(connection.connection) as client:
        return client.mogrify(sql, params)
