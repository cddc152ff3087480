"""IIIF Presentation manifests (versions 2 and 3) into documents.

The manifest is fetched and checked while the user waits: a manifest that is no JSON, no
IIIF, has no canvases or more than OCRREVIEW_IIIF_MAX_CANVASES, or cannot be fetched safely
(remote.py) is refused with its reason and stores nothing. A good one becomes a document in
the state "fetching images" holding its canvases in order; a worker then fetches one image
per canvas from its Image API service, bounded by the app's pixel limit, and makes each a
page in its own transaction. A worker that dies, or a server that fails for a while, costs
nothing fetched: the next run starts at the first canvas without a page. Importing the same
manifest URL into the same collection again gives the document made the first time.
"""

import json
import logging
import math
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from ocrreview import storage
from ocrreview.corpus import claims
from ocrreview.corpus.iiif_export import first_value
from ocrreview.corpus.ingestion import (
    IngestError,
    decode_image_file,
    remote_source_name,
    start_processing,
)
from ocrreview.corpus.json_text import unstorable
from ocrreview.corpus.models import Collection, Document, Page
from ocrreview.corpus.names import entered_name
from ocrreview.corpus.remote import (
    MAX_REDIRECTS,
    FetchError,
    FetchUnavailable,
    check_url,
    fetch,
)
from ocrreview.corpus.segmentation import store_lines, whole_image_lines
from recognition.preprocess import MAX_PIXELS

logger = logging.getLogger(__name__)

PRESENTATION_2 = "http://iiif.io/api/presentation/2/context.json"
PRESENTATION_3 = "http://iiif.io/api/presentation/3/context.json"
# A manifest at the canvas limit is a few megabytes; anything far larger is not one.
MANIFEST_MAX_BYTES = 20 * 1024 * 1024
INFO_MAX_BYTES = 1024 * 1024
JSON_TYPES = "application/ld+json, application/json;q=0.9, */*;q=0.1"
IMAGE_TYPES = "image/jpeg, image/png, image/tiff;q=0.8, image/*;q=0.5"
SEGMENTATIONS = (Document.Segmentation.KRAKEN, Document.Segmentation.WHOLE_IMAGE)
# Each page keeps its canvas id, to be published again under it.
MAX_CANVAS_ID = Page._meta.get_field("iiif_canvas").max_length
# A canvas or image side beyond any scan; a larger one, however valid in JSON, would overflow
# the arithmetic of sizes and scales.
MAX_SIDE = 1_000_000
# getaddrinfo has no timeout of its own; the resolver's default tries add up to about this.
DNS_SECONDS = 10


class IiifError(ValueError):
    """A manifest or image that cannot be imported, with a message fit to show to the user."""


@dataclass
class Canvas:
    id: str
    label: str
    width: int
    height: int
    # The painting annotation's image, and the Image API service that serves it, if any.
    image: str
    service: str = ""
    service_version: int = 0
    service_profile: str = ""


@dataclass
class Manifest:
    version: int
    title: str
    descriptive: dict
    canvases: list[Canvas]


def do_import_iiif(
    collection: Collection,
    url: str,
    *,
    user=None,
    segmentation: str = Document.Segmentation.KRAKEN,
) -> tuple[Document, bool]:
    """The document of the manifest at `url`, and whether its images are being fetched now:
    a new document, or a failed import resumed; an earlier import's document comes back as
    it is. Raises IiifError (or remote.FetchError) when the manifest cannot be imported."""
    url = _normalized(url.strip())
    if any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in url):
        # A fetch would percent-encode it; kept as the document's source, no XML could name it.
        raise IiifError("the URL holds a control character; percent-encode it (%01 for \\x01)")
    if segmentation not in SEGMENTATIONS:
        raise IiifError("IIIF images are cut into lines by kraken, or taken as one line each")
    check_url(url)
    existing = collection.documents.filter(iiif_manifest=url).first()
    if existing is not None:
        return existing, _resume(existing)
    fetched = fetch(url, max_bytes=MANIFEST_MAX_BYTES, accept=JSON_TYPES)
    manifest = parse_manifest(fetched.body)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                collection=collection,
                title=manifest.title[:300],
                uploaded_by=user if user is not None and user.is_authenticated else None,
                segmentation=segmentation,
                status=Document.Status.FETCHING,
                iiif_manifest=url,
                iiif_descriptive=manifest.descriptive,
                iiif_canvases=[asdict(canvas) for canvas in manifest.canvases],
                **claims.unclaimed(),
            )
            _queue_fetch(document)
    except IntegrityError:
        # The same manifest imported at the same moment by another request.
        return collection.documents.get(iiif_manifest=url), False
    logger.info("IIIF manifest %s imported as document %s", url, document.pk)
    return document, True


