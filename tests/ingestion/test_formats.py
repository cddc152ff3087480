"""Every accepted format becomes documents and pages through the one ingestion service."""

import io
import threading
import time
import zipfile

import pypdfium2 as pdfium
import pytest
from django.db import connection
from PIL import Image

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Line, Page
from ocrreview.review.models import Correction
from ocrreview.transcription.models import RecognitionRequest
from tests.ingestion import files

K = Document.Segmentation


def ingest(collection, *named: tuple[str, bytes], **options):
    return do_ingest(collection, [Upload.from_bytes(n, d) for n, d in named], **options)


@pytest.mark.django_db
def test_jpeg_and_png_each_become_a_one_page_document(letters, alice):
    results = ingest(letters, ("a.jpg", files.jpeg()), ("b.png", files.png(300, 200)), user=alice)
    assert [r.error for r in results] == ["", ""]
    documents = Document.objects.filter(collection=letters).order_by("title")
    assert [d.title for d in documents] == ["a", "b"]
    a, b = (d.pages.get() for d in documents)
    assert (a.width, a.height, b.width, b.height) == (600, 400, 300, 200)
    assert Image.open(b.image.path).size == (300, 200)
    assert documents[0].uploaded_by == alice
    assert documents[0].segmentation == K.KRAKEN
    assert documents[0].status == Document.Status.UPLOADED


@pytest.mark.django_db
def test_the_type_comes_from_the_content_not_the_name(letters):
    (result,) = ingest(letters, ("scan.pdf", files.png()))
    assert result.ok and result.pages == 1
    assert result.document.pages.get().image.name.endswith(".png")


@pytest.mark.django_db
def test_a_multipage_tiff_is_one_document_with_a_page_per_frame(letters):
    (result,) = ingest(letters, ("register.tif", files.tiff(3)))
    assert result.ok and result.pages == 3
    assert list(result.document.pages.values_list("index", flat=True)) == [0, 1, 2]
    assert result.document.source_file.name.endswith("register.tif")


@pytest.mark.django_db
def test_tiff_scans_are_kept_as_jpeg_pages_and_black_and_white_as_png(letters):
    """A colour or grey frame took 5 to 20 times its JPEG's size as PNG; the TIFF itself is
    kept as the source."""
    bilevel = files.encode(files.page_image().convert("1"), "TIFF")
    (colour,) = ingest(letters, ("register.tif", files.tiff(2)))
    (black_and_white,) = ingest(letters, ("card.tif", bilevel))
    names = [p.image.name for p in colour.document.pages.all()]
    assert all(name.endswith(".jpg") for name in names), names
    assert black_and_white.document.pages.get().image.name.endswith(".png")


@pytest.mark.django_db
def test_each_pdf_page_is_rendered_at_the_set_dpi(letters, settings):
    settings.OCRREVIEW_PDF_DPI = 144
    (result,) = ingest(letters, ("letters.pdf", files.pdf(2)))
    assert result.ok and result.pages == 2
    page = result.document.pages.first()
    # 600 px at 100 dpi is 6 in; rendered at 144 dpi that is 864 px.
    assert (page.width, page.height) == (864, 576)
    assert Image.open(page.image.path).size == (864, 576)


@pytest.mark.django_db
def test_a_zip_is_unpacked_with_its_folders(letters):
    archive = files.zip_of({"box1/a.jpg": files.jpeg(), "box1/sub/b.png": files.png()})
    results = ingest(letters, ("box.zip", archive))
    assert sorted(r.name for r in results) == ["box.zip/box1/a.jpg", "box.zip/box1/sub/b.png"]
    assert all(r.ok for r in results)
    assert Document.objects.count() == 2


@pytest.mark.django_db
def test_zip_names_in_utf8_without_its_flag_keep_their_accents(letters, tiny_model):
    archive = files.zip_without_utf8_flag(
        {"lettre_été.jpg": files.jpeg(), "lettre_été.xml": files.alto("lettre_été.jpg")}
    )
    assert {i.flag_bits & 0x800 for i in zipfile.ZipFile(io.BytesIO(archive)).infolist()} == {0}
    results = ingest(letters, ("envoi.zip", archive))
    assert sorted((r.name, r.ok) for r in results) == [
        ("envoi.zip/lettre_été.jpg", True),
        ("envoi.zip/lettre_été.xml", True),
    ]
    document = Document.objects.get()
    assert document.segmentation == K.IMPORTED  # the XML found the image it names
    assert document.lines.count() == 2


