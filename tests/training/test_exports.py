"""Dataset exports: every format from the same lines, provenance, checksums, the frozen
evaluation split, and bad material failing with a message."""

import hashlib
import io
import json
import tracemalloc
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from datasets import load_from_disk
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from lxml import etree

from ocrreview.corpus.models import Document, Line
from ocrreview.corpus.xmlformats import ALTO_NS, PAGE_NS
from ocrreview.training import actions, exports, splits
from ocrreview.training.exports import ExportError, ExportOptions
from ocrreview.training.models import DatasetExport, EvaluationLine, EvaluationSplit
from ocrreview.training.splits import freeze_evaluation_split
from ocrreview.transcription.models import Hypothesis
from tests import factories
from tests.training.conftest import (
    export_bytes,
    export_zip,
    make_rendered_page,
    mark_reviewed,
    succeeded_run,
)


def export_now(collection, user, **options) -> DatasetExport:
    """Create the export row and run the task's body here (the worker path is in test_views)."""
    export = DatasetExport.objects.create(
        collection=collection,
        created_by=user,
        filters=ExportOptions(**options).filters(),
        formats=ExportOptions(**options).formats,
    )
    return actions.run_export(export.pk)


def split_of(export: DatasetExport) -> dict[int, str]:
    with export_zip(export) as archive:
        manifest = json.loads(archive.read("export.json"))
    return {int(pk): name for pk, name in manifest["lines"].items()}


def test_an_export_holds_every_format_with_provenance(
    letters, alice, bob, reviewed_letters, tmp_path
):
    letters.licence = "CC-BY-4.0"
    letters.save()
    version = factories.make_model_version(name="tiny-v1")
    line = reviewed_letters[0]
    Line.objects.filter(pk=line.pk).update(model_version=version, confidence=0.42)
    for rank, (text, confidence) in enumerate([("ab", 0.42), ("a b\x07\x1b", 0.3)]):
        Hypothesis.objects.create(
            line=line,
            model_version=version,
            rank=rank,
            text=text,
            logprob=-1.0,
            confidence=confidence,
            share=0.5,
        )

    export = export_now(letters, alice)

    assert export.status == DatasetExport.Status.DONE, export.error
    assert export.progress == 1.0
    data = export_bytes(export)
    assert hashlib.sha256(data).hexdigest() == export.checksum
    assert export.counts["lines"] == 24
    assert export.counts["train"] + export.counts["validation"] + export.counts["test"] == 24
    assert export.counts["test"] == 4  # one of six documents, frozen

    with export_zip(export) as archive:
        archive.extractall(tmp_path)
    rows = [
        json.loads(raw)
        for name in ("train", "validation", "test")
        for raw in (tmp_path / "imagefolder" / name / "metadata.jsonl").read_text().splitlines()
    ]
    first = next(row for row in rows if row["line_id"] == line.pk)
    assert first["text"] == "ab"
    assert first["reviewer"] == "bob"
    assert first["model_version"] == "tiny-v1"
    assert first["confidence"] == 0.42
    assert first["licence"] == "CC-BY-4.0"
    assert first["document"] == "Letter 0" and first["page"] == 0

    dataset = load_from_disk(str(tmp_path / "hf"))
    assert sum(len(part) for part in dataset.values()) == 24
    sample = dataset["train"][0]
    assert sample["image"].size == (100, 40)
    assert sample["text"] and sample["licence"] == "CC-BY-4.0"
    assert (tmp_path / "parquet" / "train.parquet").stat().st_size > 0

    page_files = sorted((tmp_path / "page").glob("*.xml"))
    assert len(page_files) == 6 and len(list((tmp_path / "page").glob("*.png"))) == 6
    root = etree.parse(str(tmp_path / "page" / f"document-{line.document_id}-page-0001.xml"))
    equivs = root.findall(f".//{{{PAGE_NS}}}TextLine[@id='l{line.pk}']/{{{PAGE_NS}}}TextEquiv")
    assert [(e.get("index"), e.findtext(f"{{{PAGE_NS}}}Unicode")) for e in equivs] == [
        ("0", "ab"),
        ("1", "ab"),
        # Control characters a model can emit have no place in XML; they are marked.
        ("2", "a b\ufffd\ufffd"),
    ]
    assert equivs[2].get("conf") == "0.3000"
    alto = etree.parse(str(tmp_path / "alto" / f"document-{line.document_id}-page-0001.xml"))
    strings = alto.findall(f".//{{{ALTO_NS}}}String")
    assert [s.get("CONTENT") for s in strings] == [w.text for w in reviewed_letters[:4]]
    text = (tmp_path / "text" / f"document-{line.document_id}.txt").read_text()
    assert text.splitlines() == [w.text for w in reviewed_letters[:4]]


