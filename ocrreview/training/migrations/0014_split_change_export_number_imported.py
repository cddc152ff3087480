"""A record of the evaluation split keeps the number of the export that made it (export_number)
and says whether the split is an imported dataset's test split (imported). Before, a freeze
recorded with no export was taken for an import, and an export deleted leaves none: the split
it drew then refused to be drawn again, and its history no longer named the export.

An imported split's freeze was always recorded with the note freeze_evaluation_lines (or 0012)
gave it; a freeze without an export and without that note was made by an export since deleted,
whose number is lost."""

from django.db import migrations, models
from django.db.models import F

# The start of the note of every freeze of an imported split, by freeze_evaluation_lines and by
# 0012, as they stood: a migration does what it did when written, whatever the code becomes.
IMPORTED_NOTE = "An imported dataset's own test split"


def record_provenance(apps, schema_editor):
    EvaluationSplitChange = apps.get_model("training", "EvaluationSplitChange")
    # update(): the model's save refuses to change a record.
    EvaluationSplitChange.objects.filter(export__isnull=False).update(export_number=F("export_id"))
    EvaluationSplitChange.objects.filter(
        kind="frozen", export__isnull=True, note__startswith=IMPORTED_NOTE
    ).update(imported=True)


class Migration(migrations.Migration):
    dependencies = [("training", "0013_model_version_to_corpus")]

    operations = [
        migrations.AddField(
            model_name="evaluationsplitchange",
            name="export_number",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="evaluationsplitchange",
            name="imported",
            field=models.BooleanField(default=False, db_default=False),
        ),
        migrations.RunPython(record_provenance, migrations.RunPython.noop),
    ]
