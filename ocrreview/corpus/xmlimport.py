"""Reading PAGE XML and ALTO files safely, with kraken's own parser doing the layout work.

Uploaded XML is untrusted: entity declarations (billion laughs, external entities reading
local files) are refused before anything else looks at the bytes, and the document kraken
sees comes from an lxml parser with entity resolution and network access switched off.
"""

from dataclasses import dataclass
from pathlib import PurePosixPath

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from kraken.lib.xml import XMLPage
from lxml import etree

Point = tuple[float, float]


class XMLImportError(ValueError):
    """An XML file that cannot be imported, with a message fit for the user."""


@dataclass
class ImportedLine:
    baseline: list[Point]
    polygon: list[Point]
    text: str


@dataclass
class ImportedPage:
    image_name: str
    width: int
    height: int
    lines: list[ImportedLine]


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class _SafeXMLPage(XMLPage):
    """kraken's XMLPage, fed from bytes already parsed by the safe parser: its own
    constructor would re-read the file with lxml's defaults."""

    def __init__(self, data: bytes, name: str):
        self._data = data
        super().__init__(PurePosixPath(name), filetype="xml", linetype="baselines")

    def _parse_xml(self):
        try:
            doc = etree.ElementTree(etree.fromstring(self._data, parser=_safe_parser()))
        except etree.XMLSyntaxError as exc:
            raise XMLImportError(f"the XML is malformed ({exc})") from exc
        root = doc.getroot().tag
        if root.endswith("alto"):
            return self._do_parse_alto(doc)
        if root.endswith("PcGts"):
            return self._do_parse_page(doc)
        raise XMLImportError("the XML is neither PAGE XML nor ALTO")


def parse_layout_xml(data: bytes, name: str) -> ImportedPage:
    """Lines of a PAGE or ALTO file in reading order, in the file's pixel coordinates."""
    try:
        defused_fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XMLImportError(
            f"the XML declares entities or external references, which are refused ({exc})"
        ) from exc
    except Exception as exc:  # ParseError and the expat errors behind it
        raise XMLImportError(f"the XML is malformed ({exc})") from exc
    try:
        page = _SafeXMLPage(data, name)
    except XMLImportError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise XMLImportError(f"the layout could not be read ({exc})") from exc
    width, height = page.image_size or (0, 0)
    if width <= 0 or height <= 0:
        raise XMLImportError("the XML gives no page size")
    lines = [
        ImportedLine(
            baseline=[tuple(p) for p in (line.baseline or [])],
            polygon=[tuple(p) for p in (line.boundary or [])],
            text=(line.text or "").strip(),
        )
        for line in page.get_sorted_lines()
        if line.boundary or line.baseline
    ]
    return ImportedPage(
        image_name=PurePosixPath(str(page.imagename)).name,
        width=int(width),
        height=int(height),
        lines=lines,
    )
