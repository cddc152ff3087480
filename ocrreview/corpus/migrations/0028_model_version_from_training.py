"""ModelVersion moves from training down to corpus: collections and lines (and the readings in
transcription) name the model that read them, and an app imports only the apps below it.

Only Django's record of the model moves. Its table keeps its name and its rows their keys: the
web and workers of the version before, which an upgrade's migrate runs beside, go on reading
it. transcription 0005 and training 0013 point their foreign keys at corpus's model, and
training 0013 then forgets its own. The content type moves with the model, so that the admin's
history of each version and the permissions given on versions stay theirs."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, source: str, target: str) -> None:
    """As Django's RenameContentType does: a content type of that name already in the target
    app (a stale one) is left for remove_stale_contenttypes to ask about."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    taken = ContentType.objects.using(db).filter(app_label=target, model="modelversion")
    if not taken.exists():
        ContentType.objects.using(db).filter(app_label=source, model="modelversion").update(
            app_label=target
        )
    ContentType.objects.clear_cache()


def forwards(apps, schema_editor) -> None:
    move_content_type(apps, schema_editor, "training", "corpus")


def backwards(apps, schema_editor) -> None:
    move_content_type(apps, schema_editor, "corpus", "training")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("corpus", "0027_line_page_view_claim"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ModelVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, unique=True)),
                        ("source", models.CharField(max_length=500)),
                        ("revision", models.CharField(blank=True, max_length=100)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("training", "Training"),
                                    ("ready", "Ready"),
                                    ("active", "Active"),
                                    ("retired", "Retired"),
                                ],
                                default="ready",
                                max_length=16,
                            ),
                        ),
                        ("metrics", models.JSONField(blank=True, default=dict)),
                        ("calibration", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="children",
                                to="corpus.modelversion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "training_modelversion",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
                migrations.AlterField(
                    model_name="collection",
                    name="model_version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="The model that recognises new lines of this collection.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="active_in_collections",
                        to="corpus.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="line",
                    name="model_version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="The model whose hypotheses the line currently shows.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="corpus.modelversion",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
