"""Cutting pages into lines: kraken's baseline segmenter, one line per image, or the lines
of an imported PAGE/ALTO file. Lines keep baseline and boundary polygon, and their bbox is
what the editor and the cropper fall back to."""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageOps

from ocrreview.corpus import claims
from ocrreview.corpus.kraken_child import START_LIMIT_S, SegmentationFailed, detect_lines
from ocrreview.corpus.models import Document, Line, Page
from ocrreview.corpus.signals import lines_ready, text_imported, unclear_imported
from ocrreview.corpus.xmlimport import ImportedPage
from recognition.preprocess import MAX_PIXELS, ImageError, open_image

logger = logging.getLogger(__name__)

Points = list[list[int]]


@dataclass
class LineGeometry:
    bbox: list[int]
    polygon: Points = field(default_factory=list)
    baseline: Points = field(default_factory=list)
    text: str = ""
    machine_read: bool = False
    unclear: bool = False
    unclear_note: str = ""
    persons_guess: bool = False


def whole_image_lines(width: int, height: int) -> list[LineGeometry]:
    return [LineGeometry(bbox=[0, 0, width, height])]


# A photo's EXIF orientations that turn it a quarter to show it upright: where a point of its
# pixels as stored (x, y, in an image w wide and h high) is in the upright image.
QUARTER_TURNS = {
    5: lambda x, y, w, h: (y, x),
    6: lambda x, y, w, h: (h - y, x),
    7: lambda x, y, w, h: (h - y, w - x),
    8: lambda x, y, w, h: (y, w - x),
}


def upright_layout(layout: ImportedPage, orientation: int, width: int, height: int) -> ImportedPage:
    """A layout made on a photo's pixels as stored, before its EXIF orientation turns it upright
    (as Tesseract and kraken read a file), in the frame of the upright image, `width` by
    `height`, which is what is stored: only scaled, its lines would lie across the page. Told
    by its proportions, which a quarter turn swaps; a half turn or a mirror keeps them, and a
    layout is then taken as made on the upright image."""
    turn = QUARTER_TURNS.get(orientation)
    if turn is None or width == height:
        return layout
    made_on = layout.width / layout.height
    if abs(made_on - height / width) >= abs(made_on - width / height):
        return layout
    w, h = layout.width, layout.height

    def turned(points: Sequence[Sequence[float]]) -> list:
        return [list(turn(x, y, w, h)) for x, y in points]

    lines = [
        replace(line, polygon=turned(line.polygon), baseline=turned(line.baseline))
        for line in layout.lines
    ]
    return replace(layout, width=h, height=w, lines=lines)


def imported_lines(layout: ImportedPage, width: int, height: int) -> list[LineGeometry]:
    """The XML's lines, scaled when the image is not the size the XML was made for."""
    sx, sy = width / layout.width, height / layout.height

    def scale(points: Sequence[Sequence[float]]) -> Points:
        return [[round(x * sx), round(y * sy)] for x, y in points]

    lines = []
    for line in layout.lines:
        polygon, baseline = scale(line.polygon), scale(line.baseline)
        bbox = bbox_of(polygon or baseline, width, height)
        if bbox is not None:
            lines.append(
                LineGeometry(
                    bbox,
                    polygon,
                    baseline,
                    line.text,
                    line.machine_read,
                    line.unclear,
                    line.unclear_note,
                    line.persons_guess,
                )
            )
    return lines


def _line(
    document, page: Page, order: int, geometry: LineGeometry, import_text: bool, note_length: int
) -> Line:
    text = geometry.text if import_text else ""
    # The mark says the text is a guess: without the text there is nothing it is about.
    unclear = bool(text) and geometry.unclear
    # A person's text marked unclear comes back as it was exported, reviewed and marked (the
    # mark keeps it out of training data): taken for a model's reading, recognition would
    # replace it.
    reviewed = bool(text) and (not geometry.machine_read or unclear and geometry.persons_guess)
    return Line(
        collection_id=document.collection_id,
        document=document,
        page=page,
        order=order,
        bbox=geometry.bbox,
        polygon=geometry.polygon,
        baseline=geometry.baseline,
        text=text,
        status=Line.Status.REVIEWED if reviewed else Line.Status.PENDING,
        unclear=unclear,
        unclear_note=geometry.unclear_note[:note_length] if unclear else "",
    )


