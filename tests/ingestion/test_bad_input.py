"""Bad input: each bad file gets its own clear message, the rest of the upload succeeds,
and nothing already stored is touched."""

import io
import os
import struct
import threading
import tracemalloc
import warnings
import zipfile
from hashlib import sha256
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from ocrreview.corpus.ingestion import MAX_LAYOUT_MB, Upload, do_ingest
from ocrreview.corpus.models import Collection, Document, Page
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock
from tests.ingestion import files


def ingest(collection, *named: tuple[str, bytes], **options):
    return {
        r.name: r
        for r in do_ingest(collection, [Upload.from_bytes(n, d) for n, d in named], **options)
    }


@pytest.fixture
def stored(letters):
    """A document that was there before the bad upload."""
    document = factories.make_document(letters, title="Kept")
    factories.make_line(factories.make_page(document), text="old")
    return document


def assert_untouched(stored):
    document = Document.objects.get(pk=stored.pk)
    assert document.title == "Kept" and document.pages.count() == 1
    assert document.lines.get().text == "old"


BAD = {
    "empty.jpg": (b"", "the file is empty"),
    "notes.txt": (b"just some text", "unsupported file type"),
    "truncated.jpg": (files.jpeg()[:600], "corrupt or truncated"),
    "garbage.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an image"),
    "bomb.png": (files.png_bomb(), "too large"),
    "locked.pdf": (files.encrypted_pdf(), "encrypted"),
    "broken.pdf": (b"%PDF-1.4\nnot really", "PDF cannot be read"),
    "broken.tif": (b"II*\x00" + b"\xff" * 50, "TIFF is corrupt"),
    "broken.zip": (b"PK\x03\x04" + b"\x00" * 50, "not a readable ZIP"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_file_gets_its_message_and_the_rest_succeeds(letters, stored, name):
    data, message = BAD[name]
    results = ingest(letters, (name, data), ("good.jpg", files.jpeg()))
    assert message in results[name].error
    assert results[name].document is None
    assert results["good.jpg"].ok
    assert Document.objects.filter(collection=letters).count() == 2
    assert_untouched(stored)


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_unread(letters, settings):
    settings.OCRREVIEW_MAX_UPLOAD_MB = 1
    big = Upload("huge.tif", 5 * 1024 * 1024, lambda: pytest.fail("read a refused file"))
    (result,) = do_ingest(letters, [big])
    assert "5.0 MB; the limit is 1 MB" in result.error


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pdf", "tiff"])
def test_a_pdf_or_tiff_over_the_page_limit_is_refused_before_it_is_rendered(
    letters, settings, kind
):
    settings.OCRREVIEW_MAX_PAGES = 2
    make = files.pdf if kind == "pdf" else files.tiff
    results = ingest(letters, (f"register.{kind}", make(3)), (f"letter.{kind}", make(2)))
    counted = "has 3 pages" if kind == "pdf" else "has more than 2 pages"  # a TIFF stops there
    assert f"{counted}; the limit is 2 (OCRREVIEW_MAX_PAGES)" in results[f"register.{kind}"].error
    assert results[f"letter.{kind}"].pages == 2
    assert Document.objects.get().pages.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, data",
    [
        ("register.pdf", files.pdf(3)),
        ("register.tif", files.tiff(3)),
        ("locked.pdf", files.encrypted_pdf()),
    ],
)
def test_a_refused_pdf_or_tiff_is_refused_before_anything_is_stored(letters, settings, name, data):
    settings.OCRREVIEW_MAX_PAGES = 2
    (result,) = ingest(letters, (name, data)).values()
    assert result.error
    # Storing a file makes its folder, which deleting the file leaves behind.
    assert not settings.MEDIA_ROOT.exists()


