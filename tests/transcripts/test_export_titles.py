"""Titles that hold what no one means in a name (a bidi control, which shows another title, a
control character, which XML cannot carry), typed or read from a METS file, are exported as
names are cleaned (corpus/names.py): TEI's header, the file names of downloads, a IIIF
manifest's label, and the title a METS file gives a document on import."""

import io
import zipfile

import pytest
from django.urls import reverse
from lxml import etree

from ocrreview.corpus.models import Collection, Document, Line
from ocrreview.corpus.xmlimport import parse_mets
from tests import factories
from tests.ingestion.test_transkribus import transkribus_document
from tests.transcripts.test_formats import TEI, content, download

# Shown as "Letter to Anna exe.jpg" reversed: U+202E turns what follows it around. \x07 and
# \x1b are control characters XML 1.0 cannot carry at all, a tab one that looks like a space.
SPOOFED = "Letter to\u202e Anna\x07\x1b\tgpj.exe"
CLEANED = "Letter to Anna gpj.exe"


def test_the_tei_header_and_its_file_name_hold_the_cleaned_titles(client, bob, letter, letters):
    Document.objects.filter(pk=letter.pk).update(title=SPOOFED)
    Collection.objects.filter(pk=letters.pk).update(name="Letters\u2067\x0b1873")

    response = download(client, bob, letter, format="tei")

    assert response.status_code == 200
    tei = etree.fromstring(content(response))  # parses: no control character in it
    header = tei.find(f"{TEI}teiHeader/{TEI}fileDesc")
    assert header.findtext(f"{TEI}titleStmt/{TEI}title") == CLEANED
    assert header.findtext(f"{TEI}sourceDesc/{TEI}bibl/{TEI}title") == CLEANED
    assert header.findtext(f"{TEI}seriesStmt/{TEI}title") == "Letters 1873"
    assert header.findtext(f"{TEI}titleStmt/{TEI}respStmt/{TEI}orgName") == (
        "the reviewers of the collection Letters 1873"
    )
    assert "collection Letters 1873." in header.findtext(f"{TEI}sourceDesc/{TEI}bibl/{TEI}note")
    assert response["Content-Disposition"] == f'attachment; filename="{CLEANED}.tei.xml"'


@pytest.mark.parametrize("format", ["page", "alto"])
def test_a_page_by_page_export_is_named_by_the_cleaned_title(client, bob, letter, format):
    Document.objects.filter(pk=letter.pk).update(title=SPOOFED)
    response = download(client, bob, letter, format=format)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{CLEANED}_{format}.zip"'
    with zipfile.ZipFile(io.BytesIO(content(response))) as archive:
        names = archive.namelist()
        assert names and all(name.startswith(f"{CLEANED}_") for name in names)
        for name in names:
            etree.fromstring(archive.read(name))


@pytest.mark.django_db
def test_a_iiif_manifest_is_labelled_with_the_cleaned_title(client, letters, bob):
    document = factories.make_document(letters, SPOOFED)
    page = factories.make_page(document, 0, 600, 400)
    factories.make_line(page, 0, text="Hello", status=Line.Status.NEEDS_REVIEW, confidence=0.5)
    client.force_login(bob)
    manifest = client.get(reverse("document_iiif_manifest", args=[document.pk])).json()
    assert manifest["label"] == {"none": [CLEANED]}


def test_a_mets_title_is_read_cleaned():
    # XML carries the bidi control and the C1 control U+009B, not \x07.
    title = "Briefe\u202e an\u009b Marie,\t1873"
    mets = transkribus_document("f", 1, ["1.jpg"], ["1.jpg"], title=title)["f/mets.xml"]
    assert parse_mets(mets).title == "Briefe an Marie, 1873"


def test_a_iiif_manifest_url_holding_a_control_character_leaves_the_tei_well_formed(
    client, bob, letter
):
    """Stored by an import from before such URLs were refused (tests/iiif/test_hostile.py)."""
    Document.objects.filter(pk=letter.pk).update(iiif_manifest="https://example.org/m?x=\x01")
    response = download(client, bob, letter, format="tei")
    assert response.status_code == 200
    tei = etree.fromstring(content(response))
    ref = tei.find(f"{TEI}teiHeader/{TEI}fileDesc/{TEI}sourceDesc/{TEI}bibl/{TEI}ref")
    assert ref.get("target") == "https://example.org/m?x=\ufffd"