def _normalized(url: str) -> str:
    """The URL as one import of it is known by: the scheme and host name are not case
    sensitive, so HTTP://Archive.org/m.json is the manifest an earlier import already made."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme.lower(), host[0] + host[1] + host[2].lower(), *parts[2:]))


def _resume(document: Document) -> bool:
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document.pk)
        if locked.status != Document.Status.FAILED or locked.pages.count() == len(
            locked.iiif_canvases
        ):
            return False
        Document.objects.filter(pk=locked.pk).update(
            status=Document.Status.FETCHING, error="", **claims.unclaimed()
        )
        _queue_fetch(locked)
    document.refresh_from_db()
    return True


def _queue_fetch(document: Document) -> None:
    # Imported here: tasks.py imports this module.
    from ocrreview.corpus.tasks import fetch_iiif_images

    # Robust: with the broker down the import still stands, and the sweep queues its fetch.
    transaction.on_commit(lambda: fetch_iiif_images.delay(document.pk), robust=True)


def canvas_seconds() -> float:
    """The longest one canvas may take: its info.json and its image, each up to
    MAX_REDIRECTS redirects (a DNS answer, a connection and the headers each hop), then its
    body within the deadline, and a minute to decode and store it."""
    hop = (
        DNS_SECONDS + settings.OCRREVIEW_IIIF_CONNECT_TIMEOUT + settings.OCRREVIEW_IIIF_READ_TIMEOUT
    )
    one_fetch = (MAX_REDIRECTS + 1) * hop + settings.OCRREVIEW_IIIF_FETCH_DEADLINE
    return 2 * one_fetch + 60


def lost_fetches() -> list[int]:
    """The documents being fetched whose fetch is silent, for the sweep to queue again; one
    whose fetch was taken over claims.MAX_TAKEOVERS times already fails instead, with its
    pages kept for a later import to resume from."""
    return claims.lost(
        Document.Status.FETCHING,
        canvas_seconds(),
        f"the fetch of its images stopped without a word {claims.MAX_TAKEOVERS + 1} times "
        "(a worker killed while fetching, by its memory limit say); import the manifest again "
        "to resume",
    )


def claim_fetch(document_id: int, fetcher: str) -> bool:
    """Make `fetcher` (a run's token) the document's one fetch (see claims.py)."""
    return claims.claim(document_id, fetcher, Document.Status.FETCHING, canvas_seconds())


# --- Reading manifests -----------------------------------------------------------------------


def parse_manifest(data: bytes) -> Manifest:
    try:
        manifest = json.loads(data)
    except ValueError as exc:  # not UTF-8, not JSON, or a number of thousands of digits
        raise IiifError(f"the manifest is not JSON ({exc})") from None
    except RecursionError:
        raise IiifError("the manifest's JSON is nested too deeply to be a manifest") from None
    if problem := unstorable(manifest):
        raise IiifError(f"the manifest holds {problem}, which no text may hold")
    if not isinstance(manifest, dict):
        raise IiifError("the manifest is not a IIIF Presentation manifest (not a JSON object)")
    contexts = _as_list(manifest.get("@context"))
    kind = manifest.get("type") or manifest.get("@type")
    if kind in ("Collection", "sc:Collection"):
        raise IiifError("this is a IIIF collection, not a manifest: import its manifests")
    if PRESENTATION_3 in contexts and kind == "Manifest":
        version, canvases = 3, _canvases_3(manifest)
    elif PRESENTATION_2 in contexts and kind == "sc:Manifest":
        version, canvases = 2, _canvases_2(manifest)
    else:
        raise IiifError(
            "the manifest is not a IIIF Presentation manifest of version 2 or 3 "
            "(its @context and type say otherwise)"
        )
    if not canvases:
        raise IiifError("the manifest has no canvases")
    limit = settings.OCRREVIEW_IIIF_MAX_CANVASES
    if len(canvases) > limit:
        raise IiifError(f"the manifest has {len(canvases)} canvases; the limit is {limit}")
    parsed = [_canvas(raw, version, n) for n, raw in enumerate(canvases, 1)]
    descriptive = _descriptive(manifest, version)
    # A label of only bidi controls or control characters is no title: it would be stored empty.
    title = entered_name(first_value(descriptive.get("label"))) or "IIIF manifest"
    return Manifest(version, title, descriptive, parsed)


def _canvases_3(manifest: dict) -> list:
    items = manifest.get("items")
    if not isinstance(items, list):
        raise IiifError("the manifest's items are not a list of canvases")
    return items


def _canvases_2(manifest: dict) -> list:
    sequences = manifest.get("sequences")
    if not isinstance(sequences, list) or not sequences or not isinstance(sequences[0], dict):
        raise IiifError("the manifest has no sequence of canvases")
    canvases = sequences[0].get("canvases")
    if not isinstance(canvases, list):
        raise IiifError("the manifest's sequence holds no list of canvases")
    return canvases


def _canvas(raw, version: int, number: int) -> Canvas:
    where = f"canvas {number}"
    if not isinstance(raw, dict):
        raise IiifError(f"{where} is not a JSON object")
    canvas_id = raw.get("id") if version == 3 else raw.get("@id")
    if not _is_http(canvas_id):
        raise IiifError(f"{where} has no http(s) id")
    if len(canvas_id) > MAX_CANVAS_ID:
        raise IiifError(
            f"{where} has an id of {len(canvas_id):,} characters; at most {MAX_CANVAS_ID:,} "
            "are kept"
        )
    where = f"canvas {number} ({canvas_id})"
    body = _image_body_3(raw) if version == 3 else _image_body_2(raw)
    if body is None:
        raise IiifError(f"{where} has no image")
    image = body.get("id") if version == 3 else body.get("@id")
    service = _service(body.get("service"))
    if not _is_http(image) and service is None:
        raise IiifError(f"{where}: its image has no http(s) URL")
    width, height = raw.get("width"), raw.get("height")
    if not (_positive_int(width) and _positive_int(height)):
        width, height = body.get("width"), body.get("height")
    if not (_positive_int(width) and _positive_int(height)):
        raise IiifError(f"{where} has no width and height (whole numbers up to {MAX_SIDE:,})")
    label = first_value(_language_map(raw.get("label"))) or f"canvas {number}"
    service_id, service_version, profile = service or ("", 0, "")
    return Canvas(
        canvas_id, label[:300], width, height, image or "", service_id, service_version, profile
    )


def _image_body_3(canvas: dict) -> dict | None:
    for page in _as_list(canvas.get("items")):
        for annotation in _as_list(page.get("items") if isinstance(page, dict) else None):
            if not isinstance(annotation, dict) or annotation.get("motivation") != "painting":
                continue
            body = annotation.get("body")
            if isinstance(body, list):
                body = body[0] if body else None
            if isinstance(body, dict) and body.get("type") == "Choice":
                choices = _as_list(body.get("items"))
                body = choices[0] if choices else None
            if isinstance(body, dict) and body.get("type") == "Image":
                return body
    return None


def _image_body_2(canvas: dict) -> dict | None:
    for annotation in _as_list(canvas.get("images")):
        resource = annotation.get("resource") if isinstance(annotation, dict) else None
        if isinstance(resource, dict) and resource.get("@type") == "oa:Choice":
            resource = resource.get("default")
        if isinstance(resource, dict):
            return resource
    return None


def _service(raw) -> tuple[str, int, str] | None:
    """The first IIIF Image API service (id, major version, profile) among the resource's
    services."""
    for service in _as_list(raw):
        if not isinstance(service, dict):
            continue
        service_id = service.get("id") or service.get("@id")
        kind = str(service.get("type") or service.get("@type") or "")
        signs = " ".join(
            [kind, *map(str, _as_list(service.get("@context"))), str(service.get("profile", ""))]
        )
        profile = next((p for p in _as_list(service.get("profile")) if isinstance(p, str)), "")
        if not _is_http(service_id):
            continue
        if "ImageService3" in signs or "image/3" in signs:
            return service_id.rstrip("/"), 3, profile
        if "ImageService2" in signs or "image/2" in signs:
            return service_id.rstrip("/"), 2, profile
        if profile in ("level0", "level1", "level2"):
            return service_id.rstrip("/"), 3, profile
    return None


def _descriptive(manifest: dict, version: int) -> dict:
    """What the manifest says about the object, in Presentation 3's terms."""
    if version == 3:
        described = {
            "label": _language_map(manifest.get("label")),
            "summary": _language_map(manifest.get("summary")),
            "metadata": _metadata(manifest.get("metadata")),
            "requiredStatement": _pair(manifest.get("requiredStatement")),
            "rights": manifest.get("rights") if _is_http(manifest.get("rights")) else "",
            "id": manifest.get("id") if _is_http(manifest.get("id")) else "",
        }
    else:
        attribution = _language_map(manifest.get("attribution"))
        licence = next((x for x in _as_list(manifest.get("license")) if _is_http(x)), "")
        described = {
            "label": _language_map(manifest.get("label")),
            "summary": _language_map(manifest.get("description")),
            "metadata": _metadata(manifest.get("metadata")),
            "requiredStatement": {"label": {"en": ["Attribution"]}, "value": attribution}
            if attribution
            else None,
            "rights": licence,
            "id": manifest.get("@id") if _is_http(manifest.get("@id")) else "",
        }
    return {key: value for key, value in described.items() if value}


def _metadata(raw) -> list[dict]:
    return [pair for pair in map(_pair, _as_list(raw)) if pair]


def _pair(raw) -> dict | None:
    if not isinstance(raw, dict):
        return None
    label, value = _language_map(raw.get("label")), _language_map(raw.get("value"))
    return {"label": label, "value": value} if label and value else None


def _language_map(raw) -> dict[str, list[str]]:
    """A label or value of either version as a Presentation 3 language map: version 3's
    {"en": ["..."]}, version 2's plain string, {"@value", "@language"}, or a list of them."""
    if isinstance(raw, dict) and "@value" not in raw:
        return {
            str(language): [str(v) for v in _as_list(values) if isinstance(v, str | int | float)]
            for language, values in raw.items()
            if _as_list(values)
        }
    values: dict[str, list[str]] = {}
    for item in _as_list(raw):
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            values.setdefault("none", []).append(str(item))
        elif isinstance(item, dict) and isinstance(item.get("@value"), str):
            language = str(item.get("@language") or "none")
            values.setdefault(language, []).append(item["@value"])
    return values


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_http(value) -> bool:
    try:
        return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")
    except ValueError:  # an unclosed IPv6 bracket, say: no URL at all
        return False


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIDE


# --- Fetching the images (on a worker) -------------------------------------------------------


def do_fetch_iiif_images(document_id: int, fetcher: str) -> None:
    """Make a page of every canvas that has none yet, then hand the document on to
    segmentation; nothing when another fetch holds the document (see claim_fetch). Raises
    FetchUnavailable when a server fails for now (the task tries again later, and keeps what
    it fetched); any other failure fails the document, with its pages."""
    if not claim_fetch(document_id, fetcher):
        return
    document = Document.objects.get(pk=document_id)
    fetched = set(document.pages.values_list("index", flat=True))
    for index, raw in enumerate(document.iiif_canvases):
        if index in fetched:
            continue
        # A sign of life before each canvas, and the end of this run if it lost the claim.
        if not claim_fetch(document_id, fetcher):
            return
        canvas = Canvas(**raw)
        try:
            data = fetch_canvas_image(canvas)
            image = decode_image_file(canvas.label, data)
        except FetchUnavailable:
            raise
        except (FetchError, IngestError) as exc:
            _fail(document, fetcher, f"canvas {index + 1} ({canvas.id}): {exc}")
            return
        if not _store_page(document, fetcher, index, canvas, image):
            return
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document_id)
        if locked.status == Document.Status.FETCHING and locked.worked_by == fetcher:
            locked.status = Document.Status.UPLOADED
            locked.save(update_fields=["status"])
            start_processing(locked)


