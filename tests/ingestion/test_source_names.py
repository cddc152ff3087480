"""Pages keep the name of the file they came from, and the PAGE, ALTO and TEI transcripts name
that file, so that Transkribus, eScriptorium or an upload here pair them with the scans."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from lxml import etree

from ocrreview.corpus.iiif import do_fetch_iiif_images, do_import_iiif
from ocrreview.corpus.ingestion import (
    Upload,
    do_ingest,
    remote_source_name,
    source_name,
)
from ocrreview.corpus.models import Document, Line, Membership
from ocrreview.corpus.names import clean_name
from ocrreview.corpus.transcripts import transcript
from tests import factories
from tests.iiif.conftest import iiif_server  # noqa: F401
from tests.iiif.server import manifest_3
from tests.ingestion import files

PAGE_NS = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"
ALTO_NS = "{http://www.loc.gov/standards/alto/ns-v4#}"


def upload(client, collection, *named, **data):
    return client.post(
        reverse("upload", args=[collection.pk]),
        {
            "files": [SimpleUploadedFile(name, content) for name, content in named],
            "segmentation": "whole_image",
            **data,
        },
        headers={"X-Requested-With": "XMLHttpRequest"},
    )


def downloaded(client, document, fmt: str) -> dict[str, bytes]:
    response = client.get(reverse("document_transcript", args=[document.pk]), {"format": fmt})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.django_db
def test_page_and_alto_name_the_scans_as_uploaded_and_pair_with_them_again(
    client, alice, letters, ledgers, tiny_model
):
    scans = {"Brief 1873-04-02.jpg": files.jpeg(), "verso_été.png": files.png()}
    client.force_login(alice)
    response = upload(client, letters, ("scans.zip", files.zip_of(scans)))
    assert response.status_code == 200, response.content
    documents = Document.objects.filter(collection=letters).order_by("title")
    assert [d.pages.get().source_name for d in documents] == list(scans)
    # The reviewers' text, to see it come back with the layout.
    for document in documents:
        document.lines.update(text=f"read on {document.title}", status=Line.Status.REVIEWED)

    exported = {}
    for document, image in zip(documents, scans, strict=True):
        ((page_name, page_file),) = downloaded(client, document, "page").items()
        ((_, alto_file),) = downloaded(client, document, "alto").items()
        page_root = etree.fromstring(page_file)
        alto_root = etree.fromstring(alto_file)
        assert page_root.find(f"{PAGE_NS}Page").get("imageFilename") == image
        assert alto_root.findtext(f".//{ALTO_NS}fileName") == image
        tei = client.get(
            reverse("document_transcript", args=[document.pk]), {"format": "tei"}
        ).content
        assert f'url="{image}"'.encode() in tei
        exported[f"page/{page_name}"] = page_file

    # The transcripts beside the original scans, as Transkribus lays them out, into another
    # collection (its own would refuse its own exported lines).
    factories.add_member(alice, ledgers, Membership.Role.ADMIN)
    response = upload(
        client, ledgers, ("back.zip", files.zip_of({**scans, **exported})), import_text="on"
    )
    assert response.status_code == 200
    assert b'class="failed"' not in response.content, response.content.decode()
    back = Document.objects.filter(collection=ledgers).order_by("title")
    assert [d.segmentation for d in back] == [Document.Segmentation.IMPORTED] * 2
    assert [d.lines.get().text for d in back] == [
        "read on Brief 1873-04-02",
        "read on verso_été",
    ]


@pytest.mark.django_db
def test_pages_of_pdfs_and_tiffs_are_named_as_pdftoppm_names_them(letters):
    results = do_ingest(
        letters,
        [
            Upload.from_bytes("letters.pdf", files.pdf(2)),
            Upload.from_bytes("register.tif", files.tiff(3)),
            Upload.from_bytes("card.tif", files.tiff(1)),
            Upload.from_bytes("/srv/scans/C:\\Scans\\memo.png", files.png()),
        ],
    )
    assert [r.error for r in results] == ["", "", "", ""]
    names = {r.name: list(r.document.pages.values_list("source_name", flat=True)) for r in results}
    assert names == {
        "letters.pdf": ["letters-1.jpg", "letters-2.jpg"],
        "register.tif": ["register-1.jpg", "register-2.jpg", "register-3.jpg"],
        "card.tif": ["card.tif"],
        "/srv/scans/C:\\Scans\\memo.png": ["memo.png"],
    }


def test_page_numbers_are_padded_to_the_last_page_s_digits_and_long_names_keep_their_suffix():
    assert source_name("a.pdf", "pdf", 12, 3, "jpg") == "a-03.jpg"
    assert source_name("a.pdf", "pdf", 1, 1, "jpg") == "a-1.jpg"
    long = source_name("x" * 300 + ".jpeg", "jpeg", 1, 1, "jpg")
    assert len(long) == 255 and long.endswith("x.jpeg")


@pytest.mark.django_db
def test_a_page_made_before_names_were_kept_is_named_after_its_document(letters):
    document = factories.make_document(letters, "Old letter", status=Document.Status.READY)
    page = factories.make_page(document, 0)
    assert page.source_name == ""
    ((_, xml_page, _),) = transcript(document).xml_pages()
    assert xml_page.image_filename == "Old letter_1.png"


@pytest.mark.django_db
def test_a_iiif_page_is_named_by_its_image_service_when_that_names_a_file(
    iiif_server,  # noqa: F811
    letters,
):
    named = iiif_server.image_service("0001.jp2", 640, 480)
    unnamed = iiif_server.image_service("f2", 500, 700)
    url = manifest_3(
        iiif_server, "/m/manifest.json", [("f. 1r", 640, 480, named), ("f. 1v", 500, 700, unnamed)]
    )
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    pages = document.pages.order_by("index")
    assert list(pages.values_list("source_name", flat=True)) == ["0001.jp2", ""]
    names = [xml.image_filename for _, xml, _ in transcript(document).xml_pages()]
    assert names == ["0001.jp2", "Letters of Rebecca Lathrop_2.jpg"]


@pytest.mark.parametrize(
    ("service", "image", "name"),
    [
        (
            "https://x.org/iiif/2/ms12%2F0001.jp2",
            "https://x.org/iiif/2/ms12%2F0001.jp2/full/full/0/default.jpg",
            "0001.jp2",
        ),
        (
            "https://x.org/iiif/btv1b8449691v/f12",
            "https://x.org/iiif/btv1b8449691v/f12/full/max/0/default.jpg",
            "",
        ),
        ("", "https://x.org/scans/Brief%20%C3%A9t%C3%A9.JPG?v=2", "Brief été.JPG"),
        ("", "https://x.org/render?page=3", ""),
        # Escaped control characters are cleaned as an upload's are.
        ("https://x.org/iiif/a%00b.jp2", "https://x.org/iiif/a%00b.jp2/full/max/0/x.jpg", "ab.jp2"),
        ("", "https://x.org/scans/f%091%E2%80%AEr.jpg", "f 1r.jpg"),
    ],
)
def test_a_remote_image_s_name_is_a_file_name_or_none(service, image, name):
    assert remote_source_name(service, image) == name


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("Brief\t1873.jpg", "Brief 1873.jpg"),
        ("line\r\nbreak.png", "line break.png"),
        ("nul\x00bell\x07del\x7fcsi\x9b.jpg", "nulbelldelcsi.jpg"),
        ("next\x85line\u2028.jpg", "next line .jpg"),
        # Shown as "scan_exe.jpg", it is an .exe.
        ("scan_\u202egpj.exe", "scan_gpj.exe"),
        ("\ufeff\u2067\u05d0\u2069\u200f\u061c\udc80.jpg", "\u05d0.jpg"),
        # macOS's decomposed é, and a joiner that Persian and Indic names need, stay.
        (
            "ete\u0301_\u0645\u06cc\u200c\u0634\u0648\u062f.jpg",
            "et\u00e9_\u0645\u06cc\u200c\u0634\u0648\u062f.jpg",
        ),
    ],
)
def test_a_file_name_loses_the_characters_no_one_means_in_it(name, cleaned):
    assert clean_name(name) == cleaned
    assert clean_name(cleaned) == cleaned


CONTROLLED = {
    "box/Brief\t1873.jpg": "Brief 1873.jpg",
    "box/line\r\nbreak.png": "line break.png",
    "box/bell\x07del\x7fcsi\x9b.jpg": "belldelcsi.jpg",
    "box/scan_\u202egnp.png": "scan_gnp.png",
}


@pytest.mark.django_db
def test_control_characters_in_names_are_dropped_and_exports_name_the_scan_in_valid_xml(
    client, alice, letters, tiny_model
):
    """In a ZIP entry's name (where NUL cannot be: zipfile ends a name there), a PDF's and a
    TIFF's: pages, titles and results show the name without them, and the PAGE, ALTO and TEI
    files name the scan in XML that parses, with no U+FFFD standing in for them."""
    entries = {name: files.jpeg() if name.endswith("jpg") else files.png() for name in CONTROLLED}
    results = do_ingest(
        letters,
        [
            Upload.from_bytes("scans\u202e.zip", files.zip_of(entries)),
            Upload.from_bytes("re\x00port\u2066.pdf", files.pdf(2)),
            Upload.from_bytes("reg\tister.tif", files.tiff(2)),
        ],
        segmentation=Document.Segmentation.WHOLE_IMAGE,
    )
    assert [(r.name, r.error) for r in results] == [
        ("scans.zip/box/Brief 1873.jpg", ""),
        ("scans.zip/box/line break.png", ""),
        ("scans.zip/box/belldelcsi.jpg", ""),
        ("scans.zip/box/scan_gnp.png", ""),
        ("report.pdf", ""),
        ("reg ister.tif", ""),
    ]
    names = {
        r.document.title: list(
            r.document.pages.order_by("index").values_list("source_name", flat=True)
        )
        for r in results
    }
    assert names == {
        "Brief 1873": ["Brief 1873.jpg"],
        "line break": ["line break.png"],
        "belldelcsi": ["belldelcsi.jpg"],
        "scan_gnp": ["scan_gnp.png"],
        "report": ["report-1.jpg", "report-2.jpg"],
        "reg ister": ["reg ister-1.jpg", "reg ister-2.jpg"],
    }

    client.force_login(alice)
    for result in results:
        document = result.document
        scans = names[document.title]
        page_files = downloaded(client, document, "page")
        alto_files = downloaded(client, document, "alto")
        tei = client.get(
            reverse("document_transcript", args=[document.pk]), {"format": "tei"}
        ).content
        for data in [*page_files.values(), *alto_files.values(), tei]:
            assert "\ufffd".encode() not in data
        page_images = [
            etree.fromstring(data).find(f"{PAGE_NS}Page").get("imageFilename")
            for _, data in sorted(page_files.items())
        ]
        alto_images = [
            etree.fromstring(data).findtext(f".//{ALTO_NS}fileName")
            for _, data in sorted(alto_files.items())
        ]
        tei_images = [
            graphic.get("url")
            for graphic in etree.fromstring(tei).iter("{http://www.tei-c.org/ns/1.0}graphic")
        ]
        assert page_images == alto_images == tei_images == scans


@pytest.mark.django_db
def test_files_with_long_dotted_names_are_stored_and_keep_their_names_as_uploaded(letters):
    """Django reads a name's extension from its first dot: with dates in the name, what was
    left before it could not be cut to fit the field, and the upload was refused."""
    pdf = "Protokolle 1923.04.01-1923.12.31 Gemeinderat Sitzungen.pdf"
    scan = "Brief v. 2.3.1871 an Hrn. Dr. med. " + "A." * 60 + "jpg"
    results = do_ingest(
        letters, [Upload.from_bytes(pdf, files.pdf(1)), Upload.from_bytes(scan, files.jpeg())]
    )
    assert [r.error for r in results] == ["", ""]
    stored_pdf = results[0].document.source_file
    assert stored_pdf.name.endswith("/Protokolle_1923_04_01-1923_12_31_Gemeinderat_S.pdf")
    assert stored_pdf.read().startswith(b"%PDF")
    page = results[1].document.pages.get()
    assert page.source_name == scan
    assert len(page.image.name) <= 100 and page.image.name.endswith(".jpg")
    assert page.image.read()[:3] == b"\xff\xd8\xff"
