"""The database itself refuses UPDATE and DELETE on the correction trail, so
no code path (raw SQL, a bulk update, a shell session) can rewrite history."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION review_correction_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'review_correction is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER review_correction_append_only
    BEFORE UPDATE OR DELETE ON review_correction
    FOR EACH ROW EXECUTE FUNCTION review_correction_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS review_correction_append_only ON review_correction;
DROP FUNCTION IF EXISTS review_correction_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
