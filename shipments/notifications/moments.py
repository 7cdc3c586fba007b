"""The moments a buyer may be told about, and the SQL that finds them in a batch's changes.

Pure data and SQL text, no models: the recorder's status statement (shipments.recording.
status_rules) embeds `moment_ctes`, so a moment is written in the same statement and transaction
as the status change that caused it, at no extra query.

A moment is decided by the shipment's state after a batch (its status event, status and stage
before and after), not by every event of the batch: a batch holding "held" then "cleared" tells
the buyer the parcel cleared. Each moment is notified at most once per shipment (unique
(shipment, moment)): a second failed attempt is not a second message.
"""

from __future__ import annotations

from django.db import models

from shipments.event_bounds import event_at_recorded
from shipments.statuses import Stage, Status, sql_list


class Moment(models.TextChoices):
    SHIPPED = "shipped", "Shipped (left the origin)"
    CUSTOMS_HELD = "customs_held", "Held by customs"
    CUSTOMS_CLEARED = "customs_cleared", "Cleared import customs"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup", "Available for pickup"
    DELIVERED = "delivered", "Delivered"
    FAILED_ATTEMPT = "failed_attempt", "Delivery attempt failed"
    EXCEPTION = "exception", "Exception"
    RUNNING_LATE = "running_late", "Running late (past the estimate's p80)"


# Sent even in the buyer's night (quiet hours do not hold them).
URGENT_MOMENTS = frozenset({Moment.DELIVERED.value, Moment.EXCEPTION.value})
CUSTOMS_HELD_CODES = ("customs_held", "customs_export_held")
# "Left the origin": the first stage past the first mile (a shipment first heard of later, in
# its line haul, has left it too).
_PAST_ORIGIN = (Stage.EXPORT_CUSTOMS, Stage.LINE_HAUL, Stage.IMPORT_CUSTOMS)
_BY_STATUS = {
    Status.OUT_FOR_DELIVERY: Moment.OUT_FOR_DELIVERY,
    Status.AVAILABLE_FOR_PICKUP: Moment.AVAILABLE_FOR_PICKUP,
    Status.FAILED_ATTEMPT: Moment.FAILED_ATTEMPT,
}


def moment_case(change: str, event: str) -> str:
    """SQL CASE naming the moment of a status-change row `change` (from_status, to_status,
    from_stage, to_stage) whose status event is `event`; NULL when it is none."""
    entered = f"{change}.to_status <> {change}.from_status"
    by_status = "\n".join(
        f"    WHEN {entered} AND {change}.to_status = '{status.value}' THEN '{moment.value}'"
        for status, moment in _BY_STATUS.items()
    )
    return f"""CASE
    WHEN {entered} AND {change}.to_status = '{Status.DELIVERED.value}' THEN 'delivered'
    WHEN {event}.code IN {sql_list(CUSTOMS_HELD_CODES)} THEN 'customs_held'
    WHEN {entered} AND {change}.to_status = '{Status.EXCEPTION.value}' THEN 'exception'
    WHEN {event}.code = 'customs_import_cleared' THEN 'customs_cleared'
{by_status}
    WHEN {change}.to_stage IN {sql_list(_PAST_ORIGIN)}
         AND {change}.from_stage IN ('', '{Stage.FIRST_MILE.value}') THEN 'shipped'
END"""


# Who may be told: a shop's unarchived shipment with a buyer email, notifications on (the
# shipment's choice, else the shop's), the moment chosen by the shop, the email not opted out.
# An unproven claim (docs/claiming.md) hears only of events from its registration on.
ELIGIBLE_SQL = """
    JOIN shipments_shipment s ON s.id = {shipment} AND s.archived_at IS NULL
    JOIN shipments_buyercontact b ON b.shipment_id = s.id AND b.shop_id = s.shop_id
    JOIN shipments_shopnotificationsettings ns ON ns.shop_id = s.shop_id
    WHERE coalesce(b.notify, ns.enabled) AND ns.moments ? {moment}
      AND NOT EXISTS (
          SELECT 1 FROM shipments_notificationoptout o
          WHERE o.shop_id = s.shop_id AND o.email_hash = b.email_hash)
"""


def moment_ctes(changes: str) -> str:
    """CTEs (no leading WITH) writing the moments of CTE `changes` (id, from_status, to_status,
    from_stage, to_stage, event_id, event_at: the event's time, which prunes its read to its
    month, shipments.event_bounds) to the outbox. Defines `notify_moments`."""
    eligible = ELIGIBLE_SQL.format(shipment="nc.id", moment="nc.moment")
    return f"""
notify_candidates AS (
    SELECT c.id, c.event_id, ne.occurred_at AS event_occurred_at,
           {moment_case("c", "ne")} AS moment
    FROM {changes} c LEFT JOIN shipments_trackingevent ne
      ON ne.id = c.event_id AND {event_at_recorded("ne.occurred_at", "c.event_at")}
    -- Uncorrelated, so a one-time test: with no buyer email anywhere (the common case) the
    -- candidates are never built.
    WHERE EXISTS (SELECT 1 FROM shipments_buyercontact b0)
),
notify_moments AS (
    INSERT INTO shipments_notificationmoment AS nm (shipment_id, moment, event_id, created_at)
    SELECT nc.id, nc.moment, nc.event_id, now()
    FROM notify_candidates nc
    {eligible}
      AND nc.moment IS NOT NULL
      -- The event as notify_candidates read it (NULL when none was found: not heard of).
      AND (s.claim_limited_since IS NULL OR nc.event_id IS NULL
           OR nc.event_occurred_at >= s.claim_limited_since)
    ORDER BY nc.id
    ON CONFLICT (shipment_id, moment) DO NOTHING
    RETURNING 1
)"""
