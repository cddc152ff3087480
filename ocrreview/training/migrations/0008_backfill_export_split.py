"""Exports made before exports recorded their split (0006) were refused for training, all of
them, after an upgrade. Those built under the collection's current split get it: those made
after it was frozen, or whose last beat came after it; and the last one made before it, whose
build froze it (exports finished before 0004 have no beat). A few rows per collection: one
UPDATE."""

from django.db import migrations

BACKFILL = """
UPDATE training_datasetexport AS export
SET evaluation_split_id = split.id
FROM training_evaluationsplit AS split
WHERE split.collection_id = export.collection_id
  AND export.evaluation_split_id IS NULL
  AND export.status = 'done'
  AND (
    export.created_at >= split.frozen_at
    OR export.heartbeat_at >= split.frozen_at
    OR export.id = (
      SELECT max(froze.id) FROM training_datasetexport AS froze
      WHERE froze.collection_id = split.collection_id
        AND froze.status = 'done'
        AND froze.created_at <= split.frozen_at
    )
  )
"""


class Migration(migrations.Migration):
    dependencies = [("training", "0007_held_out_document")]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop)]
