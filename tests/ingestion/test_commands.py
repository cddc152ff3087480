"""`import_documents`, `load_demo` and `create_api_token` on real files."""

import pytest
from django.core.management import CommandError, call_command

from ocrreview.corpus.iiif_export import attribution_of, document_manifest, rights_of
from ocrreview.corpus.models import ApiToken, Collection, Document, Line
from ocrreview.transcription.models import RecognitionRequest
from tests.ingestion import files


@pytest.mark.django_db
def test_import_documents_walks_folders_and_pairs_xml_per_folder(tmp_path, letters, capsys):
    (tmp_path / "box" / "f1").mkdir(parents=True)
    (tmp_path / "box" / "f1" / "p.jpg").write_bytes(files.jpeg())
    (tmp_path / "box" / "f1" / "p.xml").write_bytes(files.alto("p.jpg"))
    (tmp_path / "box" / "scans.pdf").write_bytes(files.pdf(2))
    (tmp_path / "box" / ".DS_Store").write_bytes(b"junk")
    call_command("import_documents", str(tmp_path / "box"), "--collection", "Letters")
    out = capsys.readouterr().out
    assert "scans.pdf -> document" in out and "(2 pages, 0 lines)" in out
    assert "p.jpg -> document" in out and "(1 pages, 2 lines)" in out
    assert sorted(Document.objects.values_list("title", flat=True)) == ["p", "scans"]


def pages_of(document) -> list[str]:
    return list(document.pages.order_by("index").values_list("source_name", flat=True))


@pytest.mark.django_db
def test_import_documents_with_folders_makes_a_document_of_each_folder_of_images(
    tmp_path, letters, capsys
):
    """As the upload's folders option: a folder of images on disk, or in a ZIP archive, is a
    document, its pages in name order; a PDF, and a file named on the command line, are
    documents of their own."""
    box = tmp_path / "box"
    (box / "vol1").mkdir(parents=True)
    for name in ("10.jpg", "2.jpg", "1.jpg"):
        (box / "vol1" / name).write_bytes(files.jpeg())
    (box / "vol1" / "letter.pdf").write_bytes(files.pdf(2))
    (box / "cover.png").write_bytes(files.png())
    (box / "vol2.zip").write_bytes(
        files.zip_of({"vol2/b.jpg": files.jpeg(), "vol2/a.jpg": files.jpeg()})
    )
    (tmp_path / "loose.jpg").write_bytes(files.jpeg())
    call_command(
        "import_documents",
        str(box),
        str(tmp_path / "loose.jpg"),
        "--collection",
        "Letters",
        "--segmentation",
        "whole_image",
        "--folders",
    )
    out = capsys.readouterr().out
    assert f"ok     {box / 'vol1'} -> document" in out and "(3 pages, 3 lines)" in out
    documents = {d.title: pages_of(d) for d in Document.objects.filter(collection=letters)}
    assert documents == {
        "vol1": ["1.jpg", "2.jpg", "10.jpg"],
        "letter": ["letter-1.jpg", "letter-2.jpg"],
        "box": ["cover.png"],
        "vol2": ["a.jpg", "b.jpg"],
        "loose": ["loose.jpg"],
    }

    # Without the option, as before: each image a document.
    Document.objects.all().delete()
    call_command("import_documents", str(box / "vol1"), "--collection", "Letters")
    titles = sorted(Document.objects.values_list("title", flat=True))
    assert titles == ["1", "10", "2", "letter"]


@pytest.mark.django_db
def test_import_documents_reports_bad_files_and_fails_at_the_end(tmp_path, letters, capsys):
    (tmp_path / "good.png").write_bytes(files.png())
    (tmp_path / "bad.jpg").write_bytes(b"")
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_documents", str(tmp_path), "--collection", "Letters")
    assert "bad.jpg: the file is empty" in capsys.readouterr().err
    assert Document.objects.get().title == "good"


