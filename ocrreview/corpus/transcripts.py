"""A document's transcription, whole, for an archive: plain text, PAGE XML and ALTO per page,
TEI P5; and a collection's, all four for each document, as one zip sent while it is written.

Every line of the document is in every format, in reading order, whether or not anyone read it:

- reviewed: a person's text;
- a machine reading (recognized, needs review, in review, auto-accepted): the model's text, marked
  as such with its confidence in PAGE (the line's status in `custom`, `TextEquiv@conf`), ALTO
  (`CS="false"`, `String@WC`) and TEI (`<seg type="machine-reading" cert resp>`); the plain text
  has nowhere to mark it without changing the text people cite, so it is plain there, and
  `reviewed_only` gives a file whose every line a person checked;
- unread (not read yet, its reading failed, or the model read nothing): `[unread]` in the text,
  `<gap reason="unread"/>` in TEI, an empty text with the line's status in PAGE and ALTO;
- with `reviewed_only`, a machine reading is left out the same way, as `[not reviewed]`;
- marked unclear by a reviewer (a guess, whoever wrote it): `unclear:true` with a status that
  is not `reviewed` in PAGE and the note in its `comments`, `CS="false"` in ALTO and a tag of
  the line's holding the note, so that an upload of either takes it for no ground truth and
  brings the mark back; `<unclear>` and a `<note type="unclear">` in
  TEI; `[?]` after it in the text, the one mark there, since whoever quotes the text must know
  that this line is a guess and the note is in the other formats.

A page that was not cut into lines (its segmentation failed) says so instead of being blank. A
document still being cut into lines (uploaded, fetching its images, segmenting) has no
transcript yet: `NotSegmented`, which the views answer with a 409. Lines carry no regions or
paragraphs here, so the text has no blank lines but between pages.

Nothing here touches the training exports or the evaluation split.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from django.http import HttpResponse, StreamingHttpResponse
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.http import content_disposition_header
from lxml import etree
from lxml.builder import ElementMaker

from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.corpus.names import clean_name
from ocrreview.corpus.xmlformats import (
    XmlLine,
    XmlPage,
    alto_xml,
    box,
    outline,
    page_xml,
    points_attribute,
    xml_text,
)
from ocrreview.corpus.zipstream import zip_chunks
from recognition.text import nfc, one_line

FORMATS = {
    "txt": "plain text, pages headed by their number",
    "page": "PAGE XML, one file per page, zipped",
    "alto": "ALTO v4, one file per page, zipped",
    "tei": "TEI P5, with the facsimile's zones",
}
MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "page": "application/zip",
    "alto": "application/zip",
    "tei": "application/tei+xml",
}
TEI_NS = "http://www.tei-c.org/ns/1.0"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
NOT_SEGMENTED_YET = (
    Document.Status.UPLOADED,
    Document.Status.FETCHING,
    Document.Status.SEGMENTING,
)
MACHINE_READ = (
    Line.Status.RECOGNIZED,
    Line.Status.NEEDS_REVIEW,
    Line.Status.IN_REVIEW,
    Line.Status.AUTO_ACCEPTED,
)


class State(StrEnum):
    REVIEWED = "reviewed"
    MACHINE = "machine-reading"
    UNREAD = "unread"
    NOT_REVIEWED = "not-reviewed"  # a machine reading left out (reviewed_only)


MARKERS = {State.UNREAD: "[unread]", State.NOT_REVIEWED: "[not reviewed]"}
UNCLEAR_MARKER = "[?]"
PAGE_NOT_SEGMENTED = "[page not segmented]"


class NotSegmented(ValueError):
    """The document's lines are not all known yet."""


@dataclass
class TranscriptLine:
    line: Line
    state: State

    @property
    def text(self) -> str:
        """The text written for the line: none for a line without a reading to give."""
        if self.state in (State.REVIEWED, State.MACHINE):
            return nfc(one_line(self.line.text))
        return ""

    @property
    def unclear(self) -> bool:
        """Its text is given and its reader marked it unclear."""
        return self.line.unclear and self.state in (State.REVIEWED, State.MACHINE)

    @property
    def plain_text(self) -> str:
        if self.state in MARKERS:
            return MARKERS[self.state]
        return " ".join(filter(None, (self.text, UNCLEAR_MARKER if self.unclear else "")))


@dataclass
class TranscriptPage:
    page: Page
    lines: list[TranscriptLine]

    @property
    def number(self) -> int:
        return self.page.index + 1

    @property
    def not_segmented(self) -> bool:
        return not self.lines and self.page.status != Page.Status.SEGMENTED


