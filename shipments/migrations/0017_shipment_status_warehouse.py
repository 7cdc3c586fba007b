import django.db.models.deletion
from django.db import migrations, models

# One hash join of the shipments to their status events (own or a unit's: by id alone), one
# pass over the events table. A shipment without a status event, or whose status event is gone,
# stays unknown: the dashboard's snapshot looks its event up (none), as before.
# The update trigger is off meanwhile, as in 0016: the new columns are not what a shop's sync
# walk hands out (docs/api-sync.md), and stamping every row would send every shipment again.
# No ANALYZE, as in 0016: autovacuum analyses after a rewrite of every row.
_BACKFILL = """
ALTER TABLE shipments_shipment DISABLE TRIGGER shipments_shipment_change_xid_update;
UPDATE shipments_shipment s
SET status_warehouse_id = e.warehouse_id, status_warehouse_known = true
FROM shipments_trackingevent e
WHERE e.id = s.status_event_id;
ALTER TABLE shipments_shipment ENABLE TRIGGER shipments_shipment_change_xid_update;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("shipments", "0016_shipment_event_bounds"),
        ("warehouses", "0007_encodings"),
    ]

    operations = [
        migrations.AddField(
            model_name="shipment",
            name="status_warehouse",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="warehouses.warehouse",
            ),
        ),
        # db_default: a row a raw INSERT writes without naming it (bench loaders, scripts) is
        # unknown, never wrongly known.
        migrations.AddField(
            model_name="shipment",
            name="status_warehouse_known",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunSQL(_BACKFILL, migrations.RunSQL.noop),
        # After the backfill: it then holds only the rows it could not fill.
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(
                condition=models.Q(
                    ("status_event__isnull", False), ("status_warehouse_known", False)
                ),
                fields=["id"],
                name="shipment_status_wh_unknown",
            ),
        ),
    ]
