from django.db import migrations
from django.db.models.functions import Now


def segmentations_under_way_are_alive(apps, schema_editor):
    # Else the first sweep after the upgrade would take over every segmentation under way; and
    # a document imported from IIIF still bears its fetch's claim and takeovers.
    Document = apps.get_model("corpus", "Document")
    Document.objects.filter(status="segmenting").update(
        worked_by="", work_alive_at=Now(), work_takeovers=0
    )


class Migration(migrations.Migration):
    """The IIIF fetch's claim becomes the claim of any work on a document: fetching its
    images, or segmenting its pages."""

    dependencies = [
        ("corpus", "0008_iiif_fetch_claim"),
    ]

    operations = [
        migrations.RenameField("document", "fetched_by", "worked_by"),
        migrations.RenameField("document", "fetch_alive_at", "work_alive_at"),
        migrations.RenameField("document", "fetch_takeovers", "work_takeovers"),
        migrations.RunPython(segmentations_under_way_are_alive, migrations.RunPython.noop),
    ]
