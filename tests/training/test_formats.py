"""PAGE XML and ALTO as exports write them, and as the upload form reads them back."""

import pytest
from lxml import etree

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Line
from ocrreview.corpus.xmlformats import XmlLine, XmlPage, alto_xml, page_xml
from ocrreview.corpus.xmlimport import parse_layout_xml
from ocrreview.review.models import Correction
from ocrreview.training import splits
from ocrreview.transcription.models import Hypothesis
from tests import factories
from tests.ingestion import files
from tests.training.conftest import export_zip, make_rendered_page, mark_reviewed
from tests.training.test_exports import export_now, split_of


def exported_folder(export, folder: str) -> dict[str, bytes]:
    """One format's files of an export (its XML and page images), by their names in it."""
    with export_zip(export) as archive:
        return {
            name: archive.read(name) for name in archive.namelist() if name.startswith(f"{folder}/")
        }


def upload_folder(collection, user, entries: dict[str, bytes]):
    archive = Upload.from_bytes("export.zip", files.zip_of(entries))
    return do_ingest(collection, [archive], user=user, import_text=True)


def with_auto_accepted_line(collection, text: str = "acab") -> Line:
    document = factories.make_document(collection, "Auto")
    (line,) = make_rendered_page(
        document, [text], status=Line.Status.AUTO_ACCEPTED, confidence=0.99
    )
    return line


@pytest.mark.parametrize("folder", ["page", "alto"])
def test_an_auto_accepted_line_comes_back_as_a_model_s_reading_not_ground_truth(
    letters, ledgers, alice, reviewed_letters, folder
):
    """Uploaded with "take the text as reviewed ground truth", an export's XML made the model's
    auto-accepted readings a person's, fit for training and for the evaluation split."""
    with_auto_accepted_line(letters)
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)

    results = upload_folder(ledgers, alice, exported_folder(export, folder))

    assert all(r.ok for r in results), [r.error for r in results]
    machine = Line.objects.get(collection=ledgers, text="acab")
    assert machine.status == Line.Status.PENDING
    assert not Correction.objects.filter(line=machine).exists()
    reviewed = Line.objects.filter(collection=ledgers).exclude(pk=machine.pk)
    assert reviewed.count() == 24
    assert {line.status for line in reviewed} == {Line.Status.REVIEWED}
    assert (
        Correction.objects.filter(line__in=reviewed, action=Correction.Action.IMPORT).count() == 24
    )


def test_each_exported_line_says_whether_a_person_reviewed_it(letters, alice, reviewed_letters):
    """In the ALTO schema's correction status, and in PAGE as kraken reads a line's tags."""
    auto = with_auto_accepted_line(letters)
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)
    names = [
        f"document-{document_id}-page-0001.xml"
        for document_id in (auto.document_id, reviewed_letters[0].document_id)
    ]

    page, alto = exported_folder(export, "page"), exported_folder(export, "alto")
    page_lines = [
        line
        for name in names
        for line in etree.fromstring(page[f"page/{name}"]).iter("{*}TextLine")
    ]
    assert [line.get("custom") for line in page_lines] == [
        "readingOrder {index:0;} ocrreview {status:auto_accepted;}",
        *(f"readingOrder {{index:{order};}} ocrreview {{status:reviewed;}}" for order in range(4)),
    ]
    alto_lines = [
        line
        for name in names
        for line in etree.fromstring(alto[f"alto/{name}"]).iter("{*}TextLine")
    ]
    assert [line.get("CS") for line in alto_lines] == ["false", "true", "true", "true", "true"]


def test_a_confidence_scores_the_text_only_where_the_model_wrote_it(
    letters, alice, reviewed_letters, model_version
):
    """A reviewed line's confidence is the model's score of the reading its reviewer replaced;
    the alternatives keep their own scores."""
    reviewed = reviewed_letters[0]
    Line.objects.filter(pk=reviewed.pk).update(model_version=model_version, confidence=0.42)
    Hypothesis.objects.create(
        line=reviewed,
        model_version=model_version,
        rank=0,
        text="bb",
        logprob=-1.0,
        confidence=0.42,
        share=1.0,
    )
    auto = with_auto_accepted_line(letters)
    export = export_now(letters, alice, include_auto_accepted=True, min_confidence=0.9)
    names = {line.pk: f"document-{line.document_id}-page-0001.xml" for line in (reviewed, auto)}

    page, alto = exported_folder(export, "page"), exported_folder(export, "alto")
    page_scores = {
        pk: [
            (equiv.get("index"), equiv.get("conf"))
            for equiv in etree.fromstring(page[f"page/{name}"]).findall(
                f".//{{*}}TextLine[@id='l{pk}']/{{*}}TextEquiv"
            )
        ]
        for pk, name in names.items()
    }
    assert page_scores == {reviewed.pk: [("0", None), ("1", "0.4200")], auto.pk: [("0", "0.9900")]}
    alto_scores = {
        pk: [
            string.get("WC")
            for string in etree.fromstring(alto[f"alto/{name}"]).findall(
                f".//{{*}}TextLine[@ID='l{pk}']/{{*}}String"
            )
        ]
        for pk, name in names.items()
    }
    assert alto_scores == {reviewed.pk: [None], auto.pk: ["0.9900"]}