@pytest.mark.django_db
def test_an_image_named_in_decomposed_accents_meets_the_xml_naming_it_composed(letters, tiny_model):
    """Transkribus's layout (page/ beside the images), zipped on a Mac: its file names come
    decomposed (NFD), the XML's imageFilename composed."""
    decomposed = "Re\u0301gistre.jpg"
    archive = files.zip_of(
        {decomposed: files.jpeg(), "page/Re\u0301gistre.xml": files.alto("R\u00e9gistre.jpg")}
    )
    results = ingest(letters, ("envoi.zip", archive))
    assert all(r.ok for r in results), [r.error for r in results]
    document = Document.objects.get()
    assert document.title == "R\u00e9gistre"
    assert document.segmentation == K.IMPORTED and document.lines.count() == 2


@pytest.mark.django_db
def test_each_image_is_one_line_is_recognition_ready_at_once(letters, tiny_model):
    (result,) = ingest(letters, ("line.png", files.png(400, 60)), segmentation=K.WHOLE_IMAGE)
    line = Line.objects.get()
    assert line.bbox == [0, 0, 400, 60]
    assert result.document.status == Document.Status.RECOGNIZING
    assert result.document.pages.get().status == Page.Status.SEGMENTED
    assert RecognitionRequest.objects.get().line == line


@pytest.mark.django_db
def test_alto_beside_its_image_imports_its_lines_in_order(letters, tiny_model):
    results = ingest(
        letters, ("p1.xml", files.alto("p1.jpg")), ("p1.jpg", files.jpeg()), segmentation=K.KRAKEN
    )
    assert all(r.ok for r in results)
    document = Document.objects.get()
    assert document.segmentation == K.IMPORTED
    lines = list(document.lines.order_by("order"))
    assert [line.bbox for line in lines] == [[20, 20, 501, 71], [20, 120, 501, 171]]
    assert lines[0].baseline == [[20, 60], [500, 60]]
    assert lines[0].polygon[0] == [20, 20]
    # Without the ground-truth option the text is not taken.
    assert {line.status for line in lines} == {Line.Status.PENDING}
    assert {line.text for line in lines} == {""}


