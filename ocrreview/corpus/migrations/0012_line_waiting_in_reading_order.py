from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built beside a live corpus_line of a million rows, which an index built in a
    # transaction would lock against every save for as long as it takes.
    atomic = False

    dependencies = [
        ("corpus", "0011_document_source_sha256"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="line",
            index=models.Index(
                condition=models.Q(("status", "needs_review")),
                fields=["collection", "document", "page", "order"],
                name="waiting_in_reading_order",
            ),
        ),
    ]
