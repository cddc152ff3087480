"""PAGE XML (2019-07-15) and ALTO v4 for the pages of training exports and of transcripts.

A page is written with the lines it is given, in reading order. PAGE keeps the whole n-best:
the ground truth is the TextEquiv with index 0 and the model's hypotheses follow by rank, each
with its confidence, which is what tools that learn from alternatives read.

Each line says whether a person reviewed it or its text is the model's reading, as the upload's
parser reads it back (corpus/xmlimport.py): PAGE in the line's custom attribute (the line's
status: auto_accepted, needs_review, pending...), ALTO in its CS (correction status). A line a
person marked unclear (review's unclear mark) is a guess, not ground truth, whoever wrote it:
PAGE says `unclear:true` beside its status, which is `unclear` rather than `reviewed`, and its
note in the line's `comments`; ALTO's CS says it is not corrected, and the line's TAGREFS
name an OtherTag of TYPE `unclear` in the file's Tags, whose LABEL is the status PAGE would
write (`unclear` for a person's guess) and whose DESCRIPTION is the note.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree
from lxml.builder import ElementMaker

from ocrreview.corpus.models import Line
from ocrreview.corpus.xmlimport import (
    ALTO_UNCLEAR_TYPE,
    STATUS_TAG,
    UNCLEAR_STATUS,
    drawn_baseline,
)

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_SCHEMA = f"{PAGE_NS} {PAGE_NS}/pagecontent.xsd"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA = f"{ALTO_NS} http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Characters XML 1.0 cannot carry at all. A model's hypotheses can hold them (byte-level BPE
# decodes any byte), and one such reading must not make a page unexportable.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return NOT_XML.sub("\ufffd", text)


@dataclass
class Alternative:
    text: str
    confidence: float


@dataclass
class XmlLine:
    id: int
    text: str
    confidence: float | None
    bbox: Sequence[int]
    polygon: Sequence[Sequence[int]] = ()
    baseline: Sequence[Sequence[int]] = ()
    alternatives: list[Alternative] = field(default_factory=list)
    # Any status but reviewed: the text, if any, is the model's reading, which no one reviewed.
    status: str = Line.Status.REVIEWED
    # Marked unclear: its reader could not read it for sure, and says what in the note.
    unclear: bool = False
    unclear_note: str = ""

    @property
    def machine_read(self) -> bool:
        return self.status != Line.Status.REVIEWED

    @property
    def ground_truth(self) -> bool:
        """A person's text, read for sure: what an upload takes back as ground truth."""
        return not self.machine_read and not self.unclear

    @property
    def page_status(self) -> str:
        """The status PAGE writes: a reviewed line marked unclear is `unclear`, so that a
        reader that takes `reviewed` for ground truth, and knows no `unclear:true`, leaves it
        out."""
        return UNCLEAR_STATUS if self.unclear and not self.machine_read else self.status


@dataclass
class XmlPage:
    image_filename: str
    width: int
    height: int
    lines: list[XmlLine]
    number: int  # in its document, from 1


def outline(line: XmlLine, page: XmlPage) -> list[tuple[int, int]]:
    if len(line.polygon) >= 3:
        return _on_page(line.polygon, page)
    x0, y0, x1, y1 = (int(v) for v in line.bbox)
    return _on_page([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], page)


def _baseline(line: XmlLine, page: XmlPage) -> list[tuple[int, int]]:
    """The line's baseline, or one drawn across its box at the usual height for lines that
    have none (whole-image or hand-drawn boxes): kraken and the tools built on it drop a line
    without a baseline when they read PAGE or ALTO."""
    if len(line.baseline) >= 2:
        return _on_page(line.baseline, page)
    return drawn_baseline(*box([line], page))


def _on_page(points: Sequence[Sequence[int]], page: XmlPage) -> list[tuple[int, int]]:
    """Onto the page: imported lines keep points past its edges (-3,2), where PAGE's points
    are unsigned and ALTO's positions measured from the page's corner."""
    return [(min(max(int(x), 0), page.width), min(max(int(y), 0), page.height)) for x, y in points]


def points_attribute(points: Sequence[Sequence[int]]) -> str:
    return " ".join(f"{int(x)},{int(y)}" for x, y in points)


def box(lines: Sequence[XmlLine], page: XmlPage) -> tuple[int, int, int, int]:
    xs = [x for line in lines for x, _ in outline(line, page)]
    ys = [y for line in lines for _, y in outline(line, page)]
    return min(xs), min(ys), max(xs), max(ys)


def _conf(value: float) -> str:
    return f"{min(max(value, 0.0), 1.0):.4f}"


def _text_confidence(line: XmlLine) -> str | None:
    """The model's score of the line's text, when the text is the model's: a reviewed line's
    confidence scores the reading its reviewer replaced, not the text written."""
    if not line.machine_read or line.confidence is None:
        return None
    return _conf(line.confidence)


