"""Exports made before exports recorded their split (0006) were refused for training, all of
them, after an upgrade. Those built under the collection's current split get it: their last
beat came after the split was frozen (the first export freezes it while it builds). A few
rows per collection: one UPDATE."""

from django.db import migrations

BACKFILL = """
UPDATE training_datasetexport AS export
SET evaluation_split_id = split.id
FROM training_evaluationsplit AS split
WHERE split.collection_id = export.collection_id
  AND export.evaluation_split_id IS NULL
  AND export.status = 'done'
  AND COALESCE(export.heartbeat_at, export.created_at) >= split.frozen_at
"""


class Migration(migrations.Migration):
    dependencies = [("training", "0007_held_out_document")]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop)]