def test_the_evaluation_split_is_frozen_by_the_first_export(letters, alice, bob, reviewed_letters):
    first = export_now(letters, alice, seed=3)
    frozen = {pk for pk, name in split_of(first).items() if name == "test"}
    assert len(frozen) == 4
    assert EvaluationSplit.objects.get(collection=letters).members.count() == 4
    assert first.evaluation_split == EvaluationSplit.objects.get(collection=letters)

    # New ground truth arrives: two more documents, and one more line in a frozen document.
    new_lines = []
    for number in (6, 7):
        document = factories.make_document(letters, f"Letter {number}")
        new_lines += make_rendered_page(document, ["ab", "ba"])
    frozen_document = Line.objects.get(pk=min(frozen)).document
    late = make_rendered_page(frozen_document, ["cc"], index=1)
    mark_reviewed(new_lines + late, bob)

    # A different seed and fraction cannot move the frozen lines.
    second = export_now(letters, alice, seed=99, test_fraction=0.5)
    assignment = split_of(second)
    assert {pk for pk, name in assignment.items() if name == "test"} == frozen
    assert assignment[late[0].pk] == "held_out"
    assert {assignment[line.pk] for line in new_lines} <= {"train", "validation"}
    assert second.counts["held_out"] == 1


def test_a_split_frozen_by_page_holds_out_whole_test_documents_in_an_export_by_document(
    letters, alice, bob, reviewed_letters
):
    first = export_now(letters, alice, unit="page")
    frozen = [pk for pk, name in split_of(first).items() if name == "test"]
    test_document = Line.objects.get(pk=frozen[0]).document
    other_page = make_rendered_page(test_document, ["cc", "ab"], index=1)
    mark_reviewed(other_page, bob)

    by_page = split_of(export_now(letters, alice, unit="page"))
    assert {by_page[line.pk] for line in other_page} <= {"train", "validation"}
    by_document = split_of(export_now(letters, alice, unit="document"))
    assert {by_document[line.pk] for line in other_page} == {"held_out"}


def test_train_and_validation_are_reproducible_by_seed(letters, alice, bob, reviewed_letters):
    first = split_of(export_now(letters, alice, seed=5, validation_fraction=0.3))
    again = split_of(export_now(letters, alice, seed=5, validation_fraction=0.3))
    assert first == again
    assert "validation" in first.values()
    # Whole documents stay on one side.
    by_document: dict[int, set[str]] = {}
    for line in reviewed_letters:
        by_document.setdefault(line.document_id, set()).add(first[line.pk])
    assert all(len(sides) == 1 for sides in by_document.values())


def test_auto_accepted_lines_count_only_when_asked_and_confident(letters, alice, bob):
    reviewed = []
    for number in range(3):
        document = factories.make_document(letters, f"Letter {number}")
        reviewed += make_rendered_page(document, ["ab", "ba"])
    mark_reviewed(reviewed, bob)
    document = factories.make_document(letters, "Auto")
    sure, unsure = make_rendered_page(
        document, ["abc", "cab"], status=Line.Status.AUTO_ACCEPTED, confidence=0.99
    )
    Line.objects.filter(pk=unsure.pk).update(confidence=0.5)

    default = export_now(letters, alice)
    assert default.counts["lines"] == 6

    widened = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)
    assert widened.counts["lines"] == 7 and widened.counts["auto_accepted"] == 1
    assert split_of(widened)[sure.pk] == "train"
    assert unsure.pk not in split_of(widened)


def test_auto_accepted_lines_never_validate_nor_test(letters, alice, bob):
    """They are the parent's own readings: validating on them scores it against itself, and
    the calibration fitted there makes it surer of itself."""
    machine_read = []
    for number in range(8):
        document = factories.make_document(letters, f"Letter {number}")
        lines = make_rendered_page(document, ["ab", "ba", "cab", "abc"])
        mark_reviewed(lines[:2], bob)
        Line.objects.filter(pk__in=[line.pk for line in lines[2:]]).update(
            status=Line.Status.AUTO_ACCEPTED, confidence=0.99
        )
        machine_read += lines[2:]
    auto_only = factories.make_document(letters, "Auto")
    machine_read += make_rendered_page(
        auto_only, ["cc", "aa"], status=Line.Status.AUTO_ACCEPTED, confidence=0.99
    )

    export = export_now(
        letters, alice, include_auto_accepted=True, min_confidence=0.9, validation_fraction=0.5
    )

    assignment = split_of(export)
    assert "validation" in assignment.values() and "test" in assignment.values()
    assert {assignment[line.pk] for line in machine_read} == {"train", "held_out"}
    # Beside validation or test lines they are held out, so those documents stay unseen.
    unseen = {
        line.document_id
        for line in Line.objects.filter(pk__in=assignment)
        if assignment[line.pk] in ("validation", "test")
    }
    for line in machine_read:
        assert assignment[line.pk] == ("held_out" if line.document_id in unseen else "train")
    assert auto_only.pk not in unseen


