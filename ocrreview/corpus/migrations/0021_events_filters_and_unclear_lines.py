from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built beside a live corpus_line of a million rows, which an index built in a
    # transaction would lock against every save for as long as it takes (and the events,
    # which every admin action writes).
    atomic = False

    dependencies = [
        ("corpus", "0020_collectionevent_text_replaced"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="collectionevent",
            index=models.Index(
                fields=["collection", "event_type", "event_time", "id"], name="events_by_type"
            ),
        ),
        AddIndexConcurrently(
            model_name="collectionevent",
            index=models.Index(
                fields=["collection", "acting_user", "event_time", "id"], name="events_by_person"
            ),
        ),
        AddIndexConcurrently(
            model_name="line",
            index=models.Index(
                condition=models.Q(("unclear", True)),
                fields=["collection", "id"],
                name="unclear_lines",
            ),
        ),
    ]
