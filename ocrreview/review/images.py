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
from recognition.preprocess import crop_line, open_image

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


def line_crop(line: Line) -> Path:
    """The PNG of one line: its polygon when it has one (neighbouring ink masked), else its
    box. Raises recognition.preprocess.ImageError when the page image is unusable."""
    geometry = json.dumps([line.page.image.name, line.bbox, line.polygon])
    key = hashlib.sha256(geometry.encode()).hexdigest()[:16]
    path = _cache_dir("lines") / f"{line.pk}-{key}.png"
    if not path.exists():
        page = _page_image(line.page)
        if len(line.polygon) >= 3:
            crop = crop_line(page, polygon=[tuple(p) for p in line.polygon])
        else:
            crop = crop_line(page, bbox=tuple(line.bbox))
        _write_atomically(path, crop, format="PNG", optimize=False)
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
