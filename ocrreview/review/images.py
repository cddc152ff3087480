"""Line crops and browser-friendly page images, made once and kept in storage: decoding a page
scan costs far more than serving a small file, and a reviewer opens each line at least twice
(the editor, then the page view). They are kept in a folder a page, which goes when the page
does."""

import hashlib
import io
import json
import logging
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from ocrreview import storage
from ocrreview.corpus.models import Line, Page
from recognition.preprocess import ImageError, crop_line, open_image

# Formats every browser shows; anything else (TIFF, JPEG 2000, ...) is converted once.
BROWSER_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
CACHE = "review-cache"

logger = logging.getLogger(__name__)


def _page_folder(page_id: int) -> str:
    return f"{CACHE}/pages/{page_id}"


def _encoded(image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **save_args)
    return buffer.getvalue()


def _kept(name: str, data: bytes) -> bool:
    """Whether `data` is now kept under `name` for the next request. A cache that cannot be
    written (a full disk, a bucket refusing writes) must not keep the reviewer from the image:
    the caller serves it from memory, and the next request tries again."""
    try:
        storage.put_bytes(name, data)
    except Exception:
        logger.warning("Could not keep %s in the image cache", name, exc_info=True)
        return False
    return True


def _page_image(page: Page):
    with page.image.open("rb") as source:
        return open_image(source.read())


def _crop_name(line: Line) -> str:
    geometry = json.dumps([line.page.image.name, line.bbox, line.polygon])
    key = hashlib.sha256(geometry.encode()).hexdigest()[:16]
    return f"{_page_folder(line.page_id)}/lines/{line.pk}-{key}.png"


def _crop(page, line: Line):
    if len(line.polygon) >= 3:
        return crop_line(page, polygon=[tuple(p) for p in line.polygon])
    return crop_line(page, bbox=tuple(line.bbox))


def open_line_crop(line: Line) -> File:
    """The PNG of one line: its polygon when it has one (neighbouring ink masked), else its
    box. Raises recognition.preprocess.ImageError when the page image is unusable, OSError
    when it is gone from storage.

    The first crop of a page crops the page's other lines that wait for a reviewer: decoding
    a large scan takes far longer than cutting it, and the reviewer's next line is most
    likely one of them (the accepted and reviewed ones are rarely opened)."""
    name = _crop_name(line)
    if default_storage.exists(name):
        return default_storage.open(name, "rb")
    page = _page_image(line.page)
    crop = _encoded(_crop(page, line), format="PNG")
    if _kept(name, crop):
        waiting = line.page.lines.filter(
            status__in=[Line.Status.NEEDS_REVIEW, Line.Status.IN_REVIEW]
        )
        for sibling in waiting.exclude(pk=line.pk).only("id", "bbox", "polygon"):
            sibling.page = line.page
            target = _crop_name(sibling)
            if default_storage.exists(target):
                continue
            try:
                if not _kept(target, _encoded(_crop(page, sibling), format="PNG")):
                    break
            except ImageError:
                continue  # that line's own request reports its problem
    return File(io.BytesIO(crop), name=name)


def open_page_image(page: Page) -> File:
    """The page scan itself when a browser can show it, otherwise a JPEG rendition. Raises
    ImageError or OSError as open_line_crop does."""
    name = page.image.name
    if Path(name).suffix.lower() not in BROWSER_FORMATS:
        key = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{_page_folder(page.pk)}/page-{key}.jpg"
        if not default_storage.exists(name):
            rendition = _encoded(_page_image(page), format="JPEG", quality=88)
            _kept(name, rendition)
            return File(io.BytesIO(rendition), name=name)
    return default_storage.open(name, "rb")


def forget_page(sender, instance: Page, **kwargs) -> None:
    """Connected to Page's post_delete: a deleted scan's crops and rendition go with it, once
    the deletion commits. A page nobody opened has no folder; a cache that cannot be cleared is
    logged, never a reason to fail the deletion."""
    folder = _page_folder(instance.pk)

    def clear() -> None:
        try:
            storage.delete_directory(folder)
        except FileNotFoundError:
            pass
        except Exception:
            logger.exception("the review cache %s of a deleted page was not cleared", folder)

    transaction.on_commit(clear)