@pytest.mark.django_db
def test_a_page_xml_beside_a_tiff_of_several_pages_is_refused_for_that(letters):
    results = ingest(letters, ("p.xml", files.page_xml("p.tif")), ("p.tif", files.tiff(2)))
    assert results["p.tif"].error == "a PAGE/ALTO file can only describe a single-page image"
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_a_pdf_failing_on_a_later_page_leaves_no_document_and_no_file(letters, settings):
    # Pages are stored as they are rendered: the first two are on disk when the third fails.
    oversized = files.pdf_of_sizes([(612, 792), (612, 792), (3000, 3000)])
    results = ingest(letters, ("register.pdf", oversized), ("letter.pdf", files.pdf(1)))
    assert "page 3 is too large to render at 300 dpi" in results["register.pdf"].error
    assert results["letter.pdf"].pages == 1
    kept = Document.objects.get()
    stored = {
        p.relative_to(settings.MEDIA_ROOT) for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()
    }
    assert stored == {
        Path(kept.source_file.name),
        *(Path(page.image.name) for page in kept.pages.all()),
    }


@pytest.mark.django_db
def test_zip_entries_with_absolute_or_parent_paths_are_skipped(letters, tmp_path):
    archive = files.zip_of(
        {"/etc/evil.jpg": files.jpeg(), "../../evil.jpg": files.jpeg(), "ok/a.jpg": files.jpeg()}
    )
    results = ingest(letters, ("x.zip", archive))
    assert "unsafe path" in results["x.zip//etc/evil.jpg"].error
    assert "unsafe path" in results["x.zip/../../evil.jpg"].error
    assert results["x.zip/ok/a.jpg"].ok
    assert Document.objects.count() == 1
    assert not (tmp_path / "evil.jpg").exists()


def zip_with_twice(*entries: tuple[str, bytes]) -> bytes:
    """A ZIP that may hold a name twice, as one added to by a tool that appends (Python's
    zipfile among them) holds it."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_name_twice_in_a_zip_is_read_once_and_the_second_reported(letters, stored):
    first, second = files.jpeg(), files.jpeg()
    archive = zip_with_twice(
        ("box/1.jpg", first),
        ("box/2.jpg", files.jpeg()),
        ("box/1.jpg", second),
        # The same name once cleaned, or composed as macOS decomposes it.
        ("box/2\u202e.jpg", files.jpeg()),
        ("box/e\u0301t\u00e9.jpg", files.jpeg()),
        ("box/\u00e9t\u00e9.jpg", files.jpeg()),
    )
    results = do_ingest(letters, [Upload.from_bytes("scans.zip", archive)], folders=True)
    said = "another file of this name comes before it in the archive, and only the first"
    assert [(r.name, said in r.error) for r in results if r.error] == [
        ("scans.zip/box/1.jpg", True),
        ("scans.zip/box/2.jpg", True),
        ("scans.zip/box/\u00e9t\u00e9.jpg", True),
    ]
    (made,) = [r for r in results if r.document is not None]
    assert (made.name, made.pages) == ("scans.zip/box", 3)
    pages = made.document.pages.order_by("index")
    assert list(pages.values_list("source_name", flat=True)) == [
        "1.jpg",
        "2.jpg",
        "\u00e9t\u00e9.jpg",
    ]
    with pages[0].image.open("rb") as image:
        assert image.read() == first
    assert_untouched(stored)


@pytest.mark.django_db
def test_a_name_twice_in_a_zip_is_one_document_not_two(letters):
    """Without folders each image is a document: the second of a name is no second one."""
    archive = zip_with_twice(("a.jpg", files.jpeg()), ("a.jpg", files.jpeg()))
    results = do_ingest(letters, [Upload.from_bytes("scans.zip", archive)])
    assert [(r.name, r.ok, r.pages) for r in results] == [
        ("scans.zip/a.jpg", False, 0),
        ("scans.zip/a.jpg", True, 1),
    ]
    assert Document.objects.filter(collection=letters).count() == 1


@pytest.mark.django_db
def test_a_zip_bomb_is_refused(letters, settings):
    bomb = files.zip_of({"zeros.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    results = ingest(letters, ("bomb.zip", bomb), ("good.png", files.png()))
    assert "ZIP bomb" in results["bomb.zip/zeros.png"].error
    assert results["good.png"].ok
    settings.OCRREVIEW_ZIP_MAX_MB = 10
    results = ingest(letters, ("bomb.zip", bomb))
    assert "would expand to 20 MB; the limit is 10 MB" in results["bomb.zip"].error


def directory_of(entries: int, counted: int | None = None) -> bytes:
    """A ZIP archive of one small file whose central directory lists it `entries` times, and
    whose end record says it lists `counted` (as many, unless said)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", files.png())
    data = buffer.getvalue()
    start, end = data.rindex(b"PK\x01\x02"), data.rindex(b"PK\x05\x06")
    directory = data[start:end] * entries
    counted = entries if counted is None else counted
    record = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, counted, counted, len(directory), start, 0
    )
    return data[:start] + directory + record


