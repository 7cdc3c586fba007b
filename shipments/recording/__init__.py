"""The recorder: the only code that writes tracking events, and the status they give shipments.

One call records one batch inside the caller's transaction, in a constant number of queries
(`events_record`):

1. `prepare`: in Python, without the database, the batch's dedupe keys, its repeated rows, the
   facts of the shipments it names and the COPY rows' text.
2. `statements` (one probe): the keys already stored, and ids drawn for the new events; then
   `upserts`: the shipments and units the batch names (a shipment the batch creates is created
   in the state its events give it, by `status_rules.shipment_states`), and the shipments the
   new events touch, directly or through a unit they were inside at that moment.
3. COPY of the new events.
4. `status_rules`: lock the other touched shipments in id order (in its own statement, so the
   recompute sees every event a concurrent batch committed) and recompute them set-based
   (`RECOMPUTE_SQL`), writing history, delivery estimates (`estimates`) and webhook notices.

`record` holds the sequence; `inputs` what the recorder is given. The ingest worker splits the
call (`events_record_start`) to send the COPY's end, the recompute and its COMMIT without
waiting for them (`pipelining`). `shipments_upsert` / `units_upsert`, `shipments_recompute` and
`shipments_reset_eventless` are shared with the other record kinds (the warehouses app's ingest).

The names below are the recorder's public surface: import them from `shipments.recording`.
"""

from __future__ import annotations

from shipments.recording.inputs import EventInput, RecordResult, ShipmentFacts
from shipments.recording.prepare import PreparedEvents, events_prepare
from shipments.recording.record import EventsRecording, events_record, events_record_start
from shipments.recording.status_rules import (
    RECOMPUTE_SQL,
    ShipmentState,
    recompute_script,
    shipments_recompute,
    shipments_reset_eventless,
)
from shipments.recording.upserts import shipments_upsert, units_upsert

__all__ = [
    "RECOMPUTE_SQL",
    "EventInput",
    "EventsRecording",
    "PreparedEvents",
    "RecordResult",
    "ShipmentFacts",
    "ShipmentState",
    "events_prepare",
    "events_record",
    "events_record_start",
    "recompute_script",
    "shipments_recompute",
    "shipments_reset_eventless",
    "shipments_upsert",
    "units_upsert",
]