def page_xml(page: XmlPage) -> bytes:
    E = ElementMaker(namespace=PAGE_NS, nsmap={None: PAGE_NS, "xsi": XSI})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = E.PcGts(E.Metadata(E.Creator("ocrreview"), E.Created(now), E.LastChange(now)))
    root.set(f"{{{XSI}}}schemaLocation", PAGE_SCHEMA)
    page_el = E.Page(
        imageFilename=xml_text(page.image_filename),
        imageWidth=str(page.width),
        imageHeight=str(page.height),
    )
    root.append(page_el)
    if page.lines:
        x0, y0, x1, y1 = box(page.lines, page)
        region = E.TextRegion(
            E.Coords(points=points_attribute([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
        )
        region.set("id", "r0")
        page_el.append(region)
        for order, line in enumerate(page.lines):
            line_el = E.TextLine(E.Coords(points=points_attribute(outline(line, page))))
            line_el.set("id", f"l{line.id}")
            unclear = " unclear:true;" if line.unclear else ""
            line_el.set(
                "custom",
                f"readingOrder {{index:{order};}} "
                f"{STATUS_TAG} {{status:{line.page_status};{unclear}}}",
            )
            if line.unclear_note:
                line_el.set("comments", xml_text(line.unclear_note))
            line_el.append(E.Baseline(points=points_attribute(_baseline(line, page))))
            truth = E.TextEquiv(E.Unicode(xml_text(line.text)), index="0")
            if (confidence := _text_confidence(line)) is not None:
                truth.set("conf", confidence)
            line_el.append(truth)
            for rank, alternative in enumerate(line.alternatives, start=1):
                line_el.append(
                    E.TextEquiv(
                        E.Unicode(xml_text(alternative.text)),
                        index=str(rank),
                        conf=_conf(alternative.confidence),
                    )
                )
            region.append(line_el)
        region_text = "\n".join(xml_text(line.text) for line in page.lines)
        region.append(E.TextEquiv(E.Unicode(region_text)))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def alto_xml(page: XmlPage, page_id: str) -> bytes:
    E = ElementMaker(namespace=ALTO_NS, nsmap={None: ALTO_NS, "xsi": XSI})
    root = E.alto(
        E.Description(
            E.MeasurementUnit("pixel"),
            E.sourceImageInformation(E.fileName(xml_text(page.image_filename))),
        )
    )
    root.set(f"{{{XSI}}}schemaLocation", ALTO_SCHEMA)
    # ALTO has no place of its own for the mark: a tag of its own per line, which holds the
    # line's note, comes between the Description and the Layout, as the schema orders them.
    unclear = {line.id: f"unclear_l{line.id}" for line in page.lines if line.unclear}
    if unclear:
        tags = E.Tags()
        for line in page.lines:
            if line.unclear:
                tag = E.OtherTag(
                    ID=unclear[line.id], TYPE=ALTO_UNCLEAR_TYPE, LABEL=line.page_status
                )
                if line.unclear_note:
                    tag.set("DESCRIPTION", xml_text(line.unclear_note))
                tags.append(tag)
        root.append(tags)
    page_el = E.Page(ID=page_id, WIDTH=str(page.width), HEIGHT=str(page.height))
    page_el.set("PHYSICAL_IMG_NR", str(page.number))
    space = E.PrintSpace(HPOS="0", VPOS="0", WIDTH=str(page.width), HEIGHT=str(page.height))
    page_el.append(space)
    root.append(E.Layout(page_el))
    if page.lines:
        x0, y0, x1, y1 = box(page.lines, page)
        block = E.TextBlock(**_geometry(x0, y0, x1, y1))
        block.set("ID", f"{page_id}_r0")
        space.append(block)
        for line in page.lines:
            lx0, ly0, lx1, ly1 = box([line], page)
            line_el = E.TextLine(**_geometry(lx0, ly0, lx1, ly1))
            line_el.set("ID", f"l{line.id}")
            line_el.set("BASELINE", " ".join(f"{x},{y}" for x, y in _baseline(line, page)))
            line_el.set("CS", "true" if line.ground_truth else "false")
            if line.id in unclear:
                line_el.set("TAGREFS", unclear[line.id])
            line_el.append(
                E.Shape(E.Polygon(POINTS=" ".join(f"{x},{y}" for x, y in outline(line, page))))
            )
            for i, word in enumerate(_words(line.text)):
                if i:
                    line_el.append(E.SP())
                string = E.String(CONTENT=xml_text(word))
                if (confidence := _text_confidence(line)) is not None:
                    string.set("WC", confidence)
                line_el.append(string)
            block.append(line_el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# A space with a word before it and something after it: the run of spaces it begins is one SP.
_WORD_BREAK = re.compile(r"(?<=[^ ]) (?!$)")


def _words(text: str) -> list[str]:
    """The line's ALTO Strings. Words are what U+0020 separates: a no-break space (U+00A0,
    U+202F) or an ideographic one keeps its word whole. ALTO puts an SP only between two
    Strings, so a run of spaces is one SP and the rest of the run stays in the next String,
    and the text reads back as it was written."""
    return _WORD_BREAK.split(text)


def _geometry(x0: int, y0: int, x1: int, y1: int) -> dict[str, str]:
    return {"HPOS": str(x0), "VPOS": str(y0), "WIDTH": str(x1 - x0), "HEIGHT": str(y1 - y0)}
