"""Datasets back in as ground truth: image folders, saved Hugging Face datasets, an export's
own layout, and bad input that fails whole with the file at fault named."""

import io
import json
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ocrreview.corpus.models import Document, Line, Page
from ocrreview.corpus.xmlimport import parse_layout_xml
from ocrreview.review.models import Correction
from ocrreview.training import splits
from ocrreview.training.imports import (
    DatasetImportError,
    do_import_ground_truth,
    do_import_zip,
    read_dataset,
)
from ocrreview.training.models import EvaluationSplit
from tests import factories
from tests.ingestion import files
from tests.training.conftest import export_bytes, export_zip, make_rendered_page, mark_reviewed
from tests.training.test_exports import export_now, split_of


def test_an_image_folder_becomes_reviewed_lines_with_a_frozen_test_split(
    letters, alice, line_folder
):
    rows = read_dataset(line_folder)
    result = do_import_ground_truth(letters, rows, user=alice, title="lines", freeze_test=True)

    assert len(result.lines) == 32 and len(result.documents) == 8
    assert {d.title for d in result.documents} == {f"p{n}" for n in range(8)}
    line = Line.objects.get(page__image__endswith="00-1.png")
    assert line.text == "ba" and line.status == Line.Status.REVIEWED
    assert line.bbox == [0, 0, 100, 40] and line.page.width == 100
    correction = Correction.objects.get(line=line)
    assert correction.action == Correction.Action.IMPORT and correction.user == alice
    frozen = EvaluationSplit.objects.get(collection=letters)
    assert frozen.members.count() == 8
    assert {line.document.title for line in splits.evaluation_lines(frozen)} == {"p6", "p7"}


def test_an_export_imports_into_another_collection(
    letters, ledgers, alice, bob, reviewed_letters, tmp_path
):
    export = export_now(letters, alice)
    with export_zip(export) as archive:
        archive.extractall(tmp_path / "export")

    from_folder = do_import_ground_truth(
        ledgers, read_dataset(tmp_path / "export" / "imagefolder"), user=bob, title="x"
    )
    # Into a collection of its own: the same lines are imported once into one collection.
    elsewhere = factories.make_collection("Elsewhere")
    from_hf = do_import_ground_truth(
        elsewhere, read_dataset(tmp_path / "export" / "hf"), user=bob, title="x"
    )

    for result in (from_folder, from_hf):
        assert len(result.lines) == 24
        assert sorted(line.text for line in result.lines) == sorted(
            line.text for line in reviewed_letters
        )
        assert {name for name in result.lines_by_split} == {"train", "validation", "test"}
    # Grouped by the export's document column: the six letters come back as six documents.
    assert {d.title for d in from_hf.documents} == {f"Letter {n}" for n in range(6)}


def write_metadata(folder, rows):
    (folder / "metadata.jsonl").write_text("".join(row + "\n" for row in rows))


@pytest.mark.parametrize(
    "rows, message",
    [
        (['{"file_name": "00-0.png", "text": "ab"}', "{not json"], "line 2 is not JSON"),
        (['{"text": "ab"}'], "line 1 has no file_name"),
        (['{"file_name": "missing.png", "text": "ab"}'], "cannot read missing.png"),
        (['{"file_name": "../secret.png", "text": "ab"}'], "names a file outside the folder"),
        (['{"file_name": "00-0.png", "text": 12}'], "00-0.png: no 'text' text"),
        (['{"file_name": "00-0.png", "text": "a\\u0000b"}'], "00-0.png: .* holds a NUL"),
        (['{"file_name": "00-0.png", "text": "a\\ud800"}'], "holds a lone surrogate"),
        (['{"file_name": "00-0.png", "text": "ab", "document": "\\u0000"}'], "holds a NUL"),
        (['{"file_name": "00-0\\u0000.png", "text": "ab"}'], "line 1 names no possible file"),
    ],
)
def test_malformed_metadata_is_refused_with_the_place(line_folder, rows, message):
    write_metadata(line_folder, rows)
    with pytest.raises(DatasetImportError, match=message):
        read_dataset(line_folder)


