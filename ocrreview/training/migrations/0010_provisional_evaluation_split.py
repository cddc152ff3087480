"""Splits grow while smaller than the gate's minimum (splits.grow). A split frozen before
this migration did not record which documents its exports trained on, so growing it could
measure a model on lines it learnt from: it is sealed as it was."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0008_backfill_export_split"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluationsplit",
            name="sealed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="evaluationsplit",
            name="unit_fallback",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="evaluationsplit",
            name="trained_documents",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="evaluationsplit",
            name="trained_pages",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.CreateModel(
            name="EvaluationSplitChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("frozen", "Frozen"),
                            ("grown", "Grown"),
                            ("redrawn", "Drawn again"),
                        ],
                        max_length=16,
                    ),
                ),
                ("lines_added", models.PositiveIntegerField()),
                ("units_added", models.PositiveIntegerField()),
                ("lines", models.PositiveIntegerField()),
                ("minimum", models.PositiveIntegerField()),
                ("sealed", models.BooleanField(default=False)),
                ("note", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "export",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="training.datasetexport",
                    ),
                ),
                (
                    "split",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="changes",
                        to="training.evaluationsplit",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.RunSQL(
            "UPDATE training_evaluationsplit SET sealed_at = frozen_at", migrations.RunSQL.noop
        ),
    ]
