"""A document's transcription as a IIIF Presentation 3 manifest, for viewers such as Mirador
and Universal Viewer.

Each line with text is a W3C Web Annotation with the `supplementing` motivation on its
page's canvas: its boundary polygon as an SVG selector where the line has one, else its box
as a `#xywh=` fragment, and its current text as a TextualBody (in the collection's language,
where it names one). A line no one has reviewed says
so, with the model's calibrated confidence, in its label and in `ocrreview:status` and
`ocrreview:confidence`; a line a reviewer marked unclear (a guess) in its label and in
`ocrreview:unclear`, with their note in `ocrreview:unclearNote`. A document imported from IIIF keeps its source's canvas ids, image
services, label and metadata, so the annotations land on the archive's own canvases; any other
document's canvases are its pages here, with this site's image URLs: the web's for a manifest
a browser fetches signed in, the API's (which take a token) for one fetched through the API.
"""

import html
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

from django.urls import reverse
from django.utils.html import strip_tags

from ocrreview.corpus.models import Document, Line, Page
from ocrreview.corpus.names import clean_name, entered_name

PRESENTATION_3 = "http://iiif.io/api/presentation/3/context.json"
# The media type of a Presentation 3 manifest, as the specification names it.
IIIF_JSON = f'application/ld+json;profile="{PRESENTATION_3}"'
RIGHTS_PREFIXES = (
    "http://creativecommons.org/licenses/",
    "http://creativecommons.org/publicdomain/",
    "http://rightsstatements.org/vocab/",
)
NO_TEXT = (Line.Status.PENDING, Line.Status.FAILED)
HUMAN = (Line.Status.REVIEWED,)


class NoCanvases(ValueError):
    """A document with no page yet: Presentation 3 wants a manifest of one canvas at least."""


def document_manifest(
    document: Document, absolute: Callable[[str], str], *, image_path: Callable[[Page], str]
) -> dict:
    """The manifest; `absolute` makes a path of this site a full URL, `image_path` gives the
    path of an uploaded page's image."""
    own_id = absolute(reverse("api_document_iiif", args=[document.pk]))
    base = own_id.rsplit("/", 1)[0]
    source = document.iiif_descriptive
    canvases = document.iiif_canvases
    lines_by_page: dict[int, list[Line]] = {}
    for line in document.lines.exclude(status__in=NO_TEXT).exclude(text="").order_by("order"):
        lines_by_page.setdefault(line.page_id, []).append(line)
    items = []
    language = document.collection.language
    for page in document.pages.order_by("index"):
        imported = canvases[page.index] if document.iiif_manifest else None
        lines = lines_by_page.get(page.pk, [])
        items.append(_canvas(page, imported, lines, base, absolute, image_path, language))
    manifest = {
        "@context": PRESENTATION_3,
        "id": own_id,
        "type": "Manifest",
        "label": source.get("label") or {"none": [clean_name(document.title)]},
    }
    for key in ("summary", "requiredStatement"):
        if source.get(key):
            manifest[key] = source[key]
    metadata = list(source.get("metadata", []))
    licence = document.collection.licence
    if licence:
        metadata.append({"label": {"en": ["Transcription licence"]}, "value": {"none": [licence]}})
    if metadata:
        manifest["metadata"] = metadata
    rights = rights_of(source)
    if rights.startswith(RIGHTS_PREFIXES):
        manifest["rights"] = rights
    if document.iiif_manifest:
        manifest["seeAlso"] = [
            {
                "id": document.iiif_manifest,
                "type": "Dataset",
                "label": {"en": ["The IIIF manifest this document was imported from"]},
                "format": "application/ld+json",
            }
        ]
    if not items:
        raise NoCanvases(
            f"{document.title} has no page yet ({document.get_status_display().lower()}), "
            "so no IIIF manifest"
        )
    manifest["items"] = items
    return manifest


def _canvas(
    page: Page,
    imported: dict | None,
    lines: list[Line],
    base: str,
    absolute,
    image_path: Callable[[Page], str],
    language: str,
) -> dict:
    number = page.index + 1
    if imported:
        canvas_id, width, height = imported["id"], imported["width"], imported["height"]
        label = imported["label"]
        image = _source_image(imported)
    else:
        collection_id = page.document.collection_id
        canvas_id = absolute(reverse("review_page", args=[collection_id, page.pk]))
        width, height, label = page.width, page.height, f"page {number}"
        image = {
            "id": absolute(image_path(page)),
            "type": "Image",
            "format": _format(page.image.name),
        }
    image.update(width=width, height=height)
    scale = (width / page.width, height / page.height)
    return {
        "id": canvas_id,
        "type": "Canvas",
        "label": {"none": [label]},
        "width": width,
        "height": height,
        "items": [
            {
                "id": f"{base}/canvas/{number}/painting",
                "type": "AnnotationPage",
                "items": [
                    {
                        "id": f"{base}/canvas/{number}/image",
                        "type": "Annotation",
                        "motivation": "painting",
                        "body": image,
                        "target": canvas_id,
                    }
                ],
            }
        ],
        "annotations": [
            {
                "id": f"{base}/canvas/{number}/lines",
                "type": "AnnotationPage",
                "items": [
                    _line(line, canvas_id, width, height, scale, base, language) for line in lines
                ],
            }
        ],
    }


