"""A dataset export names the collection and each line's document by their titles cleaned as
names are (corpus/names.py): without the bidi controls that show another title and the
control characters a typed or imported title may hold."""

import json

from ocrreview.corpus.models import Collection, Document
from ocrreview.training.models import DatasetExport
from tests.training.conftest import export_zip
from tests.training.test_exports import export_now


def test_an_export_holds_the_cleaned_titles(letters, alice, reviewed_letters):
    Document.objects.filter(collection=letters, title="Letter 0").update(title="Letter\u202e 0\x07")
    Collection.objects.filter(pk=letters.pk).update(name="Letters\u2066\x1b")
    letters.refresh_from_db()

    export = export_now(letters, alice, formats=["imagefolder"])

    assert export.status == DatasetExport.Status.DONE, export.error
    with export_zip(export) as archive:
        manifest = json.loads(archive.read("export.json"))
        rows = [
            json.loads(raw)
            for name in archive.namelist()
            if name.endswith("metadata.jsonl")
            for raw in archive.read(name).decode().splitlines()
        ]
    assert manifest["collection"] == "Letters"
    assert {row["document"] for row in rows} == {f"Letter {n}" for n in range(6)}