def fetch_canvas_image(canvas: Canvas) -> bytes:
    """The canvas's image, from its Image API service at the largest size the server offers
    and the app's pixel limit allows, or else from the image's own URL."""
    max_bytes = settings.OCRREVIEW_MAX_UPLOAD_MB * 1024 * 1024
    if not canvas.service:
        return _image(fetch(canvas.image, max_bytes=max_bytes, accept=IMAGE_TYPES))
    version, width, height, limits = _image_info(canvas)
    scale = min(1.0, math.sqrt(MAX_PIXELS / (width * height)), *limits.scales(width, height))
    # "w," is a size every level-1 server gives, version 2 and 3 alike; "full" in version 2
    # is the whole image, which a server with a maxWidth refuses.
    size = f"{max(1, math.floor(width * scale))}," if scale < 1 else "max"
    if size == "max" and version == 2:
        size = "full"
    url = f"{canvas.service}/full/{size}/0/default.jpg"
    return _image(fetch(url, max_bytes=max_bytes, accept=IMAGE_TYPES))


@dataclass
class _Limits:
    """The largest image an Image API server says it gives (info.json's maxWidth, maxHeight
    and maxArea); asked for more, it answers 4xx."""

    width: int | None = None
    height: int | None = None
    area: int | None = None

    def scales(self, width: int, height: int) -> list[float]:
        # A maxWidth without a maxHeight limits the height as well (Image API 3, 5.6).
        tall = self.height or self.width
        return [
            *([self.width / width] if self.width else []),
            *([tall / height] if tall else []),
            *([math.sqrt(self.area / (width * height))] if self.area else []),
        ]