def test_a_corrupt_image_fails_the_whole_import(letters, alice, line_folder):
    (line_folder / "03-2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rows = read_dataset(line_folder)
    with pytest.raises(DatasetImportError, match="03-2.png: the file is not an image"):
        do_import_ground_truth(letters, rows, user=alice, title="lines")
    assert not Document.objects.exists() and not Page.objects.exists()


def test_a_failed_freeze_leaves_nothing_behind(letters, alice, line_folder, tmp_path):
    do_import_ground_truth(
        letters, read_dataset(line_folder), user=alice, title="lines", freeze_test=True
    )
    media = sorted(p.name for p in (tmp_path / "media").rglob("*.png"))
    others = read_dataset(line_folder)
    for row in others:
        row.text += " (another reading)"  # not the same lines, which are refused before
    with pytest.raises(splits.SplitError, match="already has a frozen evaluation split"):
        do_import_ground_truth(letters, others, user=alice, title="again", freeze_test=True)
    assert Line.objects.count() == 32
    assert sorted(p.name for p in (tmp_path / "media").rglob("*.png")) == media


@pytest.mark.parametrize("split_before", [True, False])
def test_a_test_split_not_frozen_is_held_out_of_training(
    letters, alice, bob, line_folder, split_before
):
    """Trained on, a published test split measures nothing: not here, and not against the
    results others report on it. Where the collection has a frozen split already, it cannot
    become it."""
    if split_before:
        for number in range(2):
            document = factories.make_document(letters, f"Letter {number}")
            mark_reviewed(make_rendered_page(document, ["ab", "ba"]), bob)
        export_now(letters, alice)

    result = do_import_ground_truth(letters, read_dataset(line_folder), user=alice, title="lines")

    assert result.test_held_out == 8
    assert "Its 8 test lines are held out of training and validation" in result.summary()
    assignment = split_of(export_now(letters, alice))
    test_lines = {line.pk for line in result.lines_by_split["test"]}
    # The first export may sample some of them into its frozen split: measured on, not trained.
    assert {assignment[pk] for pk in test_lines} <= {"test", "held_out"}
    assert "held_out" in {assignment[pk] for pk in test_lines}
    trained = {pk for pk, name in assignment.items() if name in ("train", "validation")}
    assert trained and not trained & test_lines


def test_a_dataset_imported_again_is_refused_so_its_frozen_lines_stay_out_of_training(
    letters, alice, line_folder
):
    """Frozen the first time, not the second: the copies would go to train or validation."""
    do_import_ground_truth(
        letters, read_dataset(line_folder), user=alice, title="lines", freeze_test=True
    )
    lines = Line.objects.count()
    with pytest.raises(DatasetImportError, match="already in the collection, as “"):
        do_import_ground_truth(letters, read_dataset(line_folder), user=alice, title="again")
    assert Line.objects.count() == lines


def test_a_dataset_whose_validation_split_copies_its_test_split_is_refused(
    client, letters, alice, line_folder
):
    """Some published sets ship their test lines again as validation: scored on the lines its
    checkpoint was chosen by, a model would look better than it is."""
    rows = [
        {key: value for key, value in json.loads(row).items() if key != "page"}
        for row in (line_folder / "metadata.jsonl").read_text().splitlines()[:4]
    ]
    copied = [{**row, "split": split} for split in ("validation", "test") for row in rows]
    (line_folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in copied))
    client.force_login(alice)
    response = client.post(
        reverse("training_import", args=[letters.pk]),
        {"archive": zipped(line_folder), "text_column": "text"},
    )
    assert response.status_code == 400
    assert (
        "the lines of the validation split and the lines of the test split hold the very same "
        "lines; remove the copy and import again"
    ) in response.content.decode()
    assert not Line.objects.filter(collection=letters).exists()


