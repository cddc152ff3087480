"""A document's transcript in each format: every line, in reading order, marked when no
person reviewed it or nothing was read; valid XML the upload reads back; TEI whose lines
point at their zones."""

import io
import zipfile

import pytest
from django.urls import reverse
from lxml import etree

from ocrreview.corpus import transcripts
from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import CollectionEvent, Document, Line, Page
from ocrreview.corpus.xmlimport import parse_layout_xml
from ocrreview.review import actions as review_actions
from ocrreview.review.models import Correction
from tests import factories
from tests.ingestion import files as ingest_files
from tests.transcripts.conftest import STEM, TEXT, TILDE

TEI = "{http://www.tei-c.org/ns/1.0}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"


def download(client, user, document, **query):
    client.force_login(user)
    return client.get(reverse("document_transcript", args=[document.pk]), query)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_text_holds_every_line_in_reading_order_and_marks_the_unread(client, bob, letter):
    response = download(client, bob, letter, format="txt")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode("utf-8").split("\n") == [*TEXT, ""]


def test_reviewed_only_marks_the_machine_readings_it_leaves_out(client, bob, letter):
    response = download(client, bob, letter, format="txt", reviewed_only="true")

    lines = response.content.decode().split("\n")
    assert lines[1:4] == ["Monsieur le Préfet,", "[not reviewed]", "[unread]"]
    assert lines[6:8] == ["[not reviewed]", TILDE]


def test_files_are_named_after_the_title_rfc_5987_encoded(client, bob, letter):
    response = download(client, bob, letter, format="txt")

    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert disposition.endswith(".txt")
    from urllib.parse import unquote

    assert unquote(disposition.split("''", 1)[1]) == f"{STEM}.txt"


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("Letter to Mr. Smith?", "Letter to Mr. Smith_"),
        ("  ../../etc/passwd  ", "_.._etc_passwd"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("...", "document-7"),
        ("tab\there\nand  spaces", "tab here and spaces"),
    ],
)
def test_a_title_becomes_a_file_name_every_system_takes(title, stem):
    assert transcripts.file_stem(title, "document-7") == stem


def test_a_long_title_is_cut_whole_characters_and_all():
    stem = transcripts.file_stem("é" * 200, "x")
    assert len(stem.encode()) <= transcripts.STEM_BYTES
    assert set(stem) == {"é"}


def zip_entries(response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content(response))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_page_xml_has_a_file_a_page_with_every_line_and_its_status(client, bob, letter):
    response = download(client, bob, letter, format="page")

    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith("_page.zip")
    files = zip_entries(response)
    assert sorted(files) == [f"{STEM}_{n}.xml" for n in (1, 2, 3)]
    first = etree.fromstring(files[f"{STEM}_1.xml"])
    lines = list(first.iter("{*}TextLine"))
    assert [line.get("custom").split("ocrreview ")[1] for line in lines] == [
        "{status:reviewed;}",
        "{status:needs_review;}",
        "{status:pending;}",
    ]
    equivs = [line.find("{*}TextEquiv") for line in lines]
    assert [e.get("conf") for e in equivs] == [None, "0.6200", None]
    assert [e.findtext("{*}Unicode") or "" for e in equivs] == [
        "Monsieur le Préfet,",
        "j’ai l’honneur de vous écrire ;",
        "",
    ]
    third = etree.fromstring(files[f"{STEM}_3.xml"])
    assert list(third.iter("{*}TextLine")) == []


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_the_upload_reads_the_pages_back_line_for_line(client, bob, letter, fmt):
    files = zip_entries(download(client, bob, letter, format=fmt))

    first = parse_layout_xml(files[f"{STEM}_1.xml"], "p1.xml")
    second = parse_layout_xml(files[f"{STEM}_2.xml"], "p2.xml")
    assert [line.text for line in first.lines] == [
        "Monsieur le Préfet,",
        "j’ai l’honneur de vous écrire ;",
        "",
    ]
    assert [line.text for line in second.lines] == ["«\u202fBonjour\u202f»", TILDE, ""]
    assert [line.machine_read for line in first.lines + second.lines] == [
        False,
        True,
        True,
        True,
        False,
        True,
    ]