@dataclass
class Transcript:
    document: Document
    pages: list[TranscriptPage]
    stem: str  # what its files are named after

    def lines(self) -> Iterator[TranscriptLine]:
        for page in self.pages:
            yield from page.lines

    def xml_pages(self) -> Iterator[tuple[TranscriptPage, XmlPage, str]]:
        """Each page as the PAGE and ALTO writers take it, with its file's stem. The image
        they name is the scan as uploaded, so that Transkribus or eScriptorium, or an upload
        here, pair the file with it; a page made before uploads kept their names is named
        after the document."""
        width = len(str(len(self.pages)))
        for page in self.pages:
            stem = f"{self.stem}_{page.number:0{width}d}"
            image = page.page.source_name
            if not image:
                image = stem + PurePosixPath(page.page.image.name).suffix.lower()
            yield page, _xml_page(page, image), stem


def _state(line: Line, reviewed_only: bool) -> State:
    if line.status == Line.Status.REVIEWED:
        return State.REVIEWED
    if line.status in MACHINE_READ and line.text.strip():
        return State.NOT_REVIEWED if reviewed_only else State.MACHINE
    return State.UNREAD


def transcript(document: Document, *, reviewed_only: bool = False) -> Transcript:
    if document.status in NOT_SEGMENTED_YET:
        raise NotSegmented(
            f"{document.title} is still being cut into lines "
            f"({document.get_status_display().lower()}): its transcript is not whole yet. "
            "Ask again once it is being recognized or ready."
        )
    by_page: dict[int, list[TranscriptLine]] = {}
    lines = (
        document.lines.select_related("model_version")
        .defer("search_vector")
        .order_by("page__index", "order", "id")
    )
    for line in lines:
        by_page.setdefault(line.page_id, []).append(
            TranscriptLine(line, _state(line, reviewed_only))
        )
    pages = [
        TranscriptPage(page, by_page.get(page.pk, [])) for page in document.pages.order_by("index")
    ]
    return Transcript(document, pages, file_stem(document.title, f"document-{document.pk}"))


# Characters a file name cannot hold on Windows, macOS or Linux, or that a shell or an unzip
# reads as something else.
UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
WINDOWS_DEVICES = re.compile(r"(?i)(con|prn|aux|nul|com\d|lpt\d)(\.|$)")
STEM_BYTES = 150  # file systems allow 255 bytes a name; room for "_0001.tei.xml" and more


def file_stem(title: str, fallback: str) -> str:
    """A title as a file name: cleaned as names are (its bidi controls would show another
    name), its accents and scripts kept, what file systems refuse replaced with "_", cut to a
    length every file system takes."""
    # Runs of spaces only: a no-break space (French typography's U+202F) stays as it is.
    stem = re.sub(" {2,}", " ", UNSAFE.sub("_", clean_name(title))).strip(" .")
    stem = nfc(stem.encode()[:STEM_BYTES].decode("utf-8", "ignore")).strip(" .")
    if WINDOWS_DEVICES.match(stem):
        stem = "_" + stem
    return stem or fallback


# --- Plain text ---------------------------------------------------------------------------


def as_text(transcript: Transcript) -> bytes:
    """Each page headed "--- page N ---", its lines one a line, a blank line between pages."""
    out: list[str] = []
    for page in transcript.pages:
        if out:
            out.append("")
        out.append(f"--- page {page.number} ---")
        if page.not_segmented:
            out.append(PAGE_NOT_SEGMENTED)
        out.extend(line.plain_text for line in page.lines)
    return ("\n".join(out) + "\n").encode("utf-8")


# --- PAGE and ALTO ------------------------------------------------------------------------


def _xml_page(page: TranscriptPage, image_filename: str) -> XmlPage:
    return XmlPage(
        image_filename=image_filename,
        width=page.page.width,
        height=page.page.height,
        lines=[
            XmlLine(
                id=line.line.pk,
                text=line.text,
                # The model's score of a text given: none for a line whose text is left out.
                confidence=line.line.confidence if line.state == State.MACHINE else None,
                bbox=line.line.bbox,
                polygon=line.line.polygon,
                baseline=line.line.baseline,
                status=line.line.status,
                unclear=line.unclear,
                unclear_note=line.line.unclear_note if line.unclear else "",
            )
            for line in page.lines
        ],
        number=page.number,
    )


