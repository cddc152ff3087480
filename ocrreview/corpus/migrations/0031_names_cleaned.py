"""Collections, documents, model versions and API tokens named before names were cleaned where
they are entered (names.NameField) keep the control characters, bidi controls and line breaks
typed or imported with them: "Letter to", U+202E, " Anna gpj.exe" showed as another name on
every page that lists it. They are cleaned here as a name entered now is.

A name that is nothing once cleaned is named by its kind and id ("Collection 7"); a collection
or model version whose cleaned name another has already takes its id after it ("Letters (7)"),
or "Letters (7-2)", ... where that is taken too, as names of those are unique.

The cleaning is copied, not imported: a migration must do what it did when it was written,
whatever names.py becomes.
"""

import re
import unicodedata

from django.db import migrations

# As names._UNMEANT_IN_NAMES and ._SPACES_IN_NAMES, and entered_name, were in corpus 0031.
UNMEANT = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufeff\ufffe\uffff]"
)
SPACES = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
BATCH = 2000

# model, field, its max_length, unique, what a name cleaned to nothing becomes (before its id)
NAMED = [
    ("Collection", "name", 200, True, "Collection"),
    ("ModelVersion", "name", 200, True, "Model version"),
    ("Document", "title", 300, False, "Document"),
    ("ApiToken", "name", 100, False, "Token"),
]


def clean(name: str) -> str:
    return unicodedata.normalize("NFC", UNMEANT.sub("", SPACES.sub(" ", name))).strip()


def _taken(Model, field: str, pk: int, name: str) -> bool:
    return Model.objects.filter(**{field: name}).exclude(pk=pk).exists()


def _unique(Model, field: str, max_length: int, pk: int, name: str) -> str:
    if not _taken(Model, field, pk, name):
        return name
    # The name with its id can be taken too (another named "Letters (7)"): then " (7-2)", ...
    tries = 1
    while True:
        suffix = f" ({pk})" if tries == 1 else f" ({pk}-{tries})"
        candidate = name[: max_length - len(suffix)] + suffix
        if not _taken(Model, field, pk, candidate):
            return candidate
        tries += 1


def _clean_model(Model, field: str, max_length: int, unique: bool, kind: str) -> None:
    # Read a batch at a time: a large site holds many documents, nearly all named cleanly.
    changed = []
    rows = Model.objects.values_list("pk", field).order_by("pk")
    for pk, name in rows.iterator(chunk_size=BATCH):
        cleaned = clean(name)[:max_length]
        if cleaned == name:
            continue
        cleaned = cleaned or f"{kind} {pk}"
        if unique:
            # Written at once, so that a later row's check sees the name taken.
            cleaned = _unique(Model, field, max_length, pk, cleaned)
            Model.objects.filter(pk=pk).update(**{field: cleaned})
            continue
        changed.append(Model(pk=pk, **{field: cleaned}))
        if len(changed) == BATCH:
            Model.objects.bulk_update(changed, [field])
            changed = []
    Model.objects.bulk_update(changed, [field])


def clean_names(apps, schema_editor):
    for model, field, max_length, unique, kind in NAMED:
        _clean_model(apps.get_model("corpus", model), field, max_length, unique, kind)


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0030_invitation_not_queued_swept"),
    ]

    operations = [
        # Backwards, nothing to do: the characters dropped are no one's, and the names stay
        # valid for the schema before.
        migrations.RunPython(clean_names, migrations.RunPython.noop, elidable=True),
    ]