def test_alto_marks_machine_words_with_their_confidence(client, bob, letter):
    files = zip_entries(download(client, bob, letter, format="alto"))

    alto = etree.fromstring(files[f"{STEM}_1.xml"])
    lines = list(alto.iter("{*}TextLine"))
    assert [line.get("CS") for line in lines] == ["true", "false", "false"]
    assert {s.get("WC") for s in lines[0].iter("{*}String")} == {None}
    assert {s.get("WC") for s in lines[1].iter("{*}String")} == {"0.6200"}


def test_tei_is_well_formed_and_every_line_points_at_its_zone(client, bob, letter, letters):
    letters.licence = "CC BY 4.0"
    letters.language = "fr"
    letters.save()
    response = download(client, bob, letter, format="tei")

    assert response["Content-Type"] == "application/tei+xml"
    assert response["Content-Disposition"].endswith(".tei.xml")
    tei = etree.fromstring(response.content)
    assert tei.tag == f"{TEI}TEI"
    ids = {element.get(XML_ID) for element in tei.iter() if element.get(XML_ID)}
    surfaces = tei.findall(f"{TEI}facsimile/{TEI}surface")
    assert [s.get("n") for s in surfaces] == ["1", "2", "3"]
    zones = [zone for surface in surfaces for zone in surface.findall(f"{TEI}zone")]
    assert len(zones) == 6
    assert all(zone.get("points") and zone.get("lrx") for zone in zones)
    body = tei.find(f"{TEI}text/{TEI}body")
    breaks = list(body.iter(f"{TEI}pb"))
    assert [pb.get("facs")[1:] for pb in breaks] == [s.get(XML_ID) for s in surfaces]
    line_breaks = list(body.iter(f"{TEI}lb"))
    assert [lb.get("facs")[1:] for lb in line_breaks] == [z.get(XML_ID) for z in zones]
    assert {lb.get("facs")[1:] for lb in line_breaks} <= ids

    def after(lb):
        marked = lb.getnext()
        if lb.tail and lb.tail.strip():
            return ("text", lb.tail.strip())
        return (marked.tag.removeprefix(TEI), marked.get("reason") or marked.text)

    assert [after(lb) for lb in line_breaks] == [
        ("text", "Monsieur le Préfet,"),
        ("seg", "j’ai l’honneur de vous écrire ;"),
        ("gap", "unread"),
        ("seg", "«\u202fBonjour\u202f»"),
        ("text", TILDE),
        ("gap", "unread"),
    ]
    machine = body.find(f".//{TEI}seg")
    assert machine.get("type") == "machine-reading"
    assert machine.get("cert") == "0.6200"
    assert machine.get("resp")[1:] in ids
    assert body.find(f".//{TEI}gap[@unit='page']").get("reason") == "page not segmented"
    assert tei.find(f"{TEI}text").get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    header = tei.find(f"{TEI}teiHeader/{TEI}fileDesc")
    assert (
        header.findtext(f"{TEI}titleStmt/{TEI}title")
        == "Lettre à Élise\u202f: «\u202fbrouillon\u202f»/1"
    )
    assert header.findtext(f"{TEI}seriesStmt/{TEI}title") == "Letters"
    assert header.findtext(f".//{TEI}licence") == "CC BY 4.0"
    assert header.findtext(f"{TEI}titleStmt/{TEI}respStmt/{TEI}name") == "tiny"
    assert "6 lines: 2 reviewed, 2 machine readings not reviewed" in header.findtext(f"{TEI}extent")


def test_the_tei_header_counts_one_page_and_one_line_in_the_singular(
    client, bob, letters, model_version
):
    document = factories.make_document(letters, "Note", status=Document.Status.READY)
    page = factories.make_page(document)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SEGMENTED)
    factories.make_line(
        page,
        text="Yours,",
        status=Line.Status.NEEDS_REVIEW,
        confidence=0.4,
        model_version=model_version,
    )

    header = etree.fromstring(download(client, bob, document, format="tei").content).find(
        f"{TEI}teiHeader/{TEI}fileDesc"
    )

    assert header.findtext(f"{TEI}extent") == (
        "1 page, 1 line: 0 reviewed, 1 machine reading not reviewed, "
        "0 machine readings left out, 0 not read"
    )
    assert header.findtext(f".//{TEI}note").startswith(
        "Transcribed on ocrreview from 1 page image,"
    )


