"""Reading PAGE XML and ALTO files safely, with kraken's own parser doing the layout work.

Uploaded XML is untrusted: a file that declares entities (billion laughs, external entities
reading local files) is refused. A PAGE or ALTO file is parsed once, by an lxml parser with
entity resolution, DTD loading and network access switched off, whose tree is refused when its
DTD declares an entity, and which kraken then reads; a METS file by defusedxml's parser.

kraken reads baseline layouts, keyed by line id. Files from other tools are often not
that: Tesseract's ALTO has no baselines, ABBYY's a single height, PAGE from many tools only
boxes, and ids may be missing or repeated. kraken would drop such lines, or keep one line
once for every line that shares its id; so lines get the baseline drawn across their box,
and ids of their own, before kraken sees them.

Our own exports mark each line's status: a line the model read and no one reviewed (an
auto-accepted line) is a model's reading, which must not come back as a person's ground
truth, nor must a reviewed line its reader marked unclear (a guess). PAGE marks them in the
line's custom attribute, in kraken's syntax (``custom="ocrreview {status:auto_accepted;}"``,
``{status:unclear; unclear:true;}``): any status but ``reviewed`` is not ground truth. ALTO
marks them with ``CS="false"``, the schema's correction status, which says the same of a
line from any tool. Such a line comes in unreviewed, for recognition to read again.

PAGE also keeps the unclear mark, ``unclear:true`` in the same block and the note in the line's
``comments``, which an upload restores: ``{status:unclear; unclear:true;}`` is a person's
reading marked unclear, which comes back as it was, reviewed and marked (the mark keeps it
out of training data), and any other status with ``unclear:true`` a model's reading marked so.
ALTO keeps it in a tag: the line's TAGREFS name an ``OtherTag`` of TYPE ``unclear`` whose LABEL
is the status PAGE would write (``unclear``: a person's reading; any other: a model's) and
whose DESCRIPTION is the note. A reference to no tag, and tags of other types (any tool's), are
passed over, as everything else the importer does not read is.
"""

import functools
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from lxml import etree

from ocrreview.corpus.line_text import INVISIBLE, imported_line_text, nfc
from ocrreview.corpus.names import clean_name
from recognition.text import one_line

Point = tuple[float, float]


class XMLImportError(ValueError):
    """An XML file that cannot be imported, with a message fit for the user."""


@dataclass
class ImportedLine:
    baseline: list[Point]
    polygon: list[Point]
    text: str
    # Marked in the file as not corrected by a person: its text is a model's reading.
    machine_read: bool = False
    # The line of ours it was exported from, when the file is one of our exports.
    exported_from: int | None = None
    # Marked unclear by its reader (review's unclear mark), with what they could not read.
    unclear: bool = False
    unclear_note: str = ""
    # Its text is a person's reading that they marked unclear: `machine_read` (no ground
    # truth) to a reader that knows no mark, but no model's reading.
    persons_guess: bool = False