def test_a_folder_without_metadata_is_refused(tmp_path):
    with pytest.raises(DatasetImportError, match="neither a metadata.jsonl"):
        read_dataset(tmp_path)
    with pytest.raises(DatasetImportError, match="is not a directory"):
        read_dataset(tmp_path / "nope")


def test_rows_without_text_are_skipped_and_an_empty_set_refused(letters, alice, line_folder):
    rows = read_dataset(line_folder)
    for row in rows:
        row.text = ""
    with pytest.raises(DatasetImportError, match="no line with text"):
        do_import_ground_truth(letters, rows, user=alice, title="lines")
    assert json.loads((line_folder / "metadata.jsonl").read_text().splitlines()[0])["text"]


def zipped(folder, arcprefix: str = "") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, arcprefix + path.relative_to(folder).as_posix())
    return SimpleUploadedFile("lines.zip", buffer.getvalue(), content_type="application/zip")


def test_admins_import_a_zipped_folder_from_the_page(client, letters, alice, line_folder):
    client.force_login(alice)
    response = client.post(
        reverse("training_import", args=[letters.pk]),
        {"archive": zipped(line_folder, "lines/"), "text_column": "text", "freeze_test": "on"},
        follow=True,
    )
    assert "Imported 32 lines in 8 documents" in response.content.decode()
    assert Line.objects.filter(collection=letters, status=Line.Status.REVIEWED).count() == 32
    assert EvaluationSplit.objects.get(collection=letters).members.count() == 8


def test_an_export_zip_imports_from_the_page(client, letters, ledgers, alice, reviewed_letters):
    export = export_now(letters, alice)
    staff = factories.make_user("root", staff=True)
    client.force_login(staff)
    upload = SimpleUploadedFile("export.zip", export_bytes(export))
    response = client.post(
        reverse("training_import", args=[ledgers.pk]), {"archive": upload, "text_column": "text"}
    )
    assert response.status_code == 302
    assert Line.objects.filter(collection=ledgers).count() == 24


@pytest.mark.parametrize("who, status", [("bob", 403), ("charlie", 404)])
def test_only_admins_import(client, letters, bob, charlie, line_folder, who, status):
    client.force_login({"bob": bob, "charlie": charlie}[who])
    response = client.post(
        reverse("training_import", args=[letters.pk]),
        {"archive": zipped(line_folder), "text_column": "text"},
    )
    assert response.status_code == status and not Line.objects.exists()


def test_bad_archives_are_refused_with_a_message(client, letters, alice, line_folder):
    client.force_login(alice)
    url = reverse("training_import", args=[letters.pk])
    not_zip = SimpleUploadedFile("lines.zip", b"PK\x03\x04 this is not a zip")
    response = client.post(url, {"archive": not_zip, "text_column": "text"})
    assert response.status_code == 400
    assert "not a readable zip archive" in response.content.decode()

    escaping = zipped(line_folder, "../")
    response = client.post(url, {"archive": escaping, "text_column": "text"})
    assert response.status_code == 400 and "leaves the archive" in response.content.decode()

    response = client.post(url, {"archive": zipped(line_folder), "text_column": "transcript"})
    assert (
        response.status_code == 400
        and "no &#x27;transcript&#x27; text" in response.content.decode()
    )
    assert not Line.objects.exists()


@pytest.mark.parametrize(
    "entry, message",
    [
        ("corrupt.png", "&#x27;corrupt.png&#x27; cannot be unpacked (Error -3 while decompressing"),
        (
            "locked.png",
            "&#x27;locked.png&#x27; is encrypted; zip it again without a password",
        ),
    ],
)
def test_an_unreadable_zip_entry_is_refused_with_its_name(client, letters, alice, entry, message):
    archive = files.zip_with_unreadable_entries(
        {"metadata.jsonl": b'{"file_name": "a.png", "text": "ab"}\n', "a.png": files.png()},
        unreadable=(entry,),
    )
    assert_import_refused(client, letters, alice, archive, message)