def test_tei_with_reviewed_only_has_gaps_for_the_machine_readings(client, bob, letter):
    response = download(client, bob, letter, format="tei", reviewed_only="1")

    tei = etree.fromstring(response.content)
    assert tei.find(f".//{TEI}seg") is None
    reasons = [gap.get("reason") for gap in tei.iter(f"{TEI}gap")]
    assert reasons.count("not-reviewed") == 2
    assert reasons.count("unread") == 2


def mark_unclear(letter):
    """The reviewed first line a guess, with a note; the model's reading below it too."""
    first = Line.objects.filter(page__document=letter, page__index=0).order_by("order")
    Line.objects.filter(pk=first[0].pk).update(unclear=True, unclear_note="the title is a guess")
    Line.objects.filter(pk=first[1].pk).update(unclear=True)


def test_a_line_marked_unclear_is_a_guess_in_every_format(client, bob, letter):
    """It was written as any reviewed line: a person's text read for sure, in PAGE and ALTO
    which the upload takes back as ground truth, and in TEI."""
    mark_unclear(letter)

    text = download(client, bob, letter, format="txt").content.decode().split("\n")
    assert text[1:4] == [
        "Monsieur le Préfet, [?]",
        "j’ai l’honneur de vous écrire ; [?]",
        "[unread]",
    ]

    files = zip_entries(download(client, bob, letter, format="page"))
    lines = list(etree.fromstring(files[f"{STEM}_1.xml"]).iter("{*}TextLine"))
    assert [line.get("custom").split("ocrreview ")[1] for line in lines] == [
        "{status:unclear; unclear:true;}",
        "{status:needs_review; unclear:true;}",
        "{status:pending;}",
    ]
    assert [line.get("comments") for line in lines] == ["the title is a guess", None, None]
    assert lines[0].find("{*}TextEquiv").get("conf") is None

    files = zip_entries(download(client, bob, letter, format="alto"))
    alto = etree.fromstring(files[f"{STEM}_1.xml"])
    lines = list(alto.iter("{*}TextLine"))
    assert [line.get("CS") for line in lines] == ["false", "false", "false"]
    assert {s.get("WC") for s in lines[0].iter("{*}String")} == {None}
    # The mark in ALTO's own terms: a tag of the line's, between Description and Layout as
    # the schema orders them, holding the note.
    assert [etree.QName(child).localname for child in alto] == ["Description", "Tags", "Layout"]
    tags = {tag.get("ID"): tag for tag in alto.iterfind("{*}Tags/{*}OtherTag")}
    refs = [line.get("TAGREFS") for line in lines]
    assert refs[2] is None and set(tags) == {refs[0], refs[1]}
    assert [
        (tags[ref].get("TYPE"), tags[ref].get("LABEL"), tags[ref].get("DESCRIPTION"))
        for ref in refs[:2]
    ] == [("unclear", "unclear", "the title is a guess"), ("unclear", "needs_review", None)]

    tei = etree.fromstring(download(client, bob, letter, format="tei").content)
    first, second = list(tei.iter(f"{TEI}lb"))[:2]
    assert not (first.tail or "").strip()
    unclear, note = first.getnext(), first.getnext().getnext()
    assert (unclear.tag, unclear.text) == (f"{TEI}unclear", "Monsieur le Préfet,")
    assert (note.tag, note.get("type"), note.text) == (
        f"{TEI}note",
        "unclear",
        "the title is a guess",
    )
    seg = second.getnext()
    assert (seg.get("type"), seg.text) == ("machine-reading", None)
    assert seg.findtext(f"{TEI}unclear") == "j’ai l’honneur de vous écrire ;"
    assert seg.getnext().tag == f"{TEI}lb"


def uploaded_again(xml: bytes, collection, user) -> list[Line]:
    """The page's transcript uploaded beside its scan, its text taken as ground truth."""
    results = do_ingest(
        collection,
        [Upload.from_bytes("p1.xml", xml), Upload.from_bytes("p1.png", ingest_files.png())],
        user=user,
        import_text=True,
    )
    assert [r.error for r in results if r.error] == []
    return list(Line.objects.filter(collection=collection).order_by("order"))


