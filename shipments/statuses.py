"""The event vocabulary: each event code implies a shipment status and a stage.

Pure data, no database: parsers, the normalizer, the recorder's SQL and the API all read it.
The sets of statuses and codes the rules name live here too, so the SQL (through `sql_list`)
and the Python that repeat a rule read one definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import models

_WORD = re.compile(r"[a-z_]+")


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    INFO_RECEIVED = "info_received", "Info received"
    IN_TRANSIT = "in_transit", "In transit"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup", "Available for pickup"
    FAILED_ATTEMPT = "failed_attempt", "Failed attempt"
    DELIVERED = "delivered", "Delivered"
    RETURNED = "returned", "Returned"
    EXCEPTION = "exception", "Exception"
    EXPIRED = "expired", "Expired"


class Stage(models.TextChoices):
    NONE = "", "—"
    FIRST_MILE = "first_mile", "First mile"
    EXPORT_CUSTOMS = "export_customs", "Export customs"
    LINE_HAUL = "line_haul", "Line haul"
    IMPORT_CUSTOMS = "import_customs", "Import customs"
    LAST_MILE = "last_mile", "Last mile"


# code -> (status, stage). An empty status means the code never moves the shipment's status
# (eta_updated only changes the estimate). An empty stage means "keep the stage the shipment had".
EVENT_CODES: dict[str, tuple[str, str]] = {
    "info_received": (Status.INFO_RECEIVED, Stage.FIRST_MILE),
    "warehouse_received": (Status.IN_TRANSIT, Stage.FIRST_MILE),
    "warehouse_dispatched": (Status.IN_TRANSIT, Stage.FIRST_MILE),
    "picked_up": (Status.IN_TRANSIT, Stage.FIRST_MILE),
    "customs_export_submitted": (Status.IN_TRANSIT, Stage.EXPORT_CUSTOMS),
    "customs_export_cleared": (Status.IN_TRANSIT, Stage.EXPORT_CUSTOMS),
    "departed": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "arrived": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "in_transit": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "loaded": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "unloaded": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "border_crossed": (Status.IN_TRANSIT, Stage.LINE_HAUL),
    "customs_import_submitted": (Status.IN_TRANSIT, Stage.IMPORT_CUSTOMS),
    "customs_import_cleared": (Status.IN_TRANSIT, Stage.IMPORT_CUSTOMS),
    "customs_held": (Status.EXCEPTION, Stage.IMPORT_CUSTOMS),
    "customs_rejected": (Status.EXCEPTION, Stage.IMPORT_CUSTOMS),
    "customs_export_held": (Status.EXCEPTION, Stage.EXPORT_CUSTOMS),
    "customs_export_rejected": (Status.EXCEPTION, Stage.EXPORT_CUSTOMS),
    "out_for_delivery": (Status.OUT_FOR_DELIVERY, Stage.LAST_MILE),
    "available_for_pickup": (Status.AVAILABLE_FOR_PICKUP, Stage.LAST_MILE),
    "delivery_failed": (Status.FAILED_ATTEMPT, Stage.LAST_MILE),
    "delivered": (Status.DELIVERED, Stage.LAST_MILE),
    "returning": (Status.RETURNED, Stage.NONE),
    "returned": (Status.RETURNED, Stage.NONE),
    "delayed": (Status.EXCEPTION, Stage.NONE),
    "damaged": (Status.EXCEPTION, Stage.NONE),
    "lost": (Status.EXCEPTION, Stage.NONE),
    "exception": (Status.EXCEPTION, Stage.NONE),
    "eta_updated": ("", Stage.NONE),
}

EVENT_CODE_CHOICES = [(code, code.replace("_", " ")) for code in EVENT_CODES]

# The codes of a parcel going back to its sender.
RETURN_CODES = frozenset({"returning", "returned"})
# After a shipment's first delivery only these codes still count towards its status: another
# delivery (a corrected time) or a return. The recorder's status SQL and its Python twin
# (shipments.recording.status_rules) both read this set.
COUNTED_AFTER_DELIVERY = RETURN_CODES | {"delivered"}

# Statuses a delivery is still expected from: the delivery estimates cover these. An exception
# (e.g. customs held) keeps its estimate: its stage's history includes the parcels that were held
# there and still arrived.
DELIVERY_EXPECTED_STATUSES = (
    Status.INFO_RECEIVED,
    Status.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY,
    Status.AVAILABLE_FOR_PICKUP,
    Status.FAILED_ATTEMPT,
    Status.EXCEPTION,
)
# Of those, the statuses of a parcel on its way as planned: the operations dashboard flags one as
# stale when it stays in its stage longer than that stage usually takes. A failed attempt or an
# exception is not judged against the stage's usual pace (the exceptions queue lists failed
# attempts and customs holds as items of their own kinds).
MOVING_STATUSES = tuple(
    status
    for status in DELIVERY_EXPECTED_STATUSES
    if status not in (Status.FAILED_ATTEMPT, Status.EXCEPTION)
)

STAGE_ORDER = [
    Stage.FIRST_MILE,
    Stage.EXPORT_CUSTOMS,
    Stage.LINE_HAUL,
    Stage.IMPORT_CUSTOMS,
    Stage.LAST_MILE,
]


def status_for(code: str) -> tuple[str, str]:
    """(status, stage) implied by an event code; KeyError for a code outside the vocabulary."""
    status, stage = EVENT_CODES[code]
    return str(status), str(stage)


def sql_list(values: Iterable[str]) -> str:
    """A SQL list literal of vocabulary words, `('a', 'b')`, for a rule's `IN`.

    Only for the constants above (plain lowercase words), never for input.
    """
    words = sorted({str(value) for value in values})
    if not words or not all(_WORD.fullmatch(word) for word in words):
        raise ValueError(f"not a list of vocabulary words: {words!r}")
    return "(" + ", ".join(f"'{word}'" for word in words) + ")"