def assert_import_refused(client, collection, admin, archive: bytes, message: str) -> None:
    client.force_login(admin)
    response = client.post(
        reverse("training_import", args=[collection.pk]),
        {"archive": SimpleUploadedFile("lines.zip", archive), "text_column": "text"},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Line.objects.exists()


def test_metadata_that_is_not_utf8_is_refused_with_a_hint(line_folder):
    (line_folder / "metadata.jsonl").write_bytes(
        '{"file_name": "00-0.png", "text": "café"}\n'.encode("latin-1")
    )
    with pytest.raises(
        DatasetImportError, match=r"metadata.jsonl is not UTF-8 text \(byte 38\); save it as UTF-8"
    ):
        read_dataset(line_folder)


def test_metadata_saved_with_a_byte_order_mark_is_read(line_folder):
    """Windows Notepad saves UTF-8 with a BOM."""
    metadata = line_folder / "metadata.jsonl"
    metadata.write_bytes(b"\xef\xbb\xbf" + metadata.read_bytes())
    rows = read_dataset(line_folder)
    assert len(rows) == 32 and rows[0].name == "00-0.png"


@pytest.mark.parametrize("folder", ["page", "alto"])
def test_exported_page_and_alto_read_back_through_the_upload_parser(
    letters, alice, reviewed_letters, tmp_path, folder
):
    """PAGE and ALTO come back in through the upload form, whose parser (kraken's) must read
    our files: the same lines, in the same order, with the same text."""
    export = export_now(letters, alice)
    with export_zip(export) as archive:
        archive.extractall(tmp_path)
    line = reviewed_letters[0]
    name = f"document-{line.document_id}-page-0001"
    parsed = parse_layout_xml((tmp_path / folder / f"{name}.xml").read_bytes(), f"{name}.xml")
    assert parsed.image_name == f"{name}.png"
    assert (parsed.width, parsed.height) == (line.page.width, line.page.height)
    assert [imported.text for imported in parsed.lines] == [gt.text for gt in reviewed_letters[:4]]


def test_a_zip_of_large_line_images_is_imported_an_image_at_a_time(letters, alice, tmp_path):
    """The zip is unpacked entry by entry and each image read when it is checked or stored,
    never all of them at once (tracemalloc counts every bytes object Python allocates)."""
    count, size = 6, (1600, 1200)  # some 5.8 MB of PNG each
    rows = [{"file_name": f"{n}.png", "text": "ab", "page": f"p{n % 2}"} for n in range(count)]
    archive = tmp_path / "lines.zip"
    total = files.zip_file(
        archive,
        [(f"lines/{n}.png", lambda n=n: files.noise_png(*size, seed=n)) for n in range(count)]
        + [("lines/metadata.jsonl", lambda: "".join(json.dumps(r) + "\n" for r in rows).encode())],
    )
    tracemalloc.start()
    try:
        with archive.open("rb") as handle:
            result = do_import_zip(letters, handle, user=alice, title="lines")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result.lines) == count and len(result.documents) == 2
    assert {line.page.width for line in result.lines} == {size[0]}
    assert peak < total / 3, f"peak {peak / 2**20:.1f} MiB for {total / 2**20:.1f} MiB of images"


@pytest.mark.parametrize(
    "archive, message",
    [
        (
            files.zip_with_central_directory_patched({"a.png": b"x"}, "version"),
            "not a readable zip archive (zip file version 6.4)",
        ),
        (
            files.zip_with_central_directory_patched({"a.png": b"x"}, "utf8-name"),
            "not a readable zip archive (&#x27;utf-8&#x27; codec",
        ),
        (
            files.zip_of({"lines": b"x", "lines/a.png": files.png()}),
            "&#x27;lines/a.png&#x27; cannot be unpacked (File exists)",
        ),
    ],
    ids=["format-version", "bad-utf8-name", "file-and-folder"],
)
def test_archives_zipfile_refuses_are_refused_with_a_message(
    client, letters, alice, archive, message
):
    assert_import_refused(client, letters, alice, archive, message)