@pytest.mark.django_db
def test_import_documents_run_again_adds_only_what_is_new(tmp_path, letters, capsys):
    """As after an import interrupted halfway: what is there already is no failure."""
    (tmp_path / "first.png").write_bytes(files.png())
    call_command("import_documents", str(tmp_path), "--collection", "Letters")
    first = Document.objects.get()
    (tmp_path / "second.png").write_bytes(files.png(300, 200))
    capsys.readouterr()
    call_command("import_documents", str(tmp_path), "--collection", "Letters")
    out = capsys.readouterr().out
    assert f"kept   {tmp_path / 'first.png'}: already document {first.pk}" in out
    assert "second.png -> document" in out
    assert sorted(Document.objects.values_list("title", flat=True)) == ["first", "second"]


@pytest.mark.django_db
def test_import_documents_needs_an_existing_collection_or_create(tmp_path, capsys, settings, dave):
    settings.OCRREVIEW_DEFAULT_THRESHOLD = 0.97  # the site's threshold for new collections
    (tmp_path / "a.png").write_bytes(files.png())
    with pytest.raises(CommandError, match="No collection named 'New'"):
        call_command("import_documents", str(tmp_path), "--collection", "New")
    call_command(
        "import_documents", str(tmp_path), "--collection", "New", "--create", "--admin", "dave"
    )
    created = Collection.objects.get(name="New")
    assert (created.documents.count(), created.confidence_threshold) == (1, 0.97)


@pytest.mark.django_db
def test_load_demo_imports_the_alto_lines_once(tiny_model, capsys):
    call_command("load_demo")
    collection = Collection.objects.get(name="Lathrop letters (demo)")
    assert collection.documents.count() == 3
    lines = Line.objects.filter(collection=collection)
    assert lines.count() > 30
    assert set(lines.values_list("status", flat=True)) == {Line.Status.PENDING}
    assert set(lines.values_list("text", flat=True)) == {""}  # not ground truth
    assert RecognitionRequest.objects.filter(line__collection=collection).count() == lines.count()
    page = collection.documents.first().pages.get()
    assert page.height == 1500
    assert all(
        0 <= b[0] < b[2] <= page.width
        for b in lines.filter(page=page).values_list("bbox", flat=True)
    )
    # The pages are CC-BY: the rights and attribution their NOTICE.md asks of a copy travel
    # with the demo's exports (dataset and IIIF), as a IIIF manifest's would.
    for document in collection.documents.all():
        assert rights_of(document.iiif_descriptive) == "http://creativecommons.org/licenses/by/4.0/"
        attribution = attribution_of(document.iiif_descriptive)
        assert attribution.startswith("Attribution: Ingrid Guimarães, Perrine Maurel")
        assert "zenodo.6126625" in attribution and "Stanford University Archives" in attribution
        manifest = document_manifest(
            document, lambda path: "http://testserver" + path, image_path=str
        )
        assert manifest["rights"] == "http://creativecommons.org/licenses/by/4.0/"
        assert manifest["requiredStatement"] == document.iiif_descriptive["requiredStatement"]
    # A demo loaded before its pages carried them gets them when load_demo runs again.
    loaded_before = collection.documents.first()
    Document.objects.filter(pk=loaded_before.pk).update(iiif_descriptive={})
    call_command("load_demo")
    assert "already holds" in capsys.readouterr().out
    loaded_before.refresh_from_db()
    assert attribution_of(loaded_before.iiif_descriptive).startswith("Attribution: Ingrid")
    assert (
        collection.documents.count() == 3
        and lines.count() == Line.objects.filter(collection=collection).count()
    )


@pytest.mark.django_db
def test_create_api_token_prints_a_working_key(alice, capsys):
    call_command("create_api_token", "alice", "--name", "scanner")
    key = capsys.readouterr().out.strip()
    assert ApiToken.objects.get().name == "scanner" and len(key) > 30
    with pytest.raises(CommandError):
        call_command("create_api_token", "nobody")