ALTO_LINE_1 = ' ID="l1" BASELINE="20 60 500 60"'
ALTO_LINE_2 = ' ID="l2" BASELINE="20 160 500 160"'
OTHER_TOOLS = {
    "ALTO without line ids": ("alto", [(ALTO_LINE_1, ""), (ALTO_LINE_2, "")]),
    "ALTO with one id twice": ("alto", [(' ID="l2"', ' ID="l1"')]),
    "ALTO without baselines (Tesseract)": (
        "alto",
        [(ALTO_LINE_1, ' ID="l1"'), (ALTO_LINE_2, ' ID="l2"')],
    ),
    "ALTO with the baseline as one height (ABBYY)": (
        "alto",
        [(ALTO_LINE_1, ' ID="l1" BASELINE="60"'), (ALTO_LINE_2, ' ID="l2" BASELINE="160"')],
    ),
    "PAGE without baselines": ("page", [('<Baseline points="20,60 500,60"/>', "")]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("layout", sorted(OTHER_TOOLS))
def test_layouts_of_other_tools_import_every_line(letters, tiny_model, layout):
    kind, edits = OTHER_TOOLS[layout]
    xml = (files.ALTO if kind == "alto" else files.PAGE_XML).format(
        image="p.jpg", width=600, height=400
    )
    for old, new in edits:
        assert old in xml
        xml = xml.replace(old, new)
    (xml_result, _) = ingest(
        letters, ("p.xml", xml.encode()), ("p.jpg", files.jpeg()), import_text=True
    )
    assert xml_result.ok, xml_result.error
    lines = list(Line.objects.order_by("order"))
    expected = ["Dear Sir,", "your letter of the 3rd"] if kind == "alto" else ["First line"]
    assert [line.text for line in lines] == expected
    assert [line.baseline for line in lines] == [[[20, 60], [500, 60]], [[20, 160], [500, 160]]][
        : len(expected)
    ]


@pytest.mark.django_db
def test_xml_text_becomes_reviewed_ground_truth_when_asked(letters, alice, tiny_model):
    ingest(
        letters,
        ("scan.png", files.png()),
        ("other.xml", files.page_xml("scan.png")),  # paired by the name the XML gives
        import_text=True,
        user=alice,
    )
    line = Line.objects.get()
    assert (line.text, line.status) == ("First line", Line.Status.REVIEWED)
    correction = Correction.objects.get(line=line)
    assert (correction.action, correction.user, correction.text_after) == (
        Correction.Action.IMPORT,
        alice,
        "First line",
    )


@pytest.mark.django_db
def test_imported_coordinates_follow_a_resized_image(letters, tiny_model):
    ingest(letters, ("p.xml", files.alto("p.jpg", 1200, 800)), ("p.jpg", files.jpeg(600, 400)))
    assert Line.objects.order_by("order").first().bbox == [10, 10, 251, 36]


@pytest.mark.django_db
@pytest.mark.parametrize("unit", ["mm10", "inch1200"])
def test_alto_in_printed_units_lands_on_the_image_s_pixels(letters, tiny_model, unit):
    # A page of 1200 x 800 units scanned at 600 x 400 pixels: half a pixel per unit.
    alto = files.alto("p.jpg", 1200, 800).replace(b">pixel<", f">{unit}<".encode())
    (result, _) = ingest(letters, ("p.xml", alto), ("p.jpg", files.jpeg(600, 400)))
    assert result.ok, result.error
    lines = list(Line.objects.order_by("order"))
    assert [line.bbox for line in lines] == [[10, 10, 251, 36], [10, 60, 251, 86]]
    assert lines[0].baseline == [[10, 30], [250, 30]]


@pytest.mark.django_db
def test_exif_rotated_photos_are_stored_upright(letters):
    image = files.page_image(600, 400)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = files.encode(image, "JPEG", exif=exif)
    (result,) = ingest(letters, ("phone.jpg", data))
    page = result.document.pages.get()
    assert (page.width, page.height) == (400, 600)
    assert Image.open(page.image.path).size == (400, 600)


@pytest.mark.django_db
def test_a_layout_made_on_a_photos_pixels_as_stored_is_turned_upright_with_it(letters):
    """Tesseract and kraken read a phone's photo as stored, 600 by 400, to be turned a quarter
    clockwise to show it: its PAGE file's lines are turned with the image, not stretched."""
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = files.encode(files.page_image(600, 400), "JPEG", exif=exif)
    results = ingest(letters, ("phone.jpg", photo), ("phone.xml", files.page_xml("phone.jpg")))
    assert all(r.ok for r in results), [r.error for r in results]
    line = Line.objects.get(page__document__title="phone")
    assert line.bbox == [330, 20, 381, 501]
    assert line.baseline == [[340, 20], [340, 500]]


@pytest.mark.django_db
def test_a_layout_without_lines_leaves_a_ready_document(letters, tiny_model):
    empty = files.ALTO.split("<TextBlock")[0] + "</PrintSpace></Page></Layout></alto>"
    results = ingest(
        letters,
        ("blank.xml", empty.format(image="blank.jpg", width=600, height=400).encode()),
        ("blank.jpg", files.jpeg()),
    )
    assert all(r.ok for r in results)
    document = Document.objects.get()
    assert document.status == Document.Status.READY and not document.lines.exists()


@pytest.mark.django_db(transaction=True)
def test_pdfs_uploaded_at_once_are_rendered_one_call_at_a_time(letters, monkeypatch):
    """PDFium must never be entered by two threads at once, even for two documents; the web
    server's threads take turns. Rendering is the real one, slowed so that turns overlap
    unless something keeps them apart."""
    render = pdfium.PdfPage.render
    inside, most = [0], [0]
    counting = threading.Lock()

    def watched_render(page, **options):
        with counting:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.05)
            return render(page, **options)
        finally:
            with counting:
                inside[0] -= 1

    monkeypatch.setattr(pdfium.PdfPage, "render", watched_render)
    results = []

    def upload(name):
        try:
            results.extend(do_ingest(letters, [Upload.from_bytes(name, files.pdf(pages=3))]))
        finally:
            connection.close()

    uploaders = [threading.Thread(target=upload, args=(f"{n}.pdf",)) for n in range(3)]
    for uploader in uploaders:
        uploader.start()
    for uploader in uploaders:
        uploader.join()
    assert [r.ok for r in results] == [True] * 3
    assert sorted(r.document.pages.count() for r in results) == [3, 3, 3]
    assert most[0] == 1


@pytest.mark.django_db
def test_xml_text_is_kept_as_the_editor_keeps_it(letters, alice, tiny_model):
    """A line break inside a TextEquiv made one line two in the text export; a decomposed
    accent would be a second spelling of the same word; an invisible mark would split a word
    for search."""
    xml = files.page_xml("scan.png").replace(
        b"First line", "Fi\trst\nMu\u0308ller\u2028Mon\u200bsieur pro\u00adcureur".encode()
    )
    ingest(letters, ("scan.png", files.png()), ("scan.xml", xml), import_text=True, user=alice)
    assert Line.objects.get().text == "Fi rst Müller Monsieur procureur"


@pytest.mark.django_db
def test_an_xml_line_longer_than_a_line_may_be_is_refused_with_its_number(letters, alice):
    """The editor would refuse to save it again."""
    xml = files.page_xml("scan.png").replace(b"First line", b"x" * 2001)
    results = ingest(letters, ("scan.png", files.png()), ("scan.xml", xml), import_text=True)
    assert any("line 1: a line's text is at most 2000 characters" in r.error for r in results)
    assert not Line.objects.exists()


def page_xml_with_text(image: str, text: str) -> bytes:
    return files.page_xml(image).replace(b"First line", text.encode())


@pytest.mark.django_db
def test_each_volume_s_page_xml_goes_with_its_own_image(letters, alice, tiny_model):
    """Transkribus exports PAGE into a page/ folder beside the images, and every volume
    numbers its scans from 0001.jpg: the last volume's image got the first one's lines."""
    archive = files.zip_of(
        {
            "vol1/0001.jpg": files.jpeg(),
            "vol1/page/0001.xml": page_xml_with_text("0001.jpg", "volume one"),
            "vol2/0001.jpg": files.jpeg(),
            "vol2/page/0001.xml": page_xml_with_text("0001.jpg", "volume two"),
        }
    )
    results = ingest(letters, ("volumes.zip", archive), import_text=True, user=alice)
    assert all(r.ok for r in results), [r.error for r in results]
    read = {r.name: r.document.lines.get().text for r in results if r.document}
    assert read == {
        "volumes.zip/vol1/0001.jpg": "volume one",
        "volumes.zip/vol2/0001.jpg": "volume two",
    }


@pytest.mark.django_db
def test_files_of_one_name_uploaded_on_their_own_do_not_share_their_lines(letters, alice):
    """Two volumes' folders added to the form one after the other, or sent by a script with
    their base names: two 0001.jpg and two 0001.xml. Which XML is whose cannot be told, so
    neither is read; each image is a page of its own, segmented as any image."""
    results = ingest(
        letters,
        ("0001.jpg", files.jpeg(600, 400)),
        ("0001.xml", page_xml_with_text("0001.jpg", "volume one")),
        ("0001.jpg", files.jpeg(640, 400)),
        ("0001.xml", page_xml_with_text("0001.jpg", "volume two")),
        import_text=True,
        user=alice,
    )
    refused = [r for r in results if r.error]
    assert [r.name for r in refused] == ["0001.xml", "0001.xml"]
    assert all("several images of this upload are named '0001.jpg'" in r.error for r in refused)
    documents = [r.document for r in results if r.document]
    assert len(documents) == 2 and documents[0] != documents[1]
    assert not Line.objects.filter(document__in=documents).exists()
    assert {d.segmentation for d in documents} == {K.KRAKEN}


@pytest.mark.django_db
def test_an_xml_naming_an_image_two_folders_hold_is_refused(letters, tiny_model):
    archive = files.zip_of(
        {
            "vol1/0001.jpg": files.jpeg(),
            "vol2/0001.jpg": files.jpeg(),
            "elsewhere/layout.xml": files.page_xml("0001.jpg"),
        }
    )
    results = ingest(letters, ("volumes.zip", archive))
    (refused,) = [r for r in results if r.error]
    assert "several images of this upload are named '0001.jpg'" in refused.error


@pytest.mark.django_db
def test_a_windows_path_in_the_xml_names_its_image(letters, tiny_model):
    """ABBYY's ALTO keeps the scan's path as Windows wrote it."""
    results = ingest(
        letters, ("layout.xml", files.alto("C:\\Scans\\p.jpg")), ("p.jpg", files.jpeg())
    )
    assert all(r.ok for r in results), [r.error for r in results]
