from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0005_line_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="iiif_canvases",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="document",
            name="iiif_descriptive",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="document",
            name="iiif_manifest",
            field=models.URLField(blank=True, max_length=2000),
        ),
        migrations.AddField(
            model_name="page",
            name="iiif_canvas",
            field=models.URLField(blank=True, max_length=2000),
        ),
        migrations.AlterField(
            model_name="document",
            name="status",
            field=models.CharField(
                choices=[
                    ("uploaded", "Uploaded"),
                    ("fetching", "Fetching images"),
                    ("segmenting", "Segmenting"),
                    ("recognizing", "Recognizing"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                ],
                default="uploaded",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.UniqueConstraint(
                condition=models.Q(("iiif_manifest", ""), _negated=True),
                fields=("collection", "iiif_manifest"),
                name="one_document_per_iiif_manifest",
            ),
        ),
    ]
