"""A Transkribus export, and ZIP archives of folders of images: a folder a document, its pages
in its METS file's order, its PAGE XML paired with its images, its metadata files no failure."""

import os
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from ocrreview.corpus.ingestion import MAX_SIDECAR_MB, Upload, do_ingest
from ocrreview.corpus.models import Document, Line, Page
from ocrreview.corpus.xmlimport import parse_mets
from tests.factories import token_headers
from tests.ingestion import files
from tests.ingestion.test_api import upload as api_upload

K = Document.Segmentation

METS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"
    OBJID="{doc_id}" TYPE="TRP_DOC_MD">
  <mets:metsHdr CREATEDATE="2026-11-30T10:12:03.412+01:00">
    <mets:agent ROLE="CREATOR" TYPE="OTHER" OTHERTYPE="SOFTWARE">
      <mets:name>Transkribus</mets:name>
    </mets:agent>
  </mets:metsHdr>
  <mets:amdSec ID="SOURCE">
    <mets:sourceMD ID="MD_ORIG">
      <mets:mdWrap MDTYPE="OTHER" OTHERMDTYPE="TRP_DOC_MD">
        <mets:xmlData>
          <trpDocMetadata><docId>{doc_id}</docId>{title}<nrOfPages>{pages}</nrOfPages>
          </trpDocMetadata>
        </mets:xmlData>
      </mets:mdWrap>
    </mets:sourceMD>
  </mets:amdSec>
  <mets:fileSec>
    <mets:fileGrp ID="MASTER">
      <mets:fileGrp ID="IMG">{images}</mets:fileGrp>
      <mets:fileGrp ID="PAGEXML">{xml}</mets:fileGrp>
    </mets:fileGrp>
  </mets:fileSec>
  <mets:structMap ID="TRANSKRIBUS_STRUCT_MAP" TYPE="MANUSCRIPT">
    <mets:div ID="TRANSKRIBUS_DOC" TYPE="document">{divs}</mets:div>
  </mets:structMap>
