"""A split frozen before 0010 has no change history, and a re-draw reads that history to tell
an imported dataset's test split (never drawn again: it is kept as it was published) from one
an export drew: such an imported split could be drawn again. Each gets the 'frozen' record it
would have had.

An export froze a split in its build, under the collection's lock: it was made before the
split was frozen, and it beat after it (its first progress report) or was given the split by
0008, which gave it to the last finished export made before it. A split no export froze was
frozen by an import. An export whose build froze the split and failed before it beat again
(or before 0004, when exports did not beat) is taken for an import: that refuses a re-draw
that was allowed, never the reverse."""

from django.conf import settings
from django.db import migrations
from django.db.models import Q

# splits.BLANK_TEXT as it stood: a migration does what it did when written, whatever the
# app's code becomes.
BLANK_TEXT = r"^[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"

IMPORTED = (
    "An imported dataset's own test split, kept as it was published (no export froze it; "
    "recorded after the fact, as it was frozen before splits recorded their changes)."
)
DRAWN = (
    "Recorded after the fact: frozen before splits recorded their changes, and sealed as it "
    "was, since the exports made under it did not record what they trained on."
)


def record_freezes(apps, schema_editor):
    EvaluationSplit = apps.get_model("training", "EvaluationSplit")
    EvaluationSplitChange = apps.get_model("training", "EvaluationSplitChange")
    DatasetExport = apps.get_model("training", "DatasetExport")
    Line = apps.get_model("corpus", "Line")
    for split in EvaluationSplit.objects.filter(changes=None):
        froze = (
            DatasetExport.objects.filter(
                collection_id=split.collection_id, created_at__lte=split.frozen_at
            )
            .filter(Q(evaluation_split=split) | Q(heartbeat_at__gte=split.frozen_at))
            .order_by("-id")
            .first()
        )
        members = Line.objects.filter(
            pk__in=split.members.values("line"), status="reviewed"
        ).exclude(text__regex=BLANK_TEXT)
        lines = members.count()
        unit = "document_id" if split.unit == "document" else "page_id"
        change = EvaluationSplitChange.objects.create(
            split=split,
            kind="frozen",
            export=froze,
            actor=split.created_by,
            lines_added=lines,
            units_added=members.values(unit).distinct().count(),
            lines=lines,
            minimum=settings.OCRREVIEW_GATE_MIN_LINES,
            sealed=split.sealed_at is not None,
            note=DRAWN if froze is not None else IMPORTED,
        )
        # When it was frozen, so the history reads in order (auto_now_add set it now).
        EvaluationSplitChange.objects.filter(pk=change.pk).update(created_at=split.frozen_at)


class Migration(migrations.Migration):
    dependencies = [("training", "0011_promotion_event_actor_label")]

    operations = [migrations.RunPython(record_freezes, migrations.RunPython.noop)]
