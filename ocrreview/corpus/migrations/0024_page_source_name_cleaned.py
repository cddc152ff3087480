"""Pages stored before uploads cleaned their file names (ingestion.clean_file_name) keep the
control characters, bidi controls and line breaks of the name they were uploaded under: PAGE,
ALTO and TEI wrote U+FFFD for them, and a bidi control showed a name other than it is. They
are cleaned here as an upload's name is now.

The cleaning is copied, not imported: a migration must do what it did when it was written,
whatever clean_file_name becomes, and must not import the app's modules (ingestion pulls in
pypdfium2, Pillow, kraken's XML parser and the models of today, not the migration's state).
"""

import re
import unicodedata

from django.db import migrations

# As ingestion._UNMEANT_IN_NAMES and ._SPACES_IN_NAMES were in corpus 0024.
UNMEANT = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufeff\ufffe\uffff]"
)
SPACES = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
BATCH = 2000


def clean(name: str) -> str:
    return unicodedata.normalize("NFC", UNMEANT.sub("", SPACES.sub(" ", name)))


def clean_source_names(apps, schema_editor):
    Page = apps.get_model("corpus", "Page")
    # Read a batch at a time: a large site holds hundreds of thousands of pages, and all but
    # a few of their names are clean already.
    changed = []
    names = Page.objects.exclude(source_name="").values_list("pk", "source_name")
    for pk, name in names.order_by("pk").iterator(chunk_size=BATCH):
        cleaned = clean(name)
        if cleaned != name:
            changed.append(Page(pk=pk, source_name=cleaned))
        if len(changed) == BATCH:
            Page.objects.bulk_update(changed, ["source_name"])
            changed = []
    Page.objects.bulk_update(changed, ["source_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0023_page_source_name"),
    ]

    operations = [
        # Backwards, nothing to do: the characters dropped are no one's, and the names stay
        # valid for the schema before.
        migrations.RunPython(clean_source_names, migrations.RunPython.noop, elidable=True),
    ]