</mets:mets>
"""
METS_FILE = """
        <mets:file ID="{kind}_{n}" MIMETYPE="{mimetype}" SEQ="{n}">
          <mets:FLocat LOCTYPE="OTHER" OTHERLOCTYPE="FILE" xlink:type="simple"
              xlink:href="{href}"/>
        </mets:file>"""
METS_DIV = """
      <mets:div ID="PAGE_{n}" ORDER="{n}" TYPE="SINGLE_PAGE">
        <mets:fptr><mets:area FILEID="IMG_{file}"/></mets:fptr>
        <mets:fptr><mets:area FILEID="PAGEXML_{file}"/></mets:fptr>
      </mets:div>"""
# PAGE as Transkribus writes it: the 2013 schema, its own metadata, a region's lines.
TRANSKRIBUS_PAGE = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
  <Metadata>
    <Creator>prov=READ-COOP:name=PyLaia@TranskribusPlatform</Creator>
    <Created>2026-11-29T17:02:11.823+01:00</Created>
    <LastChange>2026-11-30T09:58:40.112+01:00</LastChange>
    <TranskribusMetadata docId="{doc_id}" pageId="9{n}" pageNr="{n}" status="GT"/>
  </Metadata>
  <Page imageFilename="{image}" imageWidth="600" imageHeight="400">
    <ReadingOrder><OrderedGroup id="ro_1" caption="Regions reading order">
      <RegionRefIndexed index="0" regionRef="r1"/>
    </OrderedGroup></ReadingOrder>
    <TextRegion orientation="0.0" id="r1" custom="readingOrder {{index:0;}}">
      <Coords points="10,10 590,10 590,390 10,390"/>
      <TextLine id="r1l1" custom="readingOrder {{index:0;}}">
        <Coords points="20,20 500,20 500,70 20,70"/>
        <Baseline points="20,60 500,60"/>
        <TextEquiv><Unicode>{text}</Unicode></TextEquiv>
      </TextLine>
      <TextEquiv><Unicode>{text}</Unicode></TextEquiv>
    </TextRegion>
  </Page>
</PcGts>
"""
METADATA = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<trpDocMetadata><docId>{doc_id}</docId><title>{title}</title><author></author>
<uploadTimestamp>1764490000000</uploadTimestamp><nrOfPages>3</nrOfPages></trpDocMetadata>
"""


def transkribus_document(
    folder: str,
    doc_id: int,
    images: list[str],
    order: list[str],
    *,
    title: str | None = None,
    mets: bytes | None = None,
) -> dict[str, bytes]:
    """A document's folder as Transkribus exports it: its images, page/ with a PAGE file
    each (its text the image's name), metadata.xml and mets.xml, whose structMap gives
    `order`."""
    entries = {}
    for n, image in enumerate(images, start=1):
        stem = image.rsplit(".", 1)[0]
        entries[f"{folder}/{image}"] = files.jpeg()
        entries[f"{folder}/page/{stem}.xml"] = TRANSKRIBUS_PAGE.format(
            doc_id=doc_id, n=n, image=image, text=f"text of {image}"
        ).encode()
    number = {image: n for n, image in enumerate(images, start=1)}
    if mets is None:
        mets = METS.format(
            doc_id=doc_id,
            title=f"<title>{title}</title>" if title else "",
            pages=len(images),
            images="".join(
                METS_FILE.format(kind="IMG", n=n, mimetype="image/jpeg", href=image)
                for image, n in number.items()
            ),
            xml="".join(
                METS_FILE.format(
                    kind="PAGEXML",
                    n=n,
                    mimetype="application/xml",
                    href=f"page/{image.rsplit('.', 1)[0]}.xml",
                )
                for image, n in number.items()
            ),
            divs="".join(
                METS_DIV.format(n=n, file=number[image]) for n, image in enumerate(order, start=1)
            ),
        ).encode()
    entries[f"{folder}/mets.xml"] = mets
    entries[f"{folder}/metadata.xml"] = METADATA.format(
        doc_id=doc_id, title=f"metadata of {doc_id}"
    ).encode()
    return entries


def upload(client, collection, *named, **data):
    return client.post(
        reverse("upload", args=[collection.pk]),
        {
            "files": [SimpleUploadedFile(name, content) for name, content in named],
            "segmentation": "kraken",
            **data,
        },
        headers={"X-Requested-With": "XMLHttpRequest"},
    )


def pages_of(document) -> list[str]:
    return list(document.pages.order_by("index").values_list("source_name", flat=True))


def texts_of(document) -> list[str]:
    lines = Line.objects.filter(page__document=document).order_by("page__index", "order")
    return list(lines.values_list("text", flat=True))


@pytest.mark.django_db
def test_a_transkribus_export_is_a_document_a_folder_in_its_mets_order(
    client, alice, letters, tiny_model
):
    export = {
        # Pages moved in Transkribus: the METS order is not the names'.
        **transkribus_document(
            "export_job_4711/123456/Briefe 1873",
            123456,
            ["0001_brief.jpg", "0002_brief.jpg", "0010_brief.jpg"],
            ["0002_brief.jpg", "0001_brief.jpg", "0010_brief.jpg"],
            title="Briefe an Marie, 1873",
        ),
        # No title in its METS: its metadata.xml's.
        **transkribus_document(
            "export_job_4711/123457/Register",
            123457,
            ["b.jpg", "a.jpg"],
            ["b.jpg", "a.jpg"],
        ),
    }
    client.force_login(alice)
    response = upload(
        client, letters, ("export_job_4711.zip", files.zip_of(export)), import_text="on"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="failed"' not in body, body
    assert "mets.xml" not in body and "metadata.xml" not in body

    briefe, register = Document.objects.filter(collection=letters).order_by("pk")
    assert (briefe.title, register.title) == ("Briefe an Marie, 1873", "metadata of 123457")
    assert [briefe.segmentation, register.segmentation] == [K.IMPORTED, K.IMPORTED]
    assert pages_of(briefe) == ["0002_brief.jpg", "0001_brief.jpg", "0010_brief.jpg"]
    assert texts_of(briefe) == [
        "text of 0002_brief.jpg",
        "text of 0001_brief.jpg",
        "text of 0010_brief.jpg",
    ]
    assert pages_of(register) == ["b.jpg", "a.jpg"]
    assert texts_of(register) == ["text of b.jpg", "text of a.jpg"]
    assert set(Line.objects.values_list("status", flat=True)) == {Line.Status.REVIEWED}
    assert "3 pages, 3 lines → “Briefe an Marie, 1873”" in body

    # The same export again: each folder is refused as the document it already is.
    again = do_ingest(letters, [Upload.from_bytes("again.zip", files.zip_of(export))])
    refused = [r for r in again if r.document is not None]
    assert [(r.duplicate, r.document) for r in refused] == [(True, briefe), (True, register)]
    assert "this folder is already in the collection" in refused[0].error
    assert Document.objects.count() == 2


@pytest.mark.django_db
def test_a_document_folder_zipped_alone_is_one_document_too(letters, tiny_model):
    """The document's own folder zipped from inside: its METS file at the archive's root."""
    folder = transkribus_document("Tagebuch", 9, ["1.jpg", "2.jpg"], ["1.jpg", "2.jpg"])
    inside = {name.removeprefix("Tagebuch/"): data for name, data in folder.items()}
    results = do_ingest(letters, [Upload.from_bytes("Tagebuch.zip", files.zip_of(inside))])
    assert all(r.ok for r in results), [(r.name, r.error) for r in results]
    document = Document.objects.get()
    assert document.title == "metadata of 9"
    assert pages_of(document) == ["1.jpg", "2.jpg"]


MALFORMED = b"<mets:mets xmlns:mets='http://www.loc.gov/METS/'><mets:fileSec>"
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE mets [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<mets xmlns="http://www.loc.gov/METS/"><metsHdr>&lol2;</metsHdr></mets>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE mets [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>
<mets xmlns="http://www.loc.gov/METS/"><metsHdr>&passwd;</metsHdr></mets>
"""
NOT_METS = b"<trpDoc><md><title>x</title></md></trpDoc>"
NO_IMAGES = b"""<mets xmlns="http://www.loc.gov/METS/"><fileSec><fileGrp>
<file ID="x" MIMETYPE="application/xml"/></fileGrp></fileSec></mets>"""


@pytest.mark.parametrize(
    ("mets", "said"),
    [
        (MALFORMED, "the XML is malformed"),
        (LAUGHS, "the XML declares entities or external references, which are refused"),
        (EXTERNAL, "the XML declares entities or external references, which are refused"),
        (NOT_METS, "the file is not METS"),
        (NO_IMAGES, "the METS file lists no page images"),
    ],
    ids=["malformed", "billion-laughs", "external-entity", "not-mets", "no-images"],
)
@pytest.mark.django_db
def test_a_bad_mets_file_is_its_own_error_and_the_pages_go_in_name_order(
    letters, tiny_model, mets, said
):
    folder = transkribus_document(
        "export/7/Akte", 7, ["10.jpg", "9.jpg", "2.jpg"], ["10.jpg", "9.jpg", "2.jpg"], mets=mets
    )
    results = do_ingest(letters, [Upload.from_bytes("x.zip", files.zip_of(folder))])
    errors = {r.name: r.error for r in results if r.error}
    assert list(errors) == ["x.zip/export/7/Akte/mets.xml"]
    assert said in errors["x.zip/export/7/Akte/mets.xml"]
    assert (
        "the folder's pages are in the order of their file names"
        in errors["x.zip/export/7/Akte/mets.xml"]
    )
    document = Document.objects.get()
    assert pages_of(document) == ["2.jpg", "9.jpg", "10.jpg"]
    assert document.segmentation == K.IMPORTED and document.lines.count() == 3


@pytest.mark.django_db
def test_a_mets_file_over_its_size_limit_is_not_read_and_the_pages_go_in_name_order(
    letters, tiny_model
):
    """Held whole as a tree, a METS file of the upload's size limit would take gigabytes."""
    folder = transkribus_document("Akte", 4, ["1.jpg", "2.jpg"], ["2.jpg", "1.jpg"])
    mets = folder["Akte/mets.xml"]
    # A valid METS file giving the order 2, 1, padded past the limit with what barely
    # compresses (the archive would take it for a ZIP bomb).
    padding = os.urandom((MAX_SIDECAR_MB * 1024 * 1024) // 2 + 1).hex()
    folder["Akte/mets.xml"] = mets.replace(
        b"</mets:mets>", f"<!--{padding}--></mets:mets>".encode()
    )
    assert parse_mets(folder["Akte/mets.xml"]).images == ["2.jpg", "1.jpg"]
    results = do_ingest(letters, [Upload.from_bytes("x.zip", files.zip_of(folder))])
    errors = {r.name: r.error for r in results if r.error}
    assert errors == {
        "x.zip/Akte/mets.xml": f"the file is {MAX_SIDECAR_MB}.0 MB, over the {MAX_SIDECAR_MB} MB "
        "that mets.xml is read up to, and is not read; the folder's pages are in the order of "
        "their file names"
    }
    document = Document.objects.get()
    assert pages_of(document) == ["1.jpg", "2.jpg"]
    assert document.title == "metadata of 4"


@pytest.mark.django_db
def test_a_broken_image_fails_its_folder_whole_and_stores_nothing(letters, settings, tiny_model):
    folder = transkribus_document("Akte", 3, ["1.jpg", "2.jpg"], ["1.jpg", "2.jpg"])
    folder["Akte/2.jpg"] = files.jpeg()[:200]
    results = do_ingest(letters, [Upload.from_bytes("x.zip", files.zip_of(folder))])
    (failed,) = [r for r in results if r.error]
    assert failed.name == "x.zip/Akte"
    assert failed.error.startswith("2.jpg: ")
    assert not Document.objects.exists() and not Page.objects.exists()
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


@pytest.mark.django_db
def test_metadata_files_with_no_document_to_describe_are_reported_unused(letters):
    results = do_ingest(
        letters,
        [
            Upload.from_bytes("mets.xml", METS.encode()),
            Upload.from_bytes(
                "flat.zip", files.zip_of({"metadata.xml": b"<x/>", "a.jpg": files.jpeg()})
            ),
        ],
    )
    errors = {r.name: r.error for r in results if r.error}
    assert set(errors) == {"mets.xml", "flat.zip/metadata.xml"}
    assert all(error.startswith("not used: ") for error in errors.values())
    assert Document.objects.get().title == "a"


@pytest.mark.django_db
def test_folders_of_images_are_documents_when_the_form_says_so(client, alice, letters):
    archive = files.zip_of(
        {
            "cover.jpg": files.jpeg(),
            "box/10.jpg": files.jpeg(),
            "box/2.jpg": files.png(),
            "box/letter.pdf": files.pdf(2),
            "box/sub/1.jpg": files.jpeg(),
        }
    )
    client.force_login(alice)
    response = upload(client, letters, ("scans.zip", archive), folders="on")
    assert response.status_code == 200 and b'class="failed"' not in response.content
    documents = {d.title: pages_of(d) for d in Document.objects.filter(collection=letters)}
    # The archive's own images, and a PDF, stay documents of their own.
    assert documents == {
        "cover": ["cover.jpg"],
        "box": ["2.jpg", "10.jpg"],
        "letter": ["letter-1.jpg", "letter-2.jpg"],
        "sub": ["1.jpg"],
    }


@pytest.mark.django_db
def test_without_the_option_each_image_of_a_plain_folder_stays_a_document(client, alice, letters):
    archive = files.zip_of({"box/10.jpg": files.jpeg(), "box/2.jpg": files.jpeg()})
    client.force_login(alice)
    assert upload(client, letters, ("scans.zip", archive)).status_code == 200
    assert sorted(Document.objects.values_list("title", flat=True)) == ["10", "2"]


@pytest.mark.django_db
def test_a_folder_with_layout_for_some_images_imports_those_and_segments_the_rest(
    letters, tiny_model
):
    folder = transkribus_document("Akte", 3, ["1.jpg", "2.jpg"], ["1.jpg", "2.jpg"])
    del folder["Akte/page/2.xml"]
    results = do_ingest(letters, [Upload.from_bytes("x.zip", files.zip_of(folder))])
    assert all(r.ok for r in results), [r.error for r in results]
    document = Document.objects.get()
    assert document.segmentation == K.KRAKEN
    statuses = list(document.pages.order_by("index").values_list("status", flat=True))
    assert statuses == [Page.Status.SEGMENTED, Page.Status.PENDING]

    Document.objects.all().delete()
    results = do_ingest(
        letters, [Upload.from_bytes("x.zip", files.zip_of(folder))], segmentation=K.IMPORTED
    )
    (failed,) = [r for r in results if r.error]
    assert (
        failed.error == "no PAGE XML or ALTO file was uploaded for 1 of its images (such as 2.jpg)"
    )


@pytest.mark.django_db
def test_a_zip_whose_paths_are_parted_by_backslashes_reads_as_its_folders(letters, tiny_model):
    """As old Windows tools (.NET's before 4.6.1) zip a folder: a backslash between its
    parts, and a folder's own entry ending with one."""
    folder = transkribus_document("Akte", 8, ["1.jpg", "2.jpg"], ["2.jpg", "1.jpg"])
    entries = {"Akte\\": b"", "Akte\\page\\": b""}
    entries |= {name.replace("/", "\\"): data for name, data in folder.items()}
    results = do_ingest(
        letters, [Upload.from_bytes("x.zip", files.zip_of(entries))], import_text=True
    )
    assert [(r.name, r.error) for r in results] == [
        ("x.zip/Akte/page/1.xml", ""),
        ("x.zip/Akte/page/2.xml", ""),
        ("x.zip/Akte", ""),
    ]
    document = Document.objects.get()
    assert pages_of(document) == ["2.jpg", "1.jpg"]
    assert texts_of(document) == ["text of 2.jpg", "text of 1.jpg"]


@pytest.mark.django_db
def test_the_api_takes_the_folders_option_and_reads_transkribus_exports(client, alice, letters):
    archive = files.zip_of(
        {
            **transkribus_document("export/5/Akte", 5, ["1.jpg", "2.jpg"], ["2.jpg", "1.jpg"]),
            "box/2.jpg": files.jpeg(),
            "box/1.jpg": files.jpeg(),
        }
    )
    response = api_upload(client, letters, token_headers(alice), ("x.zip", archive), folders="true")
    assert response.status_code == 201, response.json()
    made = [(f["file"], f["pages"]) for f in response.json()["files"] if f["document"]]
    assert made == [("x.zip/export/5/Akte", 2), ("x.zip/box", 2)]
    assert [pages_of(d) for d in Document.objects.order_by("pk")] == [
        ["2.jpg", "1.jpg"],
        ["1.jpg", "2.jpg"],
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "folder, counted",
    [
        # Three images: refused before any is read.
        ({"box/1.jpg": files.jpeg(), "box/2.jpg": files.jpeg(), "box/3.jpg": files.jpeg()}, "3"),
        # Two files, each within the limit, three pages together.
        ({"box/1.jpg": files.jpeg(), "box/2.tif": files.tiff(2)}, "more than 2"),
    ],
)
def test_a_folder_over_the_page_limit_is_refused_and_stores_nothing(
    letters, settings, folder, counted
):
    settings.OCRREVIEW_MAX_PAGES = 2
    # Stored, not deflated: a TIFF of blank pages deflates like a ZIP bomb.
    archive = Upload.from_bytes("x.zip", files.zip_of(folder, compression=zipfile.ZIP_STORED))
    (result,) = do_ingest(letters, [archive], folders=True)
    assert result.name == "x.zip/box"
    assert f"the folder has {counted} pages; the limit is 2 (OCRREVIEW_MAX_PAGES)" in result.error
    assert not Document.objects.exists()
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["\u00b2", "9" * 5000])
def test_a_mets_order_that_is_no_small_ascii_number_leaves_the_pages_in_the_mets_order(
    letters, tiny_model, order
):
    folder = transkribus_document("Akte", 7, ["b.jpg", "a.jpg"], ["b.jpg", "a.jpg"])
    mets = folder["Akte/mets.xml"].decode()
    folder["Akte/mets.xml"] = mets.replace('ORDER="1"', f'ORDER="{order}"', 1).encode()
    results = do_ingest(letters, [Upload.from_bytes("x.zip", files.zip_of(folder))])
    assert not [r.error for r in results if r.error]
    assert pages_of(Document.objects.get()) == ["b.jpg", "a.jpg"]


@pytest.mark.django_db
def test_two_archives_of_one_name_keep_their_folders_documents_of_their_own(letters, tiny_model):
    """Both named export.zip, both holding Akte/: their folders were grouped by name, the two
    merged into one document, and the second one's PAGE files taken for duplicates."""
    first = transkribus_document("Akte", 1, ["1.jpg", "2.jpg"], ["2.jpg", "1.jpg"])
    second = transkribus_document(
        "Akte", 2, ["1.jpg", "2.jpg", "3.jpg"], ["3.jpg", "1.jpg", "2.jpg"]
    )
    results = do_ingest(
        letters,
        [
            Upload.from_bytes("export.zip", files.zip_of(first)),
            Upload.from_bytes("export.zip", files.zip_of(second)),
        ],
        import_text=True,
    )
    assert [r.error for r in results if r.error] == []
    one, two = Document.objects.filter(collection=letters).order_by("pk")
    assert (one.title, two.title) == ("metadata of 1", "metadata of 2")
    assert pages_of(one) == ["2.jpg", "1.jpg"]
    assert pages_of(two) == ["3.jpg", "1.jpg", "2.jpg"]
    # Each page's text is its own archive's: the images differ, so the lines' places tell.
    for document in (one, two):
        assert document.segmentation == K.IMPORTED
        assert texts_of(document) == [f"text of {name}" for name in pages_of(document)]
    assert sum(r.lines for r in results if r.name.endswith(".xml")) == 5


@pytest.mark.django_db
def test_an_unzipped_transkribus_export_on_disk_imports_as_its_zip_does(
    tmp_path, letters, tiny_model, capsys
):
    """import_documents read each folder on its own: page/ never met its images, every PAGE
    file failed as naming an image not part of the upload."""
    export = transkribus_document(
        "Briefe", 7, ["0001.jpg", "0002.jpg", "0010.jpg"], ["0010.jpg", "0001.jpg", "0002.jpg"]
    )
    for name, data in export.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)

    call_command(
        "import_documents", str(tmp_path / "Briefe"), "--collection", "Letters", "--import-text"
    )

    captured = capsys.readouterr()
    assert "FAILED" not in captured.err, captured.err
    document = Document.objects.get(collection=letters)
    assert document.title == "metadata of 7"
    assert document.segmentation == K.IMPORTED
    assert pages_of(document) == ["0010.jpg", "0001.jpg", "0002.jpg"]
    assert texts_of(document) == ["text of 0010.jpg", "text of 0001.jpg", "text of 0002.jpg"]
    assert set(Line.objects.values_list("status", flat=True)) == {Line.Status.REVIEWED}
