# The dedupe key becomes the first 128 bits of the same sha256 (see EventInput.dedupe_key), so
# existing keys convert in place: their first 32 hex digits are the new uuid.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shipments", "0004_delivery_estimates")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    # The varchar_pattern_ops twin Django made for the old CharField cannot
                    # hold a uuid, and no one searches keys by prefix: drop it.
                    """
                    DO $$
                    DECLARE name text;
                    BEGIN
                        FOR name IN SELECT indexname FROM pg_indexes
                            WHERE tablename = 'shipments_trackingevent'
                              AND indexdef LIKE '%(dedupe_key varchar_pattern_ops)%'
                        LOOP
                            EXECUTE format('DROP INDEX %I', name);
                        END LOOP;
                    END $$;
                    ALTER TABLE shipments_trackingevent ALTER COLUMN dedupe_key TYPE uuid
                        USING substr(dedupe_key, 1, 32)::uuid;
                    """,
                    "ALTER TABLE shipments_trackingevent ALTER COLUMN dedupe_key TYPE varchar(64) "
                    "USING replace(dedupe_key::text, '-', '')",
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="trackingevent",
                    name="dedupe_key",
                    field=models.UUIDField(unique=True),
                ),
            ],
        ),
    ]