@dataclass
class ImportedPage:
    image_name: str
    width: int
    height: int
    lines: list[ImportedLine]


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@functools.cache
def _safe_xml_page() -> type:
    """kraken's XMLPage, fed from bytes already parsed by the safe parser: its own
    constructor would re-read the file with lxml's defaults. Made at the first layout read:
    kraken imports torch, which every web process and worker would otherwise load at start
    (seconds, and more seconds to unload at exit) whether it reads a layout or not."""
    from kraken.lib.xml import XMLPage

    class SafeXMLPage(XMLPage):
        def __init__(self, data: bytes, name: str):
            self._data = data
            self.machine_read_ids: set[str] = set()
            self.unclear_marks: dict[str, UnclearMark] = {}
            super().__init__(PurePosixPath(name), filetype="xml", linetype="baselines")

        def _parse_xml(self):
            try:
                doc = etree.ElementTree(etree.fromstring(self._data, parser=_safe_parser()))
            except etree.XMLSyntaxError as exc:
                # libxml2 stops at an external entity referenced in an attribute, before the
                # declaration could be looked at in the tree.
                if b"<!ENTITY" in self._data:
                    raise XMLImportError(f"{ENTITIES_REFUSED} ({exc})") from exc
                raise XMLImportError(f"the XML is malformed ({exc})") from exc
            _refuse_entities(doc)
            root = doc.getroot().tag
            if root.endswith("alto"):
                _require_size(doc.find(".//{*}Page"), "WIDTH", "HEIGHT")
                _read_units_as_pixels(doc)
                self.machine_read_ids = _prepare_lines(
                    doc, "ID", _alto_baseline, _alto_machine_read
                )
                self.unclear_marks = _alto_unclear_marks(doc)
                return self._do_parse_alto(doc)
            if root.endswith("PcGts"):
                _require_size(doc.find(".//{*}Page"), "imageWidth", "imageHeight")
                _drop_languages(doc)
                self.machine_read_ids = _prepare_lines(
                    doc, "id", _page_baseline, _page_machine_read
                )
                self.unclear_marks = _page_unclear_marks(doc)
                return self._do_parse_page(doc)
            raise XMLImportError("the XML is neither PAGE XML nor ALTO")

    return SafeXMLPage


ENTITIES_REFUSED = "the XML declares entities or external references, which are refused"


def _refuse_entities(doc) -> None:
    """The parser expanded no entity and loaded nothing, but a declared one is refused all
    the same, as defusedxml refuses it: no layout needs one, and what reads the tree after
    (kraken, lxml's text) must never meet an unexpanded reference."""
    dtd = doc.docinfo.internalDTD
    declared = [entity.name for entity in dtd.iterentities()] if dtd is not None else []
    if declared:
        raise XMLImportError(f"{ENTITIES_REFUSED} (entity {declared[0]!r})")


def _require_size(page, width: str, height: str) -> None:
    """Given no page size, kraken opens the image the file names, relative to the file or at
    any absolute path, to measure it: on a server that would let an upload probe the disk."""
    sizes = [_number(page.get(name)) if page is not None else None for name in (width, height)]
    if any(size is None or not size > 0 for size in sizes):
        raise XMLImportError("the XML gives no page size")


# Newspaper digitisation (docWorks, the Library of Congress's Chronicling America) writes
# 1/1200 inch, other pipelines tenths of a millimetre.
ALTO_UNITS = frozenset({"pixel", "mm10", "inch1200"})


def _read_units_as_pixels(doc) -> None:
    """The page's size is given in the unit of its coordinates, and imported lines are scaled
    from that size to the image's, so any unit reads right once kraken, which takes pixels
    only, is told it has them."""
    unit = doc.find(".//{*}MeasurementUnit")
    if unit is None:
        return
    name = (unit.text or "").strip()
    if name not in ALTO_UNITS:
        raise XMLImportError(
            f"the ALTO measurement unit {name!r} is not one of {', '.join(sorted(ALTO_UNITS))}"
        )
    unit.text = "pixel"


# custom="... language {type:deu;} ..."
_CUSTOM_LANGUAGE = re.compile(r"(?<!\S)language\s*\{[^}]*\}")


def _drop_languages(doc) -> None:
    """kraken looks every PAGE language up in ISO 639 and fails on a retired code that tools
    still write; the lines' languages are not kept here, so they are not read."""
    for element in doc.iter():
        for attribute in ("primaryLanguage", "secondaryLanguage"):
            element.attrib.pop(attribute, None)
        if (custom := element.get("custom")) is not None:
            element.set("custom", _CUSTOM_LANGUAGE.sub("", custom))


