from django.db import migrations, models

# One pass over the events grouped by shipment (joined to its shipment for the status event's
# time), not a probe per row. A status event on a unit is not among the shipment's own events:
# those few are looked up by id afterwards. last_event_at is kept by every writer as the latest
# event's time; greatest() only repairs a row some script wrote otherwise, so that the new rule
# (never earlier than an own event) holds from the start.
# The update trigger is off meanwhile: the new columns are not what a shop's sync walk hands
# out (docs/api-sync.md), and stamping every row would send every shipment again.
# No ANALYZE: autovacuum analyses after a rewrite of every row, and on a new (empty) table an
# ANALYZE would record it as empty, so that foreign-key checks planned then scan it.
_BACKFILL = """
ALTER TABLE shipments_shipment DISABLE TRIGGER shipments_shipment_change_xid_update;
UPDATE shipments_shipment s
SET first_event_at = b.first_at, last_event_at = greatest(s.last_event_at, b.last_at),
    status_event_at = b.status_at
FROM (
    SELECT e.shipment_id, min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at,
           max(e.occurred_at) FILTER (WHERE e.id = s0.status_event_id) AS status_at
    FROM shipments_trackingevent e JOIN shipments_shipment s0 ON s0.id = e.shipment_id
    GROUP BY e.shipment_id
) b
WHERE s.id = b.shipment_id;
UPDATE shipments_shipment s
SET status_event_at = (SELECT e.occurred_at FROM shipments_trackingevent e
                       WHERE e.id = s.status_event_id)
WHERE s.status_event_id IS NOT NULL AND s.status_event_at IS NULL;
ALTER TABLE shipments_shipment ENABLE TRIGGER shipments_shipment_change_xid_update;
"""


class Migration(migrations.Migration):
    dependencies = [("shipments", "0015_buyer_notifications")]

    operations = [
        migrations.AddField(
            model_name="shipment",
            name="status_event_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="shipment",
            name="first_event_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(_BACKFILL, migrations.RunSQL.noop),
    ]
