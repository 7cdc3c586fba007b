from django.db import migrations, models

# Deleting an endpoint while a relay sends to it: the relay's attempt row (inserted after
# Django's delete collected the endpoint's rows) made the delete fail at commit, and a
# notification the recorder wrote meanwhile did the same. The database removes them itself.
# Django's on_delete=CASCADE stays; it only runs first.
_FOREIGN_KEYS = """
DO $$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT con.conname, rel.relname AS tbl, att.attname AS col, ref.relname AS target
    FROM pg_constraint con
    JOIN pg_class rel ON rel.oid = con.conrelid
    JOIN pg_class ref ON ref.oid = con.confrelid
    JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]
    WHERE con.contype = 'f' AND (rel.relname, att.attname) IN (
      ('shipments_webhookattempt', 'delivery_id'),
      ('shipments_webhookattempt', 'endpoint_id'),
      ('shipments_webhookdelivery', 'endpoint_id'))
  LOOP
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', c.tbl, c.conname);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (%I) REFERENCES %I (id) '
                   'ON DELETE {action} DEFERRABLE INITIALLY DEFERRED NOT VALID',
                   c.tbl, c.conname, c.col, c.target);
    EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', c.tbl, c.conname);
  END LOOP;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("shipments", "0010_event_tz_source_place_bases"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="breaker_open_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="breaker_trips",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="relay_leased_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            _FOREIGN_KEYS.format(action="CASCADE"), _FOREIGN_KEYS.format(action="NO ACTION")
        ),
    ]