def _image_info(canvas: Canvas) -> tuple[int, int, int, _Limits]:
    """The service's Image API version, the image's size and the server's limits, from its
    info.json; the manifest's word and the canvas's size when the server gives none."""
    try:
        info = json.loads(
            fetch(f"{canvas.service}/info.json", max_bytes=INFO_MAX_BYTES, accept=JSON_TYPES).body
        )
    except FetchUnavailable:
        raise
    except (FetchError, ValueError, RecursionError) as exc:
        logger.warning("IIIF info.json of %s unusable: %s", canvas.service, exc)
        info = {}
    if not isinstance(info, dict):
        info = {}
    version = canvas.service_version
    if info.get("type") == "ImageService3" or "image/3" in str(info.get("@context", "")):
        version = 3
    elif "image/2" in str(info.get("@context", "")):
        version = 2
    width, height = info.get("width"), info.get("height")
    if not (_positive_int(width) and _positive_int(height)):
        width, height = canvas.width, canvas.height
    area = info.get("maxArea")
    limits = _Limits(
        *(
            info.get(key) if _positive_int(info.get(key)) else None
            for key in ("maxWidth", "maxHeight")
        ),
        area if isinstance(area, int) and not isinstance(area, bool) and area > 0 else None,
    )
    return version or 3, width, height, limits