@pytest.mark.parametrize("where", ["state.json", "dataset_dict.json", "top state.json"])
def test_a_saved_dataset_naming_files_outside_itself_is_refused(tmp_path, where):
    """load_from_disk would load the Arrow file of any path it is given as ground truth."""
    from datasets import Dataset, DatasetDict

    Dataset.from_dict({"text": ["private"]}).save_to_disk(tmp_path / "elsewhere" / "train")
    secret = next((tmp_path / "elsewhere" / "train").glob("*.arrow"))
    DatasetDict({"train": Dataset.from_dict({"text": ["ab"]})}).save_to_disk(tmp_path / "hf")
    if where == "state.json":
        state_path = tmp_path / "hf" / "train" / "state.json"
        state = json.loads(state_path.read_text())
        state["_data_files"] = [{"filename": str(secret)}]
        state_path.write_text(json.dumps(state))
        message = f"train/state.json names '{secret}', which is not in the dataset"
    elif where == "dataset_dict.json":
        (tmp_path / "hf" / "dataset_dict.json").write_text('{"splits": ["../elsewhere/train"]}')
        message = "dataset_dict.json names '../elsewhere/train', which is not in the dataset"
    else:  # load_from_disk reads a top folder with a state.json as one dataset, first
        for name in ("state.json", "dataset_info.json"):
            (tmp_path / "hf" / name).write_text(
                (tmp_path / "hf" / "train" / name)
                .read_text()
                .replace("data-00000-of-00001.arrow", str(secret))
            )
        message = f"state.json names '{secret}', which is not in the dataset"
    with pytest.raises(DatasetImportError) as refused:
        read_dataset(tmp_path / "hf")
    assert str(refused.value) == message


def test_a_frozen_test_split_holds_only_the_test_rows_of_a_set_without_pages(
    letters, alice, line_folder
):
    """Without a page or document column every row shared one document, and freezing the
    test rows' document held the training rows out of every export for good."""
    rows = [json.loads(row) for row in (line_folder / "metadata.jsonl").read_text().splitlines()]
    write_metadata(
        line_folder,
        [json.dumps({k: v for k, v in row.items() if k != "page"}) for row in rows],
    )
    result = do_import_ground_truth(
        letters, read_dataset(line_folder), user=alice, title="lines", freeze_test=True
    )

    assert sorted(d.title for d in result.documents) == ["lines (test)", "lines (train)"]
    frozen = splits.evaluation_lines(EvaluationSplit.objects.get(collection=letters))
    assert sorted(line.pk for line in frozen) == sorted(
        line.pk for line in result.lines_by_split["test"]
    )
    export = export_now(letters, alice)
    assert export.counts["train"] + export.counts["validation"] == 24


def test_an_export_does_not_import_back_into_its_own_collection(
    client, letters, alice, reviewed_letters
):
    """Its frozen test lines would come back as new lines, free to be trained on, and the
    gate would score the next model on lines it had seen."""
    export = export_now(letters, alice)
    client.force_login(alice)
    response = client.post(
        reverse("training_import", args=[letters.pk]),
        {"archive": SimpleUploadedFile("e.zip", export_bytes(export)), "text_column": "text"},
    )
    assert response.status_code == 400
    assert "24 rows (such as" in response.content.decode()
    assert "are this collection&#x27;s own lines" in response.content.decode()
    assert Line.objects.filter(collection=letters).count() == 24


def test_an_export_of_the_saved_dataset_alone_imports(letters, ledgers, alice, reviewed_letters):
    export = export_now(letters, alice, formats=["hf"])
    result = do_import_zip(ledgers, io.BytesIO(export_bytes(export)), user=alice, title="x")
    assert len(result.lines) == 24