def test_an_unclear_line_uploaded_again_in_page_is_unclear_again_with_its_note(
    client, bob, letter, ledgers
):
    """The mark was lost: the reviewer's guess came back as a model's reading, for
    recognition to replace, and no one knew that the line had been a guess."""
    mark_unclear(letter)
    xml = zip_entries(download(client, bob, letter, format="page"))[f"{STEM}_1.xml"]

    guess, machine, unread = uploaded_again(xml, ledgers, bob)

    assert_marks_came_back(guess, machine, unread, bob)

    # The line's history says where its mark came from.
    document = guess.document
    factories.add_member(bob, ledgers)
    client.force_login(bob)
    history = client.get(reverse("review_history", args=[ledgers.pk, guess.pk])).content.decode()
    assert "Imported as ground truth" in history
    assert "Imported marked unclear" in history and "the title is a guess" in history

    # Exported again, it says what it said.
    Line.objects.filter(pk=machine.pk).update(status=Line.Status.NEEDS_REVIEW)
    again = zip_entries(download(client, bob, document, format="page"))
    lines = list(etree.fromstring(next(iter(again.values()))).iter("{*}TextLine"))
    assert [line.get("custom").split("ocrreview ")[1] for line in lines] == [
        "{status:unclear; unclear:true;}",
        "{status:needs_review; unclear:true;}",
        "{status:pending;}",
    ]
    assert [line.get("comments") for line in lines] == ["the title is a guess", None, None]


def assert_marks_came_back(guess, machine, unread, uploader) -> None:
    """The first page of `letter`, marked by mark_unclear, as an upload of its export made it."""
    # As it was: a reviewed text marked unclear, with its note, which keeps it out of
    # training data; its import in its trail as any imported text's, and the mark's after it,
    # so that its history says where the mark came from.
    assert (guess.text, guess.status, guess.unclear, guess.unclear_note) == (
        "Monsieur le Préfet,",
        Line.Status.REVIEWED,
        True,
        "the title is a guess",
    )
    assert trail(guess) == [
        (Correction.Action.IMPORT, uploader.pk, ""),
        (Correction.Action.IMPORT_UNCLEAR, uploader.pk, "the title is a guess"),
    ]
    # A model's reading marked unclear is still no one's text: read again, the mark kept, and
    # its import in the trail.
    assert (machine.text, machine.status, machine.unclear, machine.unclear_note) == (
        "j’ai l’honneur de vous écrire ;",
        Line.Status.PENDING,
        True,
        "",
    )
    assert trail(machine) == [(Correction.Action.IMPORT_UNCLEAR, uploader.pk, "")]
    assert (unread.text, unread.status, unread.unclear) == ("", Line.Status.PENDING, False)
    assert trail(unread) == []


def trail(line) -> list[tuple]:
    return list(
        Correction.objects.filter(line=line)
        .order_by("created_at", "id")
        .values_list("action", "user", "note")
    )


def test_an_unclear_line_uploaded_again_in_alto_is_unclear_again_with_its_note(
    client, bob, letter, ledgers
):
    """ALTO kept no mark (CS="false" only says no ground truth): the reviewer's guess came
    back as a model's reading, for recognition to replace, and no one knew it had been one."""
    mark_unclear(letter)
    xml = zip_entries(download(client, bob, letter, format="alto"))[f"{STEM}_1.xml"]

    guess, machine, unread = uploaded_again(xml, ledgers, bob)

    assert_marks_came_back(guess, machine, unread, bob)
    # Exported again, it says what it said.
    factories.add_member(bob, ledgers)
    Line.objects.filter(pk=machine.pk).update(status=Line.Status.NEEDS_REVIEW)
    again = zip_entries(download(client, bob, guess.document, format="alto"))
    alto = etree.fromstring(next(iter(again.values())))
    tags = {tag.get("ID"): tag for tag in alto.iterfind("{*}Tags/{*}OtherTag")}
    assert [
        (tags[ref].get("LABEL"), tags[ref].get("DESCRIPTION")) if ref else None
        for ref in (line.get("TAGREFS") for line in alto.iter("{*}TextLine"))
    ] == [("unclear", "the title is a guess"), ("needs_review", None), None]


