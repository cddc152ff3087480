"""The readings' foreign keys point at ModelVersion where it now lives (corpus 0028). The
table they reference is the same one: only Django's record of them changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0028_model_version_from_training"),
        ("transcription", "0004_model_fallback"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="hypothesis",
                    name="model_version",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="hypotheses",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="recognitionrequest",
                    name="model_version",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="modelfallback",
                    name="model_version",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="fallback",
                        serialize=False,
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="modelfallback",
                    name="stand_in",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="corpus.modelversion",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