@pytest.mark.parametrize("listing", ['{"splits": null}', '{"splits": 3}', '{"splits": {"a": 1}}'])
def test_a_saved_dataset_with_a_malformed_listing_is_refused(tmp_path, listing):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict({"text": ["ab"]})}).save_to_disk(tmp_path / "hf")
    (tmp_path / "hf" / "dataset_dict.json").write_text(listing)
    with pytest.raises(DatasetImportError, match="dataset_dict.json: splits is not a list"):
        read_dataset(tmp_path / "hf")


def test_a_saved_dataset_whose_state_lacks_its_keys_is_refused(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict({"text": ["ab"]})}).save_to_disk(tmp_path / "hf")
    state = tmp_path / "hf" / "train" / "state.json"
    state.write_text(json.dumps({"_data_files": json.loads(state.read_text())["_data_files"]}))
    with pytest.raises(DatasetImportError, match="is not a readable saved dataset"):
        read_dataset(tmp_path / "hf")


def test_auto_accepted_lines_of_an_export_are_not_imported_as_ground_truth(
    client, letters, ledgers, alice, reviewed_letters, model_version
):
    """A model's reading would come back as a person's, fit for the evaluation split."""
    document = factories.make_document(letters, status=Document.Status.READY)
    factories.make_read_line(
        factories.make_page(document),
        0,
        [("machine text", 0.99)],
        model_version,
        status=Line.Status.AUTO_ACCEPTED,
    )
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)
    assert export.counts["lines"] == 25 and export.counts["reviewed"] == 24
    staff = factories.make_user("root", staff=True)
    client.force_login(staff)
    response = client.post(
        reverse("training_import", args=[ledgers.pk]),
        {"archive": SimpleUploadedFile("e.zip", export_bytes(export)), "text_column": "text"},
        follow=True,
    )
    assert "1 auto-accepted lines (a model&#x27;s readings" in response.content.decode()
    assert Line.objects.filter(collection=ledgers).count() == 24
    assert not Line.objects.filter(collection=ledgers, text="machine text").exists()


def test_imported_text_is_kept_as_the_editor_keeps_it(letters, alice, line_folder):
    """Composed characters as one spelling; a line break, which the text export would write as
    two lines, becomes a space; a text longer than a line's may be is refused, the row named."""
    write_metadata(line_folder, [json.dumps({"file_name": "00-0.png", "text": "Mu\u0308ller"})])
    (row,) = read_dataset(line_folder)
    assert row.text == "Müller"
    write_metadata(line_folder, [json.dumps({"file_name": "00-0.png", "text": "Dear\nSir\t!"})])
    (row,) = read_dataset(line_folder)
    assert row.text == "Dear Sir !"
    write_metadata(line_folder, [json.dumps({"file_name": "00-0.png", "text": "a" * 2001})])
    with pytest.raises(DatasetImportError, match="00-0.png: a line's text is at most 2000"):
        read_dataset(line_folder)


def test_documents_of_one_title_in_an_export_stay_apart(letters, alice, line_folder):
    rows = [json.loads(row) for row in (line_folder / "metadata.jsonl").read_text().splitlines()]
    for row in rows:
        page = int(row["page"][1:])
        row.update(document="Letter", document_id=1 if page < 4 else 2, split="train")
    write_metadata(line_folder, [json.dumps(row) for row in rows])
    result = do_import_ground_truth(letters, read_dataset(line_folder), user=alice, title="x")
    assert [d.title for d in result.documents] == ["Letter", "Letter"]
    assert [d.lines.count() for d in result.documents] == [16, 16]


def test_a_group_named_only_by_characters_names_drop_takes_the_dataset_title(
    letters, alice, line_folder
):
    rows = read_dataset(line_folder)
    for row in rows:
        row.group, row.split = "\u202e\u2066\x07", ""
    result = do_import_ground_truth(letters, rows, user=alice, title="lines")
    assert [document.title for document in result.documents] == ["lines"]
