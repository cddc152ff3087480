from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0026_invitation"),
    ]

    operations = [
        # Nullable without a default: PostgreSQL adds it without rewriting the lines' table.
        migrations.AddField(
            model_name="line",
            name="page_view_claim",
            field=models.UUIDField(blank=True, null=True),
        ),
    ]