def test_a_person_s_lines_train_beside_machine_read_documents(letters, alice, bob):
    for number in range(2):  # one becomes the frozen test split, one is left
        document = factories.make_document(letters, f"Letter {number}")
        mark_reviewed(make_rendered_page(document, ["ab", "ba"]), bob)
    for number in range(3):
        make_rendered_page(
            factories.make_document(letters, f"Auto {number}"),
            ["cc", "aa"],
            status=Line.Status.AUTO_ACCEPTED,
            confidence=0.99,
        )
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)
    assignment = split_of(export)
    reviewed = Line.objects.filter(status=Line.Status.REVIEWED, pk__in=assignment)
    assert {assignment[line.pk] for line in reviewed} == {"test", "train"}


def test_training_reads_only_reviewed_lines_where_asked(letters, alice, tmp_path):
    """An export made before validation was kept to reviewed lines holds machine-read ones."""
    rows = [("a.png", "ab", "reviewed"), ("b.png", "ba", "auto_accepted")]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        metadata = "".join(
            json.dumps({"file_name": name, "text": text, "status": status}) + "\n"
            for name, text, status in rows
        )
        archive.writestr("imagefolder/validation/metadata.jsonl", metadata)
        for name, _, _ in rows:
            archive.writestr(f"imagefolder/validation/{name}", b"\x89PNG")
    export = DatasetExport.objects.create(
        collection=letters,
        status=DatasetExport.Status.DONE,
        path=default_storage.save("exports/old.zip", ContentFile(buffer.getvalue())),
    )

    every = exports.read_split(export, "validation", tmp_path)
    assert [text for _, text in every.samples] == ["ab", "ba"] and every.machine_read == 1
    reviewed = exports.read_split(export, "validation", tmp_path, reviewed_only=True)
    assert [text for _, text in reviewed.samples] == ["ab"]
    assert (reviewed.machine_read, reviewed.left_out) == (0, 1)


def test_documents_filter(letters, alice, bob, reviewed_letters):
    export_now(letters, alice)  # freezes the split on the whole collection
    chosen = [reviewed_letters[0].document_id, reviewed_letters[4].document_id]
    export = export_now(letters, alice, documents=chosen)
    assert export.counts["documents"] == 2 and export.counts["lines"] == 8


def test_no_ground_truth_fails_with_a_message(letters, alice):
    """Reviewed lines elsewhere let it start (do_start_export refuses a collection with none),
    but none in the documents chosen."""
    document = factories.make_document(letters)
    make_rendered_page(document, ["ab"], status=Line.Status.NEEDS_REVIEW)
    make_rendered_page(factories.make_document(letters), ["cd"], status=Line.Status.REVIEWED)
    export = export_now(letters, alice, documents=[document.pk])
    assert export.status == DatasetExport.Status.FAILED
    assert "no ground-truth lines" in export.error
    assert not export.path


def test_one_document_cannot_be_split(letters, alice, bob):
    document = factories.make_document(letters)
    mark_reviewed(make_rendered_page(document, ["ab", "ba"]), bob)
    export = export_now(letters, alice)
    assert export.status == DatasetExport.Status.FAILED
    assert "at least two documents" in export.error
    assert not EvaluationSplit.objects.exists()


