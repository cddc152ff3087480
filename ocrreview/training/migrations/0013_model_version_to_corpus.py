"""Training's foreign keys point at ModelVersion where it now lives (corpus 0028), and training
forgets its own record of the model. Its table stays, now corpus's: nothing is dropped."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0028_model_version_from_training"),
        ("training", "0012_record_older_split_freezes"),
        # Every foreign key to training's ModelVersion points elsewhere before it goes.
        ("transcription", "0005_model_version_in_corpus"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="trainingrun",
                    name="base_model",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="trainingrun",
                    name="result_model",
                    field=models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="training_run",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="promotionevent",
                    name="model_version",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="promotion_events",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="promotionevent",
                    name="parent",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.DeleteModel(name="ModelVersion"),
            ],
            database_operations=[],
        ),
    ]
