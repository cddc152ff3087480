"""Line crops and browser-friendly page images, made once and kept on disk: decoding a page
scan costs far more than serving a small file, and a reviewer opens each line at least twice
(the editor, then the page view)."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

from django.conf import settings

from ocrreview.corpus.models import Line, Page
from recognition.preprocess import ImageError, crop_line, open_image

# Formats every browser shows; anything else (TIFF, JPEG 2000, ...) is converted once.
BROWSER_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".gif"}


def _cache_dir(kind: str) -> Path:
    path = Path(settings.MEDIA_ROOT) / "review-cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_atomically(path: Path, image, **save_args) -> None:
    # Two requests for the same crop may race; rename makes the last one win cleanly.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "wb") as out:
        image.save(out, **save_args)
    os.replace(tmp, path)


def _page_image(page: Page):
    with page.image.open("rb") as source:
        return open_image(source.read())


def _crop_path(line: Line) -> Path:
    geometry = json.dumps([line.page.image.name, line.bbox, line.polygon])
    key = hashlib.sha256(geometry.encode()).hexdigest()[:16]
    return _cache_dir("lines") / f"{line.pk}-{key}.png"


def _crop(page, line: Line):
    if len(line.polygon) >= 3:
        return crop_line(page, polygon=[tuple(p) for p in line.polygon])
    return crop_line(page, bbox=tuple(line.bbox))


def line_crop(line: Line) -> Path:
    """The PNG of one line: its polygon when it has one (neighbouring ink masked), else its
    box. Raises recognition.preprocess.ImageError when the page image is unusable.

    The first crop of a page crops all its lines: decoding a large scan takes far longer
    than cutting it, and the reviewer's next line is most likely on the same page."""
    path = _crop_path(line)
    if path.exists():
        return path
    page = _page_image(line.page)
    _write_atomically(path, _crop(page, line), format="PNG")
    for sibling in line.page.lines.exclude(pk=line.pk).only("id", "bbox", "polygon"):
        sibling.page = line.page
        target = _crop_path(sibling)
        if target.exists():
            continue
        try:
            _write_atomically(target, _crop(page, sibling), format="PNG")
        except ImageError:
            continue  # that line's own request reports its problem
    return path


def page_image(page: Page) -> Path:
    """The page scan itself when a browser can show it, otherwise a JPEG rendition."""
    name = page.image.name
    if Path(name).suffix.lower() in BROWSER_FORMATS:
        return Path(page.image.path)
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    path = _cache_dir("pages") / f"{page.pk}-{key}.jpg"
    if not path.exists():
        _write_atomically(path, _page_image(page), format="JPEG", quality=88)
    return path
