"""An unclear mark, set or taken off, says nothing of a line's text either: a bogus box someone
marked unclear may be deleted or merged away like one they skipped (actions.NOT_TEXT_HISTORY),
its marks going with it in the transaction that names the line. The history of a text is still
never deleted or rewritten."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION review_correction_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.action IN ('skip', 'segment', 'unclear', 'clear')
       AND current_setting('review.removing_line', true) = OLD.line_id::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'review_correction is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
# As migration 0005 made it.
DROP = """
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


class Migration(migrations.Migration):
    dependencies = [("review", "0006_correction_unclear")]

    operations = [migrations.RunSQL(CREATE, DROP)]