def layout_files(transcript: Transcript, fmt: str) -> Iterator[tuple[str, bytes]]:
    """One PAGE or ALTO file a page, named `<title>_<page number>.xml`."""
    for page, xml_page, stem in transcript.xml_pages():
        if fmt == "page":
            yield f"{stem}.xml", page_xml(xml_page)
        else:
            yield f"{stem}.xml", alto_xml(xml_page, f"p{page.page.pk}")


# --- TEI ----------------------------------------------------------------------------------


def as_tei(transcript: Transcript) -> bytes:
    """TEI P5 in the shape eScriptorium and Transkribus export: a `facsimile` with a `surface`
    a page and a `zone` a line (its box and outline), and a `body` in which each page is a `pb`
    and an `ab`, each line an `lb` pointing at its zone (`facs`)."""
    E = ElementMaker(namespace=TEI_NS, nsmap={None: TEI_NS})
    facsimile = E.facsimile()
    body = E.div(type="transcription")
    for page, xml_page, _ in transcript.xml_pages():
        surface_id = f"p{page.page.pk}"
        surface = E.surface(
            E.graphic(
                url=_tei_text(xml_page.image_filename),
                width=f"{xml_page.width}px",
                height=f"{xml_page.height}px",
            ),
            n=str(page.number),
            ulx="0",
            uly="0",
            lrx=str(xml_page.width),
            lry=str(xml_page.height),
        )
        surface.set(XML_ID, surface_id)
        facsimile.append(surface)
        body.append(E.pb(n=str(page.number), facs=f"#{surface_id}"))
        block = E.ab("\n")
        body.append(block)
        if page.not_segmented:
            block.append(E.gap(reason="page not segmented", unit="page"))
            block[-1].tail = "\n"
        for number, (line, xml_line) in enumerate(
            zip(page.lines, xml_page.lines, strict=True), start=1
        ):
            zone_id = f"l{line.line.pk}"
            x0, y0, x1, y1 = box([xml_line], xml_page)
            zone = E.zone(
                type="line",
                ulx=str(x0),
                uly=str(y0),
                lrx=str(x1),
                lry=str(y1),
                points=points_attribute(outline(xml_line, xml_page)),
            )
            zone.set(XML_ID, zone_id)
            surface.append(zone)
            block.append(E.lb(n=str(number), facs=f"#{zone_id}"))
            if (marked := _tei_marked(E, line)) is None:
                block[-1].tail = _tei_text(line.text)
            else:
                block.append(marked)
            if line.unclear and line.line.unclear_note:
                block.append(E.note(_tei_text(line.line.unclear_note), type="unclear"))
            block[-1].tail = (block[-1].tail or "") + "\n"
    text = E.text(E.body(body))
    if language := transcript.document.collection.language:
        text.set(XML_LANG, language)
    root = E.TEI(_tei_header(E, transcript), facsimile, text)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _tei_text(value: str) -> str:
    """Text as the lines' text: NFC, with what XML cannot carry replaced. Titles and names are
    clean_name's instead: the bidi controls a line's text may need would show another title."""
    return xml_text(nfc(value))


def _tei_marked(E, line: TranscriptLine):
    """What follows the line's `lb` but a person's text read for sure: the model's text marked
    with its confidence and model, or a gap saying why there is no text; a text its reader
    marked unclear, in `unclear`."""
    if line.state in MARKERS:
        return E.gap(reason=str(line.state))
    text = E.unclear(_tei_text(line.text)) if line.unclear else _tei_text(line.text)
    if line.state == State.REVIEWED:
        return text if line.unclear else None
    seg = E.seg(text, type="machine-reading")
    if line.line.confidence is not None:
        seg.set("cert", f"{min(max(line.line.confidence, 0.0), 1.0):.4f}")
    if line.line.model_version_id is not None:
        seg.set("resp", f"#m{line.line.model_version_id}")
    return seg


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{pluralize(count)}"


