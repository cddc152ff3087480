"""A line that is no line (a bogus box) may be deleted, or merged away, though someone skipped
it or edited its box: those records go with it, and only they, and only in the transaction
that names the line (actions._remove_line). The history of a text is still never deleted or
rewritten, from any code path."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION review_correction_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.action IN ('skip', 'segment')
       AND current_setting('review.removing_line', true) = OLD.line_id::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'review_correction is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
# As migration 0002 made it.
DROP = """
CREATE OR REPLACE FUNCTION review_correction_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'review_correction is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("review", "0004_correction_line_status")]

    operations = [migrations.RunSQL(CREATE, DROP)]
