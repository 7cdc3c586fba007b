"""The database's own cost of storing an ingest's rows, for bench/scale.py: its floor.

An ingest's rate into stored data can only fall short of its rate into an empty database by
what the database itself does differently there. This measures that part alone: the shipments
and events one ingest stored, captured once (binary COPY out of the empty database), are
written back with a plain COPY into each database (the same indexes, foreign keys and
partitions as the pipeline writes to, no Python, no probe, no recompute), alternately, and
deleted again after each. The stored-to-empty ratio of those COPYs is what the table and its
indexes cost as they grow; no recorder writing the same rows can do better.
"""

from __future__ import annotations

import time

import psycopg

_TABLES = ("shipments_shipment", "shipments_trackingevent")


def capture(url: str, below_id: int) -> dict[str, bytes]:
    """The rows of shipments with ids below `below_id` (what ingests stored) and their own
    events, as binary COPY data per table (every column, in the table's order)."""
    queries = {
        "shipments_shipment": f"SELECT * FROM shipments_shipment WHERE id < {below_id}",
        "shipments_trackingevent": "SELECT * FROM shipments_trackingevent"
        f" WHERE shipment_id < {below_id}",
    }
    data: dict[str, bytes] = {}
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for table, query in queries.items():
            chunks = bytearray()
            with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:  # type: ignore[arg-type]
                for chunk in copy:
                    chunks += chunk
            data[table] = bytes(chunks)
    return data


def store_seconds(url: str, data: dict[str, bytes]) -> float:
    """Seconds to COPY the captured rows in and commit (the foreign keys checked at commit)."""
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        for table in _TABLES:
            with cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:  # type: ignore[arg-type]
                copy.write(data[table])
        conn.commit()
        return time.perf_counter() - started