@pytest.mark.parametrize("folder", ["page", "alto"])
def test_an_export_s_xml_does_not_upload_into_its_own_collection(
    letters, alice, bob, reviewed_letters, folder
):
    """Its frozen test lines would come back as new ground truth, free to be trained on. The
    upload's checksum does not tell: the pages of a PDF or a rotated photo are not the file
    uploaded. A line edited since the export is known by a text it held."""
    export = export_now(letters, alice)
    edited = reviewed_letters[0]
    edited.text = "zz"
    edited.version += 1
    edited.save()
    Correction.objects.create(
        line=edited,
        user=bob,
        action=Correction.Action.EDIT,
        text_before="ab",
        text_after="zz",
        line_version=edited.version,
    )
    stem = f"{folder}/document-{edited.document_id}-page-0001"
    entries = exported_folder(export, folder)

    results = upload_folder(letters, alice, entries)

    refused = [r for r in results if r.error]
    assert len(refused) == 6
    first_page = next(r for r in refused if r.name == f"export.zip/{stem}.png")
    assert first_page.error == (
        f"4 lines of its PAGE/ALTO file (such as line {edited.pk}) are this collection's own "
        "lines, exported from it; an export imports into another collection"
    )
    assert Line.objects.filter(collection=letters).count() == 24


def test_points_off_the_page_are_written_on_its_edge():
    """An imported line may reach past the page (-3,2): PAGE's schema has no negative point,
    and an ALTO position is measured from the page's corner."""
    line = XmlLine(
        id=1,
        text="ab",
        confidence=None,
        bbox=[0, 2, 120, 40],
        polygon=[[-3, 2], [125, 2], [125, 44], [-3, 44]],
        baseline=[[-3, 30], [125, 31]],
    )
    page = XmlPage(image_filename="p.png", width=120, height=40, lines=[line], number=1)

    page_line = etree.fromstring(page_xml(page)).find(".//{*}TextLine")
    assert page_line.find("{*}Coords").get("points") == "0,2 120,2 120,40 0,40"
    assert page_line.find("{*}Baseline").get("points") == "0,30 120,31"
    alto_line = etree.fromstring(alto_xml(page, "p1")).find(".//{*}TextLine")
    assert alto_line.find(".//{*}Polygon").get("POINTS") == "0,2 120,2 120,40 0,40"
    assert alto_line.get("BASELINE") == "0,30 120,31"
    assert [alto_line.get(name) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] == [
        "0",
        "2",
        "120",
        "38",
    ]


def test_alto_words_are_what_plain_spaces_separate_and_read_back_whole():
    """str.split() cut words at no-break and ideographic spaces and dropped a double space.
    (A line separator, U+2028, is a line break: no line's text holds one.)"""
    text = "12\u00a0000  Fr.\u202f! a\u3000b\u2009c d"
    line = XmlLine(id=1, text=text, confidence=None, bbox=[0, 0, 400, 40])
    alto = alto_xml(
        XmlPage(image_filename="p.png", width=400, height=40, lines=[line], number=1), "p1"
    )

    strings = etree.fromstring(alto).findall(".//{*}String")
    assert [string.get("CONTENT") for string in strings] == [
        "12\u00a0000",
        " Fr.\u202f!",
        "a\u3000b\u2009c",
        "d",
    ]
    assert [imported.text for imported in parse_layout_xml(alto, "p.xml").lines] == [text]


def test_a_text_of_whitespace_alone_is_left_out_of_an_export(letters, alice, bob, reviewed_letters):
    """It reads nothing of its image, and in ALTO it made a line without a String, which the
    schema does not allow."""
    document = factories.make_document(letters, "Blank")
    blank = make_rendered_page(document, ["ab", "ba"])
    blank[0].text, blank[1].text = "  ", "\u00a0\u3000"
    mark_reviewed(blank, bob)

    export = export_now(letters, alice)

    assert export.counts["lines"] == 24
    assert not {line.pk for line in blank} & set(split_of(export))
    # Nor does it measure a model: the frozen split never holds it.
    assert not {line.pk for line in blank} & {
        line.pk for line in splits.evaluation_candidates(letters)
    }


@pytest.mark.parametrize("write", [page_xml, lambda page: alto_xml(page, "p1")])
def test_a_baseline_reads_back_as_it_was_written(write):
    """ALTO 4.2 writes its points with commas, "10,30 110,34"; the upload took those for two
    numbers, too few for a baseline, and drew one across the box in its place."""
    line = XmlLine(
        id=1, text="ab", confidence=None, bbox=[10, 5, 110, 40], baseline=[[10, 30], [110, 34]]
    )
    xml = write(XmlPage(image_filename="p.png", width=120, height=40, lines=[line], number=1))
    (imported,) = parse_layout_xml(xml, "p.xml").lines
    assert imported.baseline == [(10, 30), (110, 34)]


def test_alto_numbers_each_page_as_its_document_does(letters, alice, bob, reviewed_letters):
    document = reviewed_letters[0].document
    mark_reviewed(make_rendered_page(document, ["ab"], index=1), bob)
    export = export_now(letters, alice, formats=["alto"])

    alto = exported_folder(export, "alto")
    numbers = [
        etree.fromstring(alto[f"alto/document-{document.pk}-page-{n:04d}.xml"])
        .find(".//{*}Page")
        .get("PHYSICAL_IMG_NR")
        for n in (1, 2)
    ]
    assert numbers == ["1", "2"]