def bbox_of(points: Points, width: int, height: int) -> list[int] | None:
    """The points' bounding box clipped to the page; None when nothing is left of it."""
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0 = max(0, min(xs)), max(0, min(ys))
    x1, y1 = min(width, max(xs) + 1), min(height, max(ys) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return [x0, y0, x1, y1]


def store_lines(page: Page, geometries: list[LineGeometry], *, import_text: bool, user) -> int:
    """Create the page's lines in reading order and mark it segmented.

    With `import_text`, a line's text from the XML is reviewed ground truth, recorded as an
    IMPORT correction like every other human-made text; but a text the XML marks as a model's
    reading (an export's auto-accepted line) is not a person's: its line keeps it unreviewed,
    for recognition to read like any new line. A line our export marked unclear keeps the
    mark and its note (which keep its text out of training data): a person's text so marked
    comes back reviewed, as it was exported, and a model's reading so marked is read again;
    the mark's import is in the line's trail too (review's IMPORT_UNCLEAR).
    """
    document = page.document
    note_length = Line._meta.get_field("unclear_note").max_length
    lines = Line.objects.bulk_create(
        _line(document, page, order, geometry, import_text, note_length)
        for order, geometry in enumerate(geometries)
    )
    uploader = user if user is not None and user.is_authenticated else None
    reviewed = [line for line in lines if line.status == Line.Status.REVIEWED]
    if reviewed:
        text_imported.send(Line, lines=reviewed, user=uploader)
    if marked := [line for line in lines if line.unclear]:
        unclear_imported.send(Line, lines=marked, user=uploader)
    page.status = Page.Status.SEGMENTED
    page.error = ""
    page.save(update_fields=["status", "error"])
    return len(lines)


# A pixel is ink when it is this much darker than the page's median (the paper); scanner noise
# on blank paper stays within a few levels of it, the faintest pencil is some 60 below it. One
# this much lighter is a page on a darker background (a card photographed on black): kraken
# is asked then.
INK_CONTRAST = 40
# Fewer ink pixels than this is a blank page: one handwritten word at 150 dpi has thousands.
MIN_INK_PIXELS = 50
# blla scales every page to a fixed height, so a page wider than this many times its height
# costs time and memory in proportion: a blank 800 x 300 control card took over two minutes
# and 4 GB. Spreads (about 1.4) are left alone.
MAX_SEGMENTATION_ASPECT = 1.5


def has_ink(image: Image.Image) -> bool:
    gray = np.asarray(image.convert("L"))
    median = int(np.median(gray))
    apart = np.count_nonzero(gray < median - INK_CONTRAST) + np.count_nonzero(
        gray > median + INK_CONTRAST
    )
    return int(apart) >= MIN_INK_PIXELS


def bounded_for_segmentation(
    image: Image.Image, max_pixels: int = MAX_PIXELS
) -> tuple[Image.Image, int]:
    """`image` with paper added below it until it is at most MAX_SEGMENTATION_ASPECT times as
    wide as it is tall, and the factor it was reduced by first (its coordinates times it are
    the page's): 1, unless the paper would take it past `max_pixels`. A scroll of 30,000 x
    4,000 pixels, as large as a page may be, would be 600 MP padded: 2.4 GB in this worker,
    and as much again sent to kraken's child, whose memory limit would be blamed."""
    min_height = math.ceil(image.width / MAX_SEGMENTATION_ASPECT)
    if image.height >= min_height:
        return image, 1
    factor = math.ceil(math.sqrt(image.width * min_height / max_pixels))
    if factor > 1:
        image = image.reduce(factor)
        min_height = math.ceil(image.width / MAX_SEGMENTATION_ASPECT)
    paper = tuple(int(v) for v in np.median(np.asarray(image.convert("RGB")), axis=(0, 1)))
    padded = ImageOps.pad(image, (image.width, min_height), color=paper, centering=(0, 0))
    return padded, factor


class PageUnreadable(OSError):
    """The storage did not give the page's image: for a moment (a network share, a bucket
    that times out), so the document's segmentation is tried again (see tasks.py), the page
    not failed for good."""


def _page_bytes(page: Page) -> bytes:
    try:
        with page.image.open("rb") as stream:
            return stream.read()
    except Exception as exc:  # OSError on a disk, botocore's errors on S3
        raise PageUnreadable(f"{page}: its image could not be read ({exc})") from exc


def kraken_lines(page: Page) -> list[LineGeometry]:
    """kraken's default baseline model (blla.mlmodel, as in eScriptorium), lines in its
    reading order, found in a child process that is stopped past the time and memory limits
    (kraken_child.py). A page without ink has no lines, and kraken is not asked: on a blank
    page it finds noise."""
    image = open_image(_page_bytes(page))
    if not has_ink(image):
        logger.info("%s has no ink: no lines", page)
        return []
    bounded, factor = bounded_for_segmentation(image)
    found = detect_lines(bounded, str(page))
    lines = []
    for found_boundary, found_baseline in found:
        polygon = [[round(x * factor), round(y * factor)] for x, y in found_boundary]
        baseline = [[round(x * factor), round(y * factor)] for x, y in found_baseline]
        bbox = bbox_of(polygon or baseline, image.width, image.height)
        if bbox is not None:
            lines.append(LineGeometry(bbox, polygon, baseline))
    return lines


def page_seconds() -> float:
    """The longest one page may take: starting kraken's child process (torch and the model)
    up to its limit, kraken up to its wall-clock limit, and a minute to load the image and
    store the lines."""
    return START_LIMIT_S + settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT + 60


def claim_segmentation(document_id: int, task: str) -> bool:
    """Make `task` (a run's token) the document's one segmentation (see claims.py)."""
    return claims.claim(document_id, task, Document.Status.SEGMENTING, page_seconds())


def do_segment_document(document_id: int, task: str) -> None:
    """Segment every page not yet segmented, then queue the document's lines for
    recognition; nothing when another task holds the document, alive, or it is past
    segmentation. A page is segmented, and its lines created, in one transaction, and a
    segmented page is never segmented again."""
    Document.objects.filter(pk=document_id, status=Document.Status.UPLOADED).update(
        status=Document.Status.SEGMENTING, **claims.unclaimed()
    )
    if not claim_segmentation(document_id, task):
        return
    document = Document.objects.get(pk=document_id)
    for page in document.pages.exclude(status=Page.Status.SEGMENTED):
        # A sign of life before each page, and the end of this run if it lost the claim.
        if not claim_segmentation(document_id, task):
            return
        Page.objects.filter(pk=page.pk).exclude(status=Page.Status.SEGMENTED).update(
            status=Page.Status.SEGMENTING
        )
        try:
            geometries = kraken_lines(page)
        except ImageError as exc:
            _page_failed(page, str(exc))
            continue
        except SegmentationFailed as exc:
            logger.warning("Segmentation of %s: %s", page, exc)
            _page_failed(page, str(exc))
            continue
        except PageUnreadable:
            raise
        except Exception as exc:  # one page kraken cannot handle must not stop the others
            logger.exception("Segmentation of %s failed", page)
            _page_failed(page, f"segmentation failed ({type(exc).__name__}: {exc})")
            continue
        with transaction.atomic():
            if _holding(document_id, task).select_for_update().values("pk").first() is None:
                return  # taken over after a long silence, or deleted
            locked = Page.objects.select_for_update().get(pk=page.pk)
            if locked.status != Page.Status.SEGMENTED:
                store_lines(locked, geometries, import_text=False, user=None)
            claims.made_progress(document_id, task)
    with transaction.atomic():
        failed = document.pages.filter(status=Page.Status.FAILED)
        errors = "; ".join(f"page {p.index + 1}: {p.error}" for p in failed)
        if failed and not document.lines.exists():
            _holding(document_id, task).update(status=Document.Status.FAILED, error=errors)
            return
        if _holding(document_id, task).update(status=Document.Status.RECOGNIZING, error=errors):
            lines_ready.send(Document, document=document)


# Tries while the storage does not give a page's image, 10 s apart at first, then up to 10
# minutes: about 50 minutes in all, for a share remounted or a bucket back from an outage.
STORAGE_TRIES = 10
STORAGE_WAIT_CAP_S = 600


def wait_for_storage(document_id: int, task: str, exc: OSError, tries: int) -> int | None:
    """Seconds until the segmentation tries again after the storage did not give a page's
    image, and the document says so meanwhile; None once it has tried long enough, and the
    document fails with the storage's error, keeping the lines of its segmented pages."""
    holding = _holding(document_id, task)
    if tries >= STORAGE_TRIES:
        holding.update(
            status=Document.Status.FAILED,
            error=f"the storage did not give a page's image after {tries} tries: {exc}",
        )
        return None
    seconds = min(10 * 2**tries, STORAGE_WAIT_CAP_S)
    holding.update(error=f"waiting for the storage, trying again in {seconds} s: {exc}")
    # Silent until then on purpose: the sweep must not count the wait as a lost worker.
    claims.postpone(document_id, task, seconds)
    return seconds


def _holding(document_id: int, task: str):
    return Document.objects.filter(
        pk=document_id, status=Document.Status.SEGMENTING, worked_by=task
    )


def lost_segmentations() -> list[int]:
    """The documents whose segmentation is silent for longer than a page may take (their
    worker died, or their message was lost), and those uploaded with no line yet while no
    segmentation is alive: their message was lost (the broker was down when they were
    uploaded). While one is being segmented the queue is moving, and those behind it are most
    likely in it. A document whose segmentation was taken over claims.MAX_TAKEOVERS times
    fails instead, keeping the lines of its segmented pages."""
    silent = claims.lost(
        Document.Status.SEGMENTING,
        page_seconds(),
        f"its segmentation stopped without a word {claims.MAX_TAKEOVERS + 1} times (a worker "
        "killed while segmenting a page, by its memory limit say)",
    )
    documents = Document.objects.filter(segmentation=Document.Segmentation.KRAKEN)
    alive = documents.filter(status=Document.Status.SEGMENTING).exclude(pk__in=silent)
    if alive.exists():
        return silent
    before = timezone.now() - timedelta(seconds=settings.OCRREVIEW_SWEEP_SECONDS)
    waiting = documents.filter(
        status=Document.Status.UPLOADED, uploaded_at__lt=before, lines__isnull=True
    )
    return silent + list(waiting.values_list("pk", flat=True))


def _page_failed(page: Page, error: str) -> None:
    Page.objects.filter(pk=page.pk).exclude(status=Page.Status.SEGMENTED).update(
        status=Page.Status.FAILED, error=error
    )
