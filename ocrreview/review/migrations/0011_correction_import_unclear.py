"""The unclear mark an import restores is recorded in the trail (Correction.Action
IMPORT_UNCLEAR). Like a mark a reviewer set, it says nothing of the line's text: a bogus box
imported marked may be deleted or merged away with it (migration 0007)."""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION review_correction_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.action IN ('skip', 'segment', 'unclear', 'clear', 'import_unclear')
       AND current_setting('review.removing_line', true) = OLD.line_id::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'review_correction is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
# As migration 0007 made it.
DROP = """
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


class Migration(migrations.Migration):
    dependencies = [("review", "0010_saves_undo")]

    operations = [
        migrations.AlterField(
            model_name="correction",
            name="action",
            field=models.CharField(
                choices=[
                    ("accept", "Accepted unchanged"),
                    ("edit", "Edited"),
                    ("pick", "Picked an alternative"),
                    ("skip", "Skipped"),
                    ("revert", "Reverted"),
                    ("import", "Imported as ground truth"),
                    ("segment", "Changed the segmentation"),
                    ("unclear", "Marked unclear"),
                    ("clear", "Removed the unclear mark"),
                    ("import_unclear", "Imported marked unclear"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