def _tei_header(E, transcript: Transcript):
    document = transcript.document
    collection = document.collection
    counts = {state: 0 for state in State}
    models = {}
    for line in transcript.lines():
        counts[line.state] += 1
        if line.state == State.MACHINE and line.line.model_version is not None:
            models[line.line.model_version_id] = line.line.model_version.name
    title = E.titleStmt(E.title(clean_name(document.title)))
    if counts[State.REVIEWED]:
        # The correction trail that names each reviewer is the review app's, above this one.
        title.append(
            E.respStmt(
                E.resp("transcription reviewed line by line"),
                E.orgName(f"the reviewers of the collection {clean_name(collection.name)}"),
            )
        )
    for pk, name in sorted(models.items()):
        statement = E.respStmt(E.resp("machine reading, not reviewed"), E.name(clean_name(name)))
        statement.set(XML_ID, f"m{pk}")
        title.append(statement)
    pages = len(transcript.pages)
    extent = (
        f"{_counted(pages, 'page')}, {_counted(sum(counts.values()), 'line')}: "
        f"{counts[State.REVIEWED]} reviewed, "
        f"{_counted(counts[State.MACHINE], 'machine reading')} not reviewed, "
        f"{_counted(counts[State.NOT_REVIEWED], 'machine reading')} left out, "
        f"{counts[State.UNREAD]} not read"
    )
    publication = E.publicationStmt(
        E.publisher("ocrreview"), E.date(when=timezone.localdate().isoformat())
    )
    if collection.licence:
        publication.append(E.availability(E.licence(_tei_text(collection.licence))))
    source = E.bibl(E.title(clean_name(document.title)))
    if document.iiif_manifest:
        # Imports before control characters were refused in them may hold one.
        source.append(E.ref("IIIF manifest", target=xml_text(document.iiif_manifest)))
    source.append(
        E.note(
            f"Transcribed on ocrreview from {_counted(pages, 'page image')}, in the "
            f"collection {clean_name(collection.name)}."
        )
    )
    file_desc = E.fileDesc(
        title,
        E.extent(extent),
        publication,
        E.seriesStmt(E.title(clean_name(collection.name))),
        E.sourceDesc(source),
    )
    header = E.teiHeader(file_desc)
    if collection.language:
        header.append(
            E.profileDesc(E.langUsage(E.language(collection.language, ident=collection.language)))
        )
    return header


# --- Files --------------------------------------------------------------------------------


def document_files(transcript: Transcript, folder: str = "") -> Iterator[tuple[str, bytes]]:
    """Every format of the document, as a collection's zip holds them."""
    stem = transcript.stem
    yield f"{folder}{stem}.txt", as_text(transcript)
    yield f"{folder}{stem}.tei.xml", as_tei(transcript)
    for fmt in ("page", "alto"):
        for name, data in layout_files(transcript, fmt):
            yield f"{folder}{fmt}/{name}", data


def collection_files(
    collection: Collection, *, reviewed_only: bool = False
) -> Iterator[tuple[str, bytes]]:
    """Each document's files in a folder named after it, one document at a time; documents
    still being cut into lines are named in `NOT-INCLUDED.txt`."""
    seen: set[str] = set()
    left_out: list[str] = []
    documents = collection.documents.without_iiif_json().select_related("collection")
    for document in documents.order_by("title", "id").iterator(chunk_size=100):
        try:
            found = transcript(document, reviewed_only=reviewed_only)
        except NotSegmented as exc:
            left_out.append(str(exc))
            continue
        folder = found.stem
        if folder.casefold() in seen:  # two documents of one title, or of one file name
            folder = f"{folder}_{document.pk}"
        seen.add(folder.casefold())
        found.stem = folder
        yield from document_files(found, f"{folder}/")
    if left_out:
        text = "Not in this archive yet:\n" + "".join(f"- {reason}\n" for reason in left_out)
        yield "NOT-INCLUDED.txt", nfc(text).encode("utf-8")


# --- Answers ------------------------------------------------------------------------------


def download(transcript: Transcript, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """The transcript in one format as a download named after the document."""
    stem = transcript.stem
    response: HttpResponse | StreamingHttpResponse
    if fmt == "txt":
        response, name = HttpResponse(as_text(transcript)), f"{stem}.txt"
    elif fmt == "tei":
        response, name = HttpResponse(as_tei(transcript)), f"{stem}.tei.xml"
    else:
        response = StreamingHttpResponse(zip_chunks(layout_files(transcript, fmt)))
        name = f"{stem}_{fmt}.zip"
    return _attachment(response, MEDIA_TYPES[fmt], name)


def collection_download(collection: Collection, *, reviewed_only: bool) -> StreamingHttpResponse:
    """Every document's transcript in every format, in a zip sent as it is written."""
    files = collection_files(collection, reviewed_only=reviewed_only)
    name = f"{file_stem(collection.name, f'collection-{collection.pk}')}_transcripts.zip"
    return _attachment(StreamingHttpResponse(zip_chunks(files)), "application/zip", name)


def _attachment(response, content_type: str, filename: str):
    response["Content-Type"] = content_type
    # Quoted, and RFC 5987-encoded for a title with accents, as storage.download_response does.
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