def _prepare_lines(doc, id_attribute: str, add_baseline, is_machine_read) -> set[str]:
    """Give every line an id of its own and a baseline; returns the ids of the lines marked
    as a model's readings (kraken keeps no ALTO correction status)."""
    seen: set[str] = set()
    machine_read = set()
    for number, line in enumerate(doc.iter("{*}TextLine")):
        line_id = line.get(id_attribute)
        if not line_id or line_id in seen:
            line_id = f"ocrreview-line-{number}"
            line.set(id_attribute, line_id)
        seen.add(line_id)
        add_baseline(line)
        if is_machine_read(line):
            machine_read.add(line_id)
    return machine_read


STATUS_TAG = "ocrreview"
# custom="... ocrreview {status:auto_accepted;} ..."
_CUSTOM_STATUS = re.compile(r"(?<!\S)" + STATUS_TAG + r"\s*\{[^}]*?\bstatus\s*:\s*([^;}\s]*)")


def _page_machine_read(line) -> bool:
    found = _CUSTOM_STATUS.search(line.get("custom") or "")
    # The status as our export writes it: Line.Status.REVIEWED, spelled out so that this
    # parser, which the model's own scripts use, needs no Django set up.
    return found is not None and found.group(1) != "reviewed"


@dataclass
class UnclearMark:
    persons_guess: bool
    note: str


# custom="... ocrreview {status:unclear; unclear:true;} ..."
_CUSTOM_BLOCK = re.compile(r"(?<!\S)" + STATUS_TAG + r"\s*\{([^}]*)\}")
# PAGE's status of a reviewed line marked unclear (xmlformats writes it): any but "reviewed"
# reads back as no ground truth.
UNCLEAR_STATUS = "unclear"


def _page_unclear_marks(doc) -> dict[str, UnclearMark]:
    """The lines our export marked unclear, by id, with their notes: the `comments` of a line
    marked so (other tools write their own comments, which are no note of ours)."""
    marks = {}
    for line in doc.iter("{*}TextLine"):
        found = _CUSTOM_BLOCK.search(line.get("custom") or "")
        if found is None:
            continue
        properties = {
            key.strip(): value.strip()
            for key, _, value in (part.partition(":") for part in found.group(1).split(";"))
        }
        if properties.get("unclear") != "true":
            continue
        note = _note(line.get("comments"))
        marks[line.get("id")] = UnclearMark(properties.get("status") == UNCLEAR_STATUS, note)
    return marks


# <OtherTag ID="unclear_l42" TYPE="unclear" LABEL="needs_review" DESCRIPTION="the note"/>,
# named in the line's TAGREFS (xmlformats writes them).
ALTO_UNCLEAR_TYPE = "unclear"


def _alto_unclear_marks(doc) -> dict[str, UnclearMark]:
    """The lines whose TAGREFS name an OtherTag of TYPE `unclear`, by id, with the tag's
    DESCRIPTION for their note."""
    tags = {
        tag.get("ID"): tag
        for tag in doc.getroot().iterfind("{*}Tags/{*}OtherTag")
        if (tag.get("TYPE") or "").strip() == ALTO_UNCLEAR_TYPE and tag.get("ID")
    }
    marks: dict[str, UnclearMark] = {}
    if not tags:
        return marks
    for line in doc.iter("{*}TextLine"):
        named = [tags[ref] for ref in (line.get("TAGREFS") or "").split() if ref in tags]
        if named:
            label = (named[0].get("LABEL") or "").strip()
            marks[line.get("ID")] = UnclearMark(
                label == UNCLEAR_STATUS, _note(named[0].get("DESCRIPTION"))
            )
    return marks


def _note(text: str | None) -> str:
    """A note as the editor keeps one: one line, no invisible marks, NFC."""
    return nfc(" ".join(one_line((text or "").translate(INVISIBLE)).split()))


def _alto_machine_read(line) -> bool:
    return (line.get("CS") or "").strip() in ("false", "0")


