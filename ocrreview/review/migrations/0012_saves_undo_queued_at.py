"""SavesUndo.queued_at: when an undo's message was last sent, so that a sweep sends it again
when it was lost (saves_undo.requeue_lost). An undo queued before it counts from its start."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0011_correction_import_unclear"),
    ]

    operations = [
        migrations.AddField(
            model_name="savesundo",
            name="queued_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.RunSQL(
            "UPDATE review_savesundo SET queued_at = created_at", migrations.RunSQL.noop
        ),
    ]