def _image(fetched) -> bytes:
    kind = fetched.content_type
    if kind.startswith("text/") or "json" in kind or "xml" in kind:
        raise FetchError(f"{fetched.url} answered {kind}, not an image")
    return fetched.body


def _store_page(document: Document, fetcher: str, index: int, canvas: Canvas, image) -> bool:
    """The canvas's page, in one transaction with its whole-image line; False when the
    document is no longer this fetcher's to fetch (deleted, failed, or taken over by the
    sweep's fetch after a long silence)."""
    name = ""
    try:
        with transaction.atomic():
            locked = Document.objects.select_for_update().filter(pk=document.pk).first()
            if locked is None or locked.status != Document.Status.FETCHING:
                return False
            if locked.worked_by != fetcher:
                return False
            page = Page(
                document=locked,
                index=index,
                width=image.width,
                height=image.height,
                iiif_canvas=canvas.id,
                source_name=remote_source_name(canvas.service, canvas.image),
            )
            page.image.save(
                f"{locked.pk}-{index + 1}.{image.extension}", ContentFile(image.content), save=False
            )
            name = page.image.name
            page.save()
            if locked.segmentation == Document.Segmentation.WHOLE_IMAGE:
                store_lines(
                    page, whole_image_lines(page.width, page.height), import_text=False, user=None
                )
            claims.made_progress(locked.pk, fetcher)
    except Exception:
        if name:
            default_storage.delete(name)
        raise
    return True


def _fail(document: Document, fetcher: str, error: str) -> None:
    """A canvas that cannot be imported fails the document: it keeps no page, so nothing
    half-imported is segmented or read, and says why. Not a document another fetch took over."""
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None or locked.worked_by != fetcher:
            return
        files = [page.image for page in locked.pages.all()]
        locked.pages.all().delete()
        locked.status, locked.error = Document.Status.FAILED, error
        locked.save(update_fields=["status", "error"])
        transaction.on_commit(lambda: storage.delete_files(files))
    logger.warning("IIIF import of document %s failed: %s", document.pk, error)


def give_up_fetching(document_id: int, fetcher: str, error: str) -> None:
    """The servers kept failing: the document fails with the reason, keeping the pages
    fetched so far for a later import of the same manifest to resume from. Not a document
    another fetch took over."""
    fetching = Document.objects.filter(pk=document_id, status=Document.Status.FETCHING)
    fetching.filter(worked_by=fetcher).update(
        status=Document.Status.FAILED,
        error=f"{error} (import the manifest again to resume)",
    )