def drawn_baseline(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """A baseline across a box at the usual height, for a line that has none."""
    y = y0 + round(0.8 * (y1 - y0))
    return [(x0, y), (x1, y)]


# A number of ALTO's points as kraken reads them: ALTO 4.2 writes "10,52 480,61", earlier
# versions "10 52 480 61" or the baseline's height alone.
_ALTO_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def _alto_baseline(line) -> None:
    given = _ALTO_NUMBER.findall(line.get("BASELINE") or "")
    if len(given) >= 4:
        return
    x, y, width, height = (_number(line.get(name)) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    if None in (x, y, width, height):
        return  # no box to draw one in: kraken leaves the line out
    (_, at), _ = drawn_baseline(x, y, x + width, y + height)
    # ALTO before 4.2 gives the baseline as one number, its height on the page.
    if len(given) == 1 and (single := _number(given[0])) is not None and y <= single <= y + height:
        at = single
    line.set("BASELINE", f"{x:g} {at:g} {x + width:g} {at:g}")


def _page_baseline(line) -> None:
    namespace = etree.QName(line).namespace
    existing = line.find(f"{{{namespace}}}Baseline")
    if existing is not None and existing.get("points", "").strip():
        return
    coords = line.find(f"{{{namespace}}}Coords")
    try:
        points = [tuple(map(float, p.split(","))) for p in coords.get("points").split()]
        xs, ys = [x for x, _ in points], [y for _, y in points]
        start, end = drawn_baseline(min(xs), min(ys), max(xs), max(ys))
    except (AttributeError, TypeError, ValueError):
        return  # no box to draw one in: kraken leaves the line out
    if existing is None:
        existing = etree.SubElement(line, f"{{{namespace}}}Baseline")
    existing.set("points", f"{start[0]:g},{start[1]:g} {end[0]:g},{end[1]:g}")


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _defused_root(data: bytes) -> ElementTree.Element:
    """The file's root element, from defusedxml's parser, which refuses entity declarations
    and external references."""
    try:
        return defused_fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise XMLImportError(f"{ENTITIES_REFUSED} ({exc})") from exc
    except Exception as exc:  # ParseError and the expat errors behind it
        raise XMLImportError(f"the XML is malformed ({exc})") from exc


def _local_name(element: ElementTree.Element) -> str:
    return element.tag.rpartition("}")[2]


def parse_layout_xml(data: bytes, name: str) -> ImportedPage:
    """Lines of a PAGE or ALTO file in reading order, in the file's pixel coordinates."""
    # Outside the try: kraken missing or broken is the installation's fault, not the file's.
    page_class = _safe_xml_page()
    try:
        page = page_class(data, name)
    except XMLImportError:
        raise
    except Exception as exc:  # kraken's and its libraries' own errors on untrusted files
        raise XMLImportError(f"the layout could not be read ({exc})") from exc
    width, height = page.image_size or (0, 0)
    if width <= 0 or height <= 0:
        raise XMLImportError("the XML gives no page size")
    lines = [
        ImportedLine(
            baseline=[tuple(p) for p in (line.baseline or [])],
            polygon=[tuple(p) for p in (line.boundary or [])],
            text=_text_of(number, line.text or ""),
            machine_read=line.id in page.machine_read_ids,
            exported_from=_exported_line(line.id),
            unclear=(mark := page.unclear_marks.get(line.id)) is not None,
            unclear_note=mark.note if mark else "",
            persons_guess=mark.persons_guess if mark else False,
        )
        for number, line in enumerate(
            (line for line in page.get_sorted_lines() if line.boundary or line.baseline), 1
        )
    ]
    return ImportedPage(
        # ABBYY writes the scan's Windows path: C:\Scans\0002.tif.
        image_name=nfc(PurePosixPath(str(page.imagename).replace("\\", "/")).name),
        width=int(width),
        height=int(height),
        lines=lines,
    )


# How exports name a line: l{pk} (corpus/xmlformats.py); no more digits than a key holds.
_EXPORTED_LINE_ID = re.compile(r"l([0-9]{1,18})")


def _exported_line(line_id: str | None) -> int | None:
    found = _EXPORTED_LINE_ID.fullmatch(line_id or "")
    return int(found.group(1)) if found else None


def _text_of(number: int, text: str) -> str:
    try:
        return imported_line_text(text)
    except ValueError as exc:
        raise XMLImportError(f"line {number}: {exc}") from None


# --- Transkribus's document files ---------------------------------------------------------

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".jp2"})
TITLE_LENGTH = 300  # Document.title's


