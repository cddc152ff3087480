"""Re-reads claimed after first readings (services.do_claim): a flag on each request, walked by
an index of its own. Built concurrently: an index built in a transaction would hold every
worker's claims and every upload's queueing for as long as it takes on a queue of millions of
done requests. A build that fails leaves an invalid index, which claims do not use: drop it
and migrate again."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus", "0032_unproven_address"),
        ("transcription", "0005_model_version_in_corpus"),
    ]

    operations = [
        migrations.AddField(
            model_name="recognitionrequest",
            name="reread",
            field=models.BooleanField(db_default=False, default=False),
        ),
        AddIndexConcurrently(
            model_name="recognitionrequest",
            index=models.Index(fields=["status", "reread", "id"], name="recognition_queue_by_kind"),
        ),
    ]
