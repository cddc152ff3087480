"""A scanned PDF page is rendered at its scan's resolution (150 to OCRREVIEW_PDF_DPI dpi), so
that a 150 dpi scan is not stored at twice its size; a page of text at OCRREVIEW_PDF_DPI."""

import ctypes
import io

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from ocrreview.corpus.ingestion import Upload, do_ingest
from tests.ingestion import files

INVISIBLE = pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
FILLED = pdfium_c.FPDF_TEXTRENDERMODE_FILL


def rendered(collection, name: str, data: bytes) -> tuple[int, int]:
    (result,) = do_ingest(collection, [Upload.from_bytes(name, data)])
    assert result.ok, result.error
    page = result.document.pages.get()
    assert Image.open(page.image.path).size == (page.width, page.height)
    return page.width, page.height


def pillow_pdf(size: tuple[int, int], dpi: int) -> bytes:
    """A scan as Pillow writes it into a PDF: one image filling the page."""
    return files.encode(files.page_image(*size), "PDF", resolution=dpi)


def built_pdf(
    size: tuple[int, int], dpi: float, *, images: int = 1, text: int | None = None
) -> bytes:
    """A page of `images` scans of `size` pixels at `dpi`, and a line of text drawn in
    `text` mode (invisible: an OCR layer), if any."""
    pdf = pdfium.PdfDocument.new()
    width, height = size[0] / dpi * 72, size[1] / dpi * 72
    page = pdf.new_page(width, height)
    for _ in range(images):
        image = pdfium.PdfImage.new(pdf)
        image.set_bitmap(pdfium.PdfBitmap.from_pil(files.page_image(*size)))
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        page.insert_obj(image)
    if text is not None:
        line = pdfium_c.FPDFPageObj_NewTextObj(pdf, b"Helvetica", ctypes.c_float(12))
        words = ctypes.c_char_p("Dear Sir\0".encode("utf-16-le"))
        pdfium_c.FPDFText_SetText(line, ctypes.cast(words, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
        pdfium_c.FPDFTextObj_SetTextRenderMode(line, text)
        pdfium_c.FPDFPageObj_Transform(line, 1, 0, 0, 1, 10, 10)
        pdfium_c.FPDFPage_InsertObject(page, line)
    page.gen_content()
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("dpi", [150, 200, 300])
@pytest.mark.django_db
def test_a_scan_is_rendered_at_its_own_resolution(letters, dpi):
    assert rendered(letters, f"{dpi}.pdf", pillow_pdf((1200, 800), dpi)) == (1200, 800)


@pytest.mark.django_db
def test_a_scan_finer_than_the_set_dpi_is_rendered_at_it(letters):
    # 1200 px at 600 dpi is 2 inches: 600 px at 300 dpi.
    assert rendered(letters, "fine.pdf", pillow_pdf((1200, 800), 600)) == (600, 400)


@pytest.mark.django_db
def test_a_coarse_scan_is_rendered_at_150_dpi(letters):
    # 600 px at 100 dpi is 6 inches: 900 px at 150 dpi.
    assert rendered(letters, "coarse.pdf", pillow_pdf((600, 400), 100)) == (900, 600)


@pytest.mark.django_db
def test_a_scan_with_an_ocr_layer_is_still_a_scan(letters):
    data = built_pdf((1200, 800), 150, text=INVISIBLE)
    assert rendered(letters, "ocr.pdf", data) == (1200, 800)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("text.pdf", lambda: built_pdf((1200, 800), 150, text=FILLED)),
        ("two-images.pdf", lambda: built_pdf((1200, 800), 150, images=2)),
        ("blank.pdf", lambda: files.pdf_of_sizes([(576, 384)])),
    ],
    ids=["visible-text", "two-images", "no-image"],
)
@pytest.mark.django_db
def test_any_other_page_is_rendered_at_the_set_dpi(letters, name, data):
    # 576 by 384 points is 8 by 5.33 inches: 2400 by 1600 px at 300 dpi.
    assert rendered(letters, name, data()) == (2400, 1600)


@pytest.mark.django_db
def test_the_set_dpi_bounds_a_scan_from_above_and_below(letters, settings):
    settings.OCRREVIEW_PDF_DPI = 120
    assert rendered(letters, "a.pdf", pillow_pdf((1200, 800), 150)) == (960, 640)
    assert rendered(letters, "b.pdf", pillow_pdf((600, 400), 100)) == (720, 480)