def test_a_corrupt_page_image_fails_the_export_and_names_the_line(
    letters, alice, bob, reviewed_letters
):
    page = reviewed_letters[5].page
    with open(page.image.path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not really")
    export = export_now(letters, alice)
    assert export.status == DatasetExport.Status.FAILED
    assert f"line {reviewed_letters[4].pk}" in export.error
    assert not export.path and not export.checksum
    assert Line.objects.filter(status=Line.Status.REVIEWED).count() == 24  # nothing lost


@pytest.mark.parametrize(
    "options, message",
    [
        ({"formats": ["docx"]}, "unknown export formats: docx"),
        ({"formats": []}, "at least one export format"),
        ({"unit": "word"}, "split unit must be one of"),
        ({"validation_fraction": 1.5}, "validation_fraction must be between 0 and 1"),
        ({"test_fraction": 1.0}, "test_fraction must be between 0 and 1"),
        ({"min_confidence": 1.5}, "min_confidence must be between 0 and 1"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ExportError, match=message):
        ExportOptions(**options)


@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_freeze_one_split(letters, bob, reviewed_letters):
    """The first freeze holds the collection's row lock; the second waits and finds its split."""

    def freeze(seed: int) -> int:
        try:
            return freeze_evaluation_split(letters, seed=seed, fraction=0.3).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(freeze, [1, 2]))
    assert results[0] == results[1]
    assert EvaluationSplit.objects.count() == 1


def test_the_hugging_face_columns_are_written_as_datasets_describes_them():
    """The export writes the features datasets would (without importing it in the worker)."""
    from datasets import Features

    features = Features.from_dict(exports.HF_COLUMNS)
    assert features.to_dict() == exports.HF_COLUMNS
    assert exports.hf_schema().equals(features.arrow_schema, check_metadata=True)


def test_exports_made_before_they_recorded_their_split_get_the_one_they_were_built_under(
    letters, alice, reviewed_letters
):
    """The upgrade's backfill (migration training 0008): without it every earlier export was
    refused for training."""
    import importlib
    from datetime import timedelta

    from django.db import connection

    backfill = importlib.import_module("ocrreview.training.migrations.0008_backfill_export_split")
    before = DatasetExport.objects.create(collection=letters, status="done")
    built = export_now(letters, alice)  # freezes the split while it builds
    split = built.evaluation_split
    DatasetExport.objects.filter(pk=before.pk).update(
        created_at=split.frozen_at - timedelta(days=2),
        heartbeat_at=split.frozen_at - timedelta(days=1),
    )
    later = export_now(letters, alice)
    unfinished = DatasetExport.objects.create(collection=letters, status="failed")
    # Finished before exports beat (0004): the one that froze the split has no beat.
    DatasetExport.objects.filter(pk=built.pk).update(heartbeat_at=None)
    DatasetExport.objects.update(evaluation_split=None)
    with connection.cursor() as cursor:
        cursor.execute(backfill.BACKFILL)
    splits = dict(DatasetExport.objects.values_list("pk", "evaluation_split"))
    expected = {built.pk: split.pk, later.pk: split.pk, before.pk: None, unfinished.pk: None}
    assert splits == expected


def register_of_a_thousand_canvases(collection, bob) -> list[Line]:
    """A document imported from a IIIF manifest of a thousand canvases (some 350 KB of them on
    its row, as a bound register's), two of whose pages are transcribed."""
    register = factories.make_document(
        collection,
        "Register",
        iiif_manifest="https://iiif.example.org/register/manifest",
        iiif_canvases=[
            {
                "id": f"https://iiif.example.org/register/canvas/{n}",
                "label": f"f. {n}r",
                "width": 4000,
                "height": 6000,
                "image": f"https://iiif.example.org/iiif/2/reg%2F{n:05d}.jp2/full/max/0/default.jpg",
                "service": f"https://iiif.example.org/iiif/2/reg%2F{n:05d}.jp2",
                "service_version": 2,
                "service_profile": "level2",
            }
            for n in range(1000)
        ],
    )
    lines = []
    for index in range(2):
        words = ["ab", "ba", "cab", "abc"] * 5
        lines += make_rendered_page(register, words, index=index, status=Line.Status.NEEDS_REVIEW)
    mark_reviewed(lines, bob)
    return lines


def test_exporting_and_measuring_lines_of_a_iiif_register_reads_its_canvases_for_none(
    letters, alice, bob, reviewed_letters
):
    """Each line's row carried its document's canvases: an export of 200 lines of such a
    register took 79 s instead of 5 s, and a chunk of a thousand lines some 300 MB."""
    lines = register_of_a_thousand_canvases(letters, bob)
    tracemalloc.start()
    try:
        export = export_now(letters, alice, formats=["text"])
        _, exporting = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert export.status == DatasetExport.Status.DONE, export.error
    assert export.counts["lines"] == 24 + 40
    split = export.evaluation_split
    EvaluationLine.objects.bulk_create(EvaluationLine(split=split, line=line) for line in lines)
    tracemalloc.start()
    try:
        measured = splits.evaluation_lines(split)
        _, measuring = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert {line.pk for line in lines} <= {line.pk for line in measured}
    assert exporting < 4_000_000 and measuring < 1_000_000, (exporting, measuring)


def test_the_rights_and_attribution_of_a_document_imported_from_iiif_travel_with_its_lines(
    letters, alice, bob, reviewed_letters, tmp_path
):
    """Its line images are copies of the archive's: the rights and the attribution the manifest
    required went nowhere in the dataset, which said only the collection's licence."""
    letters.licence = "CC-BY-4.0"
    letters.save()
    register = factories.make_document(
        letters,
        "Register",
        iiif_manifest="https://iiif.example.org/register/manifest",
        iiif_descriptive={
            "label": {"en": ["Register"]},
            "requiredStatement": {
                "label": {"en": ["Attribution"]},
                "value": {"en": ["Stanford University Archives"]},
            },
            # As manifests often write it: the dataset writes the registry's own (http) URI,
            # as the IIIF export does.
            "rights": "https://rightsstatements.org/vocab/NoC-US/1.0/",
        },
    )
    lines = make_rendered_page(
        register, ["ab", "ba", "cab", "abc"], status=Line.Status.NEEDS_REVIEW
    )
    mark_reviewed(lines, bob)

    export = export_now(letters, alice, formats=["imagefolder", "hf"])

    assert export.status == DatasetExport.Status.DONE, export.error
    with export_zip(export) as archive:
        archive.extractall(tmp_path)
    rows = [
        json.loads(raw)
        for folder in sorted((tmp_path / "imagefolder").iterdir())
        for raw in (folder / "metadata.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 24 + 4
    register_rows = [row for row in rows if row["document_id"] == register.pk]
    uploaded_rows = [row for row in rows if row["document_id"] != register.pk]
    assert {(r["rights"], r["attribution"], r["licence"]) for r in register_rows} == {
        (
            "http://rightsstatements.org/vocab/NoC-US/1.0/",
            "Attribution: Stanford University Archives",
            "CC-BY-4.0",
        )
    }
    assert {(r["rights"], r["attribution"]) for r in uploaded_rows} == {("", "")}
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert manifest["sources"] == {
        str(register.pk): {
            "title": "Register",
            "manifest": "https://iiif.example.org/register/manifest",
            "rights": "http://rightsstatements.org/vocab/NoC-US/1.0/",
            "attribution": "Attribution: Stanford University Archives",
        }
    }
    dataset = load_from_disk(str(tmp_path / "hf"))
    read = [row for part in dataset.values() for row in part if row["document_id"] == register.pk]
    assert {row["attribution"] for row in read} == {"Attribution: Stanford University Archives"}


def test_validation_leaves_out_what_earlier_models_trained_on(
    letters, alice, bob, reviewed_letters
):
    """A model trained on the first export is the next run's base: validated on its own
    training lines, it would choose its checkpoint by lines it knows, and be calibrated on
    them too sure of itself."""
    first = export_now(letters, alice)
    trained = {pk for pk, name in split_of(first).items() if name == "train"}
    known = set(Line.objects.filter(pk__in=trained).values_list("document_id", flat=True))
    assert known and sorted(known) == first.train_documents
    parent = factories.make_model_version(name="parent")
    succeeded_run(factories.make_model_version(name="child", parent=parent), first, alice)
    new = []
    for number in range(6, 10):
        document = factories.make_document(letters, f"Letter {number}")
        new += make_rendered_page(document, ["ab", "cd"], status=Line.Status.NEEDS_REVIEW)
    mark_reviewed(new, bob)

    for seed in range(5):
        second = export_now(letters, alice, seed=seed, validation_fraction=0.5)
        validating = {pk for pk, name in split_of(second).items() if name == "validation"}
        documents = set(
            Line.objects.filter(pk__in=validating).values_list("document_id", flat=True)
        )
        assert documents and not documents & known, seed
        assert (
            "of documents that earlier models trained on train and do not validate"
            in (second.counts["split"]["note"])
        )


def test_pages_earlier_models_trained_on_never_validate_when_validation_is_drawn_by_page(
    letters, alice, bob, reviewed_letters
):
    """Fewer than two documents no model trained on: validation is drawn by page, from the
    pages no model trained on, and a document drawn whole would have taken its trained
    pages with it."""
    first = export_now(letters, alice)
    parent = factories.make_model_version(name="parent")
    succeeded_run(factories.make_model_version(name="child", parent=parent), first, alice)
    new = []
    for document in Document.objects.filter(pk__in=first.train_documents):
        new += make_rendered_page(document, ["ab", "cd"], index=1, status=Line.Status.NEEDS_REVIEW)
    mark_reviewed(new, bob)
    for seed in range(5):
        second = export_now(letters, alice, seed=seed, validation_fraction=0.5)
        validating = {pk for pk, name in split_of(second).items() if name == "validation"}
        pages = set(Line.objects.filter(pk__in=validating).values_list("page_id", flat=True))
        assert pages and not pages & set(first.train_pages), seed
        assert "Validation is drawn by page" in second.counts["split"]["note"]