@dataclass
class MetsDocument:
    # The pages' images, as paths relative to the METS file, in the document's order.
    images: list[str]
    title: str


def parse_mets(data: bytes) -> MetsDocument:
    """The page order of a METS file, as Transkribus exports one beside each document's
    images: its physical structMap's pages (a `div` pointing at files, by its ORDER when every
    page has one), each page's image found in the fileSec; the fileSec's images in their order
    when there is no structMap. Its title is the first `title` it holds (MODS's, or
    Transkribus's own metadata). Read from defusedxml's tree alone: parsing it again with
    lxml would take as long and as much memory once more."""
    root = _defused_root(data)
    if _local_name(root) != "mets":
        raise XMLImportError("the file is not METS (its root element is not mets)")
    files: dict[str, str] = {}
    in_file_order: list[str] = []
    for element in root.iterfind(".//{*}file"):
        location = element.find("{*}FLocat")
        href = location.get(XLINK_HREF) if location is not None else None
        if not href or not _is_image(element.get("MIMETYPE") or "", href):
            continue
        path = _relative_path(href)
        files[element.get("ID") or ""] = path
        in_file_order.append(path)
    images = _structure_order(root, files) or in_file_order
    if not images:
        raise XMLImportError("the METS file lists no page images")
    return MetsDocument(images=list(dict.fromkeys(images)), title=_first_title(root))


def parse_document_title(data: bytes) -> str:
    """The title in Transkribus's doc.xml or metadata.xml: the first `title` element's."""
    return _first_title(_defused_root(data))


def _is_image(mimetype: str, href: str) -> bool:
    if mimetype:
        return mimetype.lower().startswith("image/")
    return PurePosixPath(href).suffix.lower() in IMAGE_SUFFIXES


def _relative_path(href: str) -> str:
    """An href as the path of a file beside the METS file: percent-decoded, NFC, without a
    leading ./ or file: scheme."""
    path = unquote(href.strip().removeprefix("file:").replace("\\", "/"))
    return nfc(str(PurePosixPath(path)).removeprefix("./"))


def _structure_order(root, files: dict[str, str]) -> list[str]:
    maps = root.findall("{*}structMap")
    physical = [m for m in maps if (m.get("TYPE") or "").upper() == "PHYSICAL"]
    if not (physical or maps):
        return []
    pages: list[tuple[str | None, str]] = []
    for div in (physical or maps)[0].iterfind(".//{*}div"):
        # An fptr names its file, or holds areas (Transkribus) or seq/par that do.
        ids = [
            element.get("FILEID")
            for fptr in div.findall("{*}fptr")
            for element in fptr.iter()
            if element.get("FILEID")
        ]
        image = next((files[i] for i in ids if i in files), None)
        if image is not None:
            pages.append((div.get("ORDER"), image))
    orders = [order.strip() if order else "" for order, _ in pages]
    # ASCII digits, and few: isdigit() takes '²', and int() refuses over 4,300 digits.
    if all(order.isascii() and order.isdigit() and len(order) <= 9 for order in orders):
        ranked = sorted(zip(orders, pages, strict=True), key=lambda pair: int(pair[0]))
        return [image for _, (_, image) in ranked]
    return [image for _, image in pages]


def _first_title(root) -> str:
    for element in root.iter():
        if _local_name(element) != "title":
            continue
        title = " ".join(clean_name("".join(element.itertext())).split())
        if title:
            return title[:TITLE_LENGTH]
    return ""