def _source_image(canvas: dict) -> dict:
    if not canvas["service"]:
        return {"id": canvas["image"], "type": "Image", "format": "image/jpeg"}
    if canvas["service_version"] == 2:
        size, service = (
            "full",
            {
                "@id": canvas["service"],
                "@type": "ImageService2",
                "profile": canvas["service_profile"] or "http://iiif.io/api/image/2/level0.json",
            },
        )
    else:
        size, service = (
            "max",
            {
                "id": canvas["service"],
                "type": "ImageService3",
                "profile": canvas["service_profile"] or "level0",
            },
        )
    return {
        "id": f"{canvas['service']}/full/{size}/0/default.jpg",
        "type": "Image",
        "format": "image/jpeg",
        "service": [service],
    }


def _line(
    line: Line, canvas_id: str, width: int, height: int, scale, base: str, language: str
) -> dict:
    sx, sy = scale

    def point(x, y) -> tuple[int, int]:
        # Rounded onto the canvas: a line's polygon may reach a pixel past the page's edge.
        return min(width, max(0, round(x * sx))), min(height, max(0, round(y * sy)))

    if len(line.polygon) >= 3:
        points = " ".join("{},{}".format(*point(x, y)) for x, y in line.polygon)
        svg = f"<svg xmlns='http://www.w3.org/2000/svg'><polygon points={quoteattr(points)}/></svg>"
        target = {
            "type": "SpecificResource",
            "source": {"id": canvas_id, "type": "Canvas"},
            "selector": {"type": "SvgSelector", "value": svg},
        }
    else:
        x0, y0 = point(line.bbox[0], line.bbox[1])
        x1, y1 = point(line.bbox[2], line.bbox[3])
        target = f"{canvas_id}#xywh={x0},{y0},{max(1, x1 - x0)},{max(1, y1 - y0)}"
    reviewed = line.status in HUMAN
    annotation = {
        "id": f"{base}/lines/{line.pk}",
        "type": "Annotation",
        "motivation": "supplementing",
        "label": {"en": [_label(line, reviewed)]},
        "body": {
            "type": "TextualBody",
            "value": line.text,
            "format": "text/plain",
            **({"language": language} if language else {}),
        },
        "target": target,
        "ocrreview:status": line.status,
    }
    if not reviewed and line.confidence is not None:
        annotation["ocrreview:confidence"] = round(line.confidence, 4)
    if line.unclear:
        # A guess, as every other export marks it (transcripts.py).
        annotation["ocrreview:unclear"] = True
        if line.unclear_note:
            annotation["ocrreview:unclearNote"] = line.unclear_note
    return annotation


def _label(line: Line, reviewed: bool) -> str:
    if reviewed:
        label = f"line {line.order + 1}, reviewed"
    elif line.confidence is None:
        label = f"line {line.order + 1}, not reviewed"
    else:
        label = f"line {line.order + 1}, not reviewed, model confidence {line.confidence:.2f}"
    if line.unclear:
        label += (
            f", marked unclear: {line.unclear_note}" if line.unclear_note else ", marked unclear"
        )
    return label


def _format(name: str) -> str:
    return "image/png" if name.lower().endswith(".png") else "image/jpeg"


def rights_of(descriptive: dict) -> str:
    """The licence or rights statement's URI that a manifest's `rights` (as
    Document.iiif_descriptive keeps it) names, a Creative Commons or RightsStatements.org one
    written as those registries write it."""
    rights = descriptive.get("rights", "")
    # Those registries' URIs are http, as the schema requires; manifests often write https.
    https = tuple(prefix.replace("http://", "https://", 1) for prefix in RIGHTS_PREFIXES)
    if rights.startswith(https):
        return "http://" + rights.removeprefix("https://")
    return rights


def attribution_of(descriptive: dict) -> str:
    """What a manifest's requiredStatement (as Document.iiif_descriptive keeps it) says must be
    shown with its images, as plain text on one line ("Attribution: Stanford Libraries"); ""
    for none."""
    statement = descriptive.get("requiredStatement") or {}
    value = _plain_text(first_value(statement.get("value")))
    label = _plain_text(first_value(statement.get("label")))
    return f"{label}: {value}" if label and value else value


def _plain_text(value: str) -> str:
    # IIIF lets a value hold some HTML (a link to the archive, most often), which a data set's
    # column would show as markup; and it comes from someone else's server.
    return entered_name(html.unescape(strip_tags(value)))


def first_value(language_map: dict | None) -> str:
    """A language map's text in English, else in no language, else in the first it has."""
    if not language_map:
        return ""
    for language in ("en", "none", *language_map):
        values = [v for v in language_map.get(language, []) if v.strip()]
        if values:
            return " ".join(v.strip() for v in values)
    return ""