@pytest.mark.django_db
def test_an_archive_listing_too_many_entries_is_refused_before_its_directory_is_read(
    letters, settings
):
    """Every record of a central directory is an object in memory once zipfile reads it: an
    archive of millions of records pointing at one file would take gigabytes first."""
    settings.OCRREVIEW_ZIP_MAX_FILES = 1000
    archive = directory_of(60_000)
    tracemalloc.start()
    results = ingest(letters, ("records.zip", archive), ("good.png", files.png(640, 400)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert results["records.zip"].error == (
        "the archive holds 60000 entries; the limit is 1000 files"
    )
    assert results["good.png"].ok
    assert peak < len(archive), peak
    # zipfile reads records for as many bytes as the end record says, whatever count it says.
    miscounted = directory_of(60_000, counted=1)
    tracemalloc.start()
    results = ingest(letters, ("records.zip", miscounted))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert results["records.zip"].error == (
        "the archive's directory takes 2.9 MB, more than 1000 files need"
    )
    assert peak < len(archive), peak
    # Under the limit, the same archive is read: its file once, the repeats reported.
    settings.OCRREVIEW_ZIP_MAX_FILES = 5000
    results = ingest(letters, ("records.zip", directory_of(3)))
    assert results["records.zip/a.png"].ok


@pytest.mark.django_db
def test_the_archives_of_one_upload_share_one_unpacking_budget(letters, settings):
    """Every archive is unpacked before any file is ingested: ten archives each within the
    limit would fill the disk the limit is there to spare."""
    settings.OCRREVIEW_ZIP_MAX_MB = 1
    first, second = (files.zip_of({"scans/a.tif": os.urandom(600_000)}) for _ in range(2))
    results = ingest(letters, ("first.zip", first), ("second.zip", second))
    assert "first.zip" not in results
    assert results["second.zip"].error == (
        "the archive would expand to 1 MB; the limit is 1 MB for the archives of one upload, "
        "whose others take 1 MB: upload it on its own"
    )
    alone = ingest(letters, ("second.zip", second))
    assert "second.zip" not in alone


@pytest.mark.django_db
def test_unreadable_zip_entries_get_their_message_and_the_rest_succeeds(letters, stored):
    archive = files.zip_with_unreadable_entries({"a.jpg": files.jpeg()})
    results = ingest(letters, ("scans.zip", archive), ("good.jpg", files.jpeg()))
    assert (
        "cannot be unpacked (Error -3 while decompressing" in results["scans.zip/corrupt.png"].error
    )
    assert (
        "the entry is encrypted; zip it again without a password"
        in results["scans.zip/locked.png"].error
    )
    assert results["scans.zip/a.jpg"].ok and results["good.jpg"].ok
    assert Document.objects.filter(collection=letters).count() == 3
    assert_untouched(stored)


@pytest.mark.django_db
def test_zip_entries_zipfile_chokes_on_get_their_message_and_the_rest_succeeds(letters, stored):
    archive = files.zip_with_entries_zipfile_chokes_on({"a.jpg": files.jpeg()})
    results = ingest(letters, ("scans.zip", archive))
    assert "cannot be unpacked" in results["scans.zip/damaged.png"].error
    assert "unsafe path" in results["scans.zip/."].error
    assert "unsafe path" in results["scans.zip/"].error
    assert results["scans.zip/a.jpg"].ok
    assert_untouched(stored)


@pytest.mark.django_db(transaction=True)
def test_an_upload_while_the_broker_is_down_keeps_its_document_and_its_files(letters, broker_down):
    from ocrreview.transcription.models import RecognitionRequest

    results = ingest(
        letters, ("line.png", files.png(320, 48)), segmentation=Document.Segmentation.WHOLE_IMAGE
    )
    assert results["line.png"].ok
    page = Page.objects.get(document=results["line.png"].document)
    assert page.image.storage.exists(page.image.name)
    # Queued, for the recognition sweep to read once the broker is back.
    assert RecognitionRequest.objects.filter(line__page=page, status="queued").count() == 1


@pytest.mark.django_db
def test_an_archive_inside_an_archive_is_not_unpacked(letters):
    inner = files.zip_of({"a.jpg": files.jpeg()})
    results = ingest(
        letters, ("outer.zip", files.zip_of({"inner.zip": inner, "b.jpg": files.jpeg()}))
    )
    assert "inside ZIP" in results["outer.zip/inner.zip"].error
    assert results["outer.zip/b.jpg"].ok


@pytest.mark.django_db
@pytest.mark.parametrize(
    "entries",
    [{}, {"scans/": b""}, {"__MACOSX/._a.jpg": b"x", "._b.jpg": b"x"}],
    ids=["empty", "a folder", "macOS's files"],
)
def test_an_archive_with_no_file_to_import_says_so(letters, entries):
    """Else the upload answered nothing about it: no document, no message."""
    results = ingest(letters, ("scans.zip", files.zip_of(entries)))
    assert list(results) == ["scans.zip"]
    assert results["scans.zip"].error.startswith("the archive holds no files to import")
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_a_file_uploaded_again_is_refused_naming_the_document_it_is(letters, ledgers):
    """A retry after a proxy's 504 on a long PDF, or a folder uploaded twice."""
    scan, pdf = files.jpeg(), files.pdf(2)
    ingest(letters, ("box1/scan.jpg", scan), ("minutes.pdf", pdf))
    again = ingest(
        letters, ("retry/scan.jpg", scan), ("minutes.pdf", pdf), ("new.jpg", files.jpeg())
    )
    assert again["retry/scan.jpg"].error == (
        "this file is already in the collection, as “scan”, and is not added twice "
        "(delete that document to upload it again)"
    )
    assert "as “minutes”" in again["minutes.pdf"].error
    assert again["new.jpg"].ok
    assert letters.documents.count() == 3
    assert ingest(ledgers, ("scan.jpg", scan))["scan.jpg"].ok  # another collection's own


@pytest.mark.django_db(transaction=True)
def test_the_same_file_in_two_uploads_at_once_makes_one_document(letters):
    scan = files.jpeg()
    answers = {}
    earlier = Document(collection=letters, title="earlier", source_sha256=sha256(scan).hexdigest())

    def upload():
        try:
            answers.update(ingest(letters, ("scan.jpg", scan)))
        finally:
            connection.close()

    def stored_files() -> set[Path]:
        return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}

    before = stored_files()
    with transaction.atomic():
        earlier.save()  # the first upload, not yet committed when the second looks
        second = threading.Thread(target=upload)
        second.start()
        wait_until_another_session_waits_for_a_lock()
    second.join()
    assert "as “earlier”" in answers["scan.jpg"].error
    assert list(letters.documents.values_list("title", flat=True)) == ["earlier"]
    assert not Page.objects.exists() and stored_files() == before


@pytest.mark.django_db
def test_malformed_xml_is_reported_and_its_image_is_still_ingested(letters):
    results = ingest(letters, ("p.xml", b"<alto><Layout>"), ("p.jpg", files.jpeg()))
    assert "malformed" in results["p.xml"].error
    assert results["p.jpg"].ok
    assert results["p.jpg"].document.segmentation == Document.Segmentation.KRAKEN


@pytest.mark.django_db
def test_xml_with_an_infinite_coordinate_is_reported(letters):
    alto = files.alto("p.jpg").replace(b'BASELINE="20 60 500 60"', b'BASELINE="20 60 1e400 60"')
    results = ingest(letters, ("p.xml", alto), ("p.jpg", files.jpeg()))
    assert "the layout could not be read" in results["p.xml"].error
    assert results["p.jpg"].document.segmentation == Document.Segmentation.KRAKEN


@pytest.mark.django_db
def test_alto_in_an_unknown_unit_is_refused_naming_it(letters):
    alto = files.alto("p.jpg").replace(b">pixel<", b">furlong<")
    results = ingest(letters, ("p.xml", alto), ("p.jpg", files.jpeg()))
    assert results["p.xml"].error == (
        "the ALTO measurement unit 'furlong' is not one of inch1200, mm10, pixel"
    )
    assert results["p.jpg"].ok  # the image is still ingested, segmented by kraken


@pytest.mark.django_db
def test_xml_pointing_to_a_missing_image_is_reported(letters):
    results = ingest(letters, ("p.xml", files.alto("missing.jpg")))
    assert "refers to the image 'missing.jpg', which is not part of this upload" in (
        results["p.xml"].error
    )
    assert not Document.objects.exists()


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alto [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description>
<sourceImageInformation><fileName>p.jpg</fileName></sourceImageInformation></Description>
<Layout><Page WIDTH="600" HEIGHT="400"><PrintSpace><TextBlock><TextLine ID="l"
BASELINE="1 2 300 2" HPOS="0" VPOS="0" WIDTH="300" HEIGHT="20"><String CONTENT="&secret;"/>
</TextLine></TextBlock></PrintSpace></Page></Layout></alto>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alto>&lol3;</alto>"""


# A valid PAGE file but for its DTD: parsed once (by lxml, not by defusedxml first), a
# declaration that nothing references, or a parameter entity, is refused all the same.
UNUSED_ENTITY = files.page_xml("p.jpg").replace(
    b"<PcGts", b'<!DOCTYPE PcGts [<!ENTITY unused "x">]>\n<PcGts', 1
)
PARAMETER_ENTITY = files.page_xml("p.jpg").replace(
    b"<PcGts", b'<!DOCTYPE PcGts [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n<PcGts', 1
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [XXE, LAUGHS, UNUSED_ENTITY, PARAMETER_ENTITY],
    ids=["external-entity", "billion-laughs", "unused-entity", "parameter-entity"],
)
def test_xml_entity_tricks_are_refused(letters, payload):
    results = ingest(letters, ("p.xml", payload), ("p.jpg", files.jpeg()), import_text=True)
    assert "declares entities or external references, which are refused" in (results["p.xml"].error)
    document = results["p.jpg"].document
    assert not document.lines.exists()  # kraken segmentation instead, nothing from the XML


@pytest.mark.django_db
def test_imported_segmentation_without_xml_is_refused(letters):
    results = ingest(letters, ("p.jpg", files.jpeg()), segmentation=Document.Segmentation.IMPORTED)
    assert "no PAGE XML or ALTO" in results["p.jpg"].error
    assert not Page.objects.exists()


@pytest.mark.django_db
def test_a_tiff_frame_without_its_dimensions_is_corrupt(letters):
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 259, 3, 1, 1) + struct.pack("<I", 0)
    results = ingest(letters, ("odd.tif", b"II*\x00" + struct.pack("<I", 8) + ifd))
    assert "the TIFF is corrupt or truncated" in results["odd.tif"].error


@pytest.mark.django_db(transaction=True)
def test_an_upload_whose_commit_fails_leaves_no_file(letters, settings):
    # The collection is deleted while the PDF renders: the document's foreign key fails at
    # the commit, after every file was stored.
    Collection.objects.filter(pk=letters.pk).delete()
    assert ingest(letters, ("gone.pdf", files.pdf(2)))["gone.pdf"].error
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "layout",
    [
        files.page_xml("/etc/hostname", width=0, height=0),
        files.page_xml("../../../etc/hostname", width=0, height=0),
        files.alto("/etc/hostname", width=0, height=0),
        files.page_xml("p.jpg").replace(b' imageWidth="600"', b""),
    ],
    ids=["page-absolute", "page-parent", "alto-absolute", "page-no-width"],
)
def test_xml_without_a_page_size_is_refused_without_opening_the_image_it_names(
    letters, layout, tmp_path
):
    """kraken would measure the image the file names, anywhere on the server's disk."""
    results = ingest(letters, ("p.xml", layout), ("p.jpg", files.jpeg()))
    error = results["p.xml"].error
    assert error == "the XML gives no page size"
    assert results["p.jpg"].document.segmentation == Document.Segmentation.KRAKEN


@pytest.mark.django_db
def test_page_xml_with_retired_language_codes_imports_its_lines(letters):
    """iso639 refuses retired codes such as aam (merged into aas in 2015) with an error of its
    own; tools still write them."""
    layout = files.page_xml("p.jpg").replace(
        b'<Page imageFilename="p.jpg"', b'<Page primaryLanguage="aam" imageFilename="p.jpg"'
    )
    layout = layout.replace(
        b'<TextLine id="l1"', b'<TextLine id="l1" custom="my-language {x:y;} language {type:aam;}"'
    )
    results = ingest(letters, ("p.xml", layout), ("p.jpg", files.jpeg()), import_text=True)
    assert results["p.jpg"].ok, results["p.xml"].error
    assert list(results["p.jpg"].document.lines.values_list("text", flat=True)) == ["First line"]


@pytest.mark.django_db
def test_a_zip_of_a_format_version_zipfile_does_not_know_is_refused(letters, stored):
    archive = files.zip_with_central_directory_patched({"a.jpg": files.jpeg()}, "version")
    results = ingest(letters, ("scans.zip", archive), ("good.jpg", files.jpeg()))
    assert "not a readable ZIP archive (zip file version 6.4)" in results["scans.zip"].error
    assert results["good.jpg"].ok
    assert_untouched(stored)


@pytest.mark.django_db
@pytest.mark.parametrize("layout", [files.page_xml, files.alto], ids=["page", "alto"])
def test_a_layout_file_over_its_size_limit_is_not_read(letters, layout):
    """Its tree and kraken's lines would be held whole, at many times its size: a file of
    the upload's limit would take gigabytes."""
    limit = MAX_LAYOUT_MB * 1024 * 1024
    big = padded(layout("p.jpg"), limit + 1)
    results = ingest(
        letters,
        ("p.xml", big),
        ("p.jpg", files.jpeg()),
        segmentation=Document.Segmentation.WHOLE_IMAGE,
        import_text=True,
    )
    assert results["p.xml"].error == (
        f"the file is {MAX_LAYOUT_MB}.0 MB, over the {MAX_LAYOUT_MB} MB that a PAGE or ALTO "
        "file is read up to, and is not read"
    )
    # The image comes in as if no XML were beside it, its text not taken.
    document = results["p.jpg"].document
    assert document.segmentation == Document.Segmentation.WHOLE_IMAGE
    assert list(document.lines.values_list("text", flat=True)) == [""]
    # At the limit, the same file is read.
    fits = padded(layout("q.jpg"), limit)
    read = ingest(letters, ("q.xml", fits), ("q.jpg", files.jpeg()))
    assert read["q.xml"].ok and read["q.xml"].lines > 0


def padded(xml: bytes, size: int) -> bytes:
    """The XML made `size` bytes long by comments after its declaration (of a kilobyte each:
    the parser refuses a node over 10 MB)."""
    head, tail = xml.split(b"?>", 1)
    missing = size - len(xml)
    comment = b"<!--" + b"x" * 1017 + b"-->\n"  # 1,025 bytes
    count, rest = divmod(missing, len(comment))
    padding = comment * count + (b" " * rest)
    result = head + b"?>" + padding + tail
    assert len(result) == size
    return result