ALTO_TAGS = """<Tags>
    <OtherTag ID="ner1" TYPE="person" LABEL="Préfet"/>
    <OtherTag ID="u1" TYPE="unclear" LABEL="unclear" DESCRIPTION="the name is a guess"/>
    <LayoutTag ID="u2" TYPE="unclear" LABEL="unclear" DESCRIPTION="not an OtherTag"/>
  </Tags>
  <Layout>"""


@pytest.mark.parametrize(
    "tagrefs",
    [
        "nowhere",  # a reference to no tag (IDREFS the schema would refuse)
        "ner1",  # another tool's tag
        "u2",  # a tag of the type, but not the kind our export writes
        "",
    ],
)
def test_tags_of_other_tools_and_references_to_none_mark_nothing(ledgers, bob, tagrefs):
    """As the importer does with what it does not read (another tool's PAGE comments, custom
    attributes, ALTO elements), they are passed over: the line comes in, unmarked."""
    xml = ingest_files.alto("p1.png").replace(b"<Layout>", ALTO_TAGS.encode(), 1)
    xml = xml.replace(b"<TextLine ", f'<TextLine TAGREFS="{tagrefs}" '.encode(), 1)
    for line in uploaded_again(xml, ledgers, bob):
        assert (line.status, line.unclear, line.unclear_note) == (Line.Status.REVIEWED, False, "")
        assert trail(line) == [(Correction.Action.IMPORT, bob.pk, "")]


def test_an_alto_tag_of_ours_from_another_tool_marks_its_line(ledgers, bob):
    """A tool that writes the tag as our export does (hand-edited, or a script) means the
    same: a corrected line (CS true) so tagged is a person's reading marked unclear, and a tag
    without our labels marks a reading that is no ground truth, as PAGE's unknown statuses do."""
    xml = ingest_files.alto("p1.png").replace(b"<Layout>", ALTO_TAGS.encode(), 1)
    xml = xml.replace(b"<TextLine ", b'<TextLine TAGREFS="ner1 u1" ', 1)
    xml = xml.replace(b'<TextLine ID="l2"', b'<TextLine ID="l2" CS="false" TAGREFS="u3"', 1)
    xml = xml.replace(b"</Tags>", b'<OtherTag ID="u3" TYPE="unclear" LABEL="?"/></Tags>', 1)
    marked, machine = uploaded_again(xml, ledgers, bob)
    assert (marked.status, marked.unclear, marked.unclear_note) == (
        Line.Status.REVIEWED,
        True,
        "the name is a guess",
    )
    assert (machine.status, machine.unclear, machine.unclear_note) == (
        Line.Status.PENDING,
        True,
        "",
    )


def test_comments_of_another_tool_are_no_unclear_note(ledgers, bob):
    """PAGE's comments are any tool's: only a line our export marked unclear has a note."""
    xml = ingest_files.page_xml("p1.png").replace(
        b"<TextLine ", b'<TextLine comments="checked by OCR-D" ', 1
    )
    (line,) = uploaded_again(xml, ledgers, bob)
    assert (line.status, line.unclear, line.unclear_note) == (Line.Status.REVIEWED, False, "")


def test_a_box_imported_marked_unclear_may_still_be_deleted(client, alice, letter, ledgers):
    """The mark's import says nothing of the line's text, as a reviewer's mark does not: a
    box that turns out to be no line goes, its marks with it, into the deletion's event."""
    mark_unclear(letter)
    xml = zip_entries(download(client, alice, letter, format="page"))[f"{STEM}_1.xml"]
    _, machine, _ = uploaded_again(xml, ledgers, alice)

    review_actions.do_delete_line(machine, alice, expected_version=machine.version)

    assert not Line.objects.filter(pk=machine.pk).exists()
    event = CollectionEvent.objects.get(event_type=CollectionEvent.Type.LINE_DELETED)
    assert [record["action"] for record in event.extra_data["trail"]] == [
        Correction.Action.IMPORT_UNCLEAR
    ]
