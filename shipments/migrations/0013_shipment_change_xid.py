from django.db import migrations, models

# Every write to a shipment row, from the ORM or the recorder's bulk SQL, stamps it with the
# writing transaction's id (xid8, as bigint): the shops' list walks changes in that order and
# hands out rows only below the oldest running transaction, so a transaction that commits
# later than a higher one is never skipped (docs/api-sync.md). An UPDATE that changes nothing
# keeps the old stamp.
_TRIGGER = """
CREATE FUNCTION shipments_shipment_change_xid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.change_xid := pg_current_xact_id()::text::bigint;
  RETURN NEW;
END $$;
CREATE TRIGGER shipments_shipment_change_xid_insert
  BEFORE INSERT ON shipments_shipment
  FOR EACH ROW EXECUTE FUNCTION shipments_shipment_change_xid();
CREATE TRIGGER shipments_shipment_change_xid_update
  BEFORE UPDATE ON shipments_shipment
  FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
  EXECUTE FUNCTION shipments_shipment_change_xid();
"""

_DROP = """
DROP TRIGGER shipments_shipment_change_xid_update ON shipments_shipment;
DROP TRIGGER shipments_shipment_change_xid_insert ON shipments_shipment;
DROP FUNCTION shipments_shipment_change_xid();
"""


class Migration(migrations.Migration):
    dependencies = [("shipments", "0012_shipment_claims")]

    operations = [
        migrations.AddField(
            model_name="shipment",
            name="change_xid",
            field=models.BigIntegerField(db_default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(fields=["shop", "change_xid", "id"], name="shipment_shop_change"),
        ),
        migrations.RunSQL(_TRIGGER, _DROP),
    ]
