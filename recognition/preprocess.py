"""Turning uploaded files into clean RGB line images.

Only decoding and geometry live here; pixel normalisation is always left to the
model's own image processor so it can never drift from what the model was
trained with.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

# Larger than any sane page scan (A3 at 600 dpi is ~70 Mpx) but far below what
# would exhaust a worker's memory once decoded.
MAX_PIXELS = 120_000_000
# Transparent areas of scans and exports are background, so they become paper.
PAPER_WHITE = (255, 255, 255)

Point = tuple[int, int]
BBox = tuple[int, int, int, int]


class ImageError(ValueError):
    """An image that cannot be used, with a message fit to show to a user."""


def open_image(data: bytes | str | Path) -> Image.Image:
    """Decode image bytes or a file into an upright RGB image.

    Raises ImageError for empty, corrupt, truncated, unsupported or oversized
    input.
    """
    raw = _read_bytes(data)
    if not raw:
        raise ImageError("the image is empty (0 bytes)")
    with warnings.catch_warnings():
        # Our own MAX_PIXELS check replaces Pillow's warning-level limit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(raw))
        except UnidentifiedImageError as exc:
            raise ImageError("the file is not an image in a supported format") from exc
        except Image.DecompressionBombError as exc:
            raise ImageError(f"the image is too large to process ({exc})") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            # Pillow reads a JPEG, WebP, ICO or JPEG 2000 header at open: a cut or damaged one
            # fails there ("Truncated File Read"), before any pixel is decoded.
            raise ImageError(f"the image is corrupt or truncated ({exc})") from exc
        _check_size(image.size)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"the image is corrupt or truncated ({exc})") from exc
    return to_rgb(_exif_upright(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, flattening transparency onto paper."""
    _check_size(image.size)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    # A key colour (PNG's tRNS, as optimisers write a mask of transparent pixels) is
    # transparency too: those pixels are often black.
    if image.mode == "P" or (image.mode in ("1", "L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, PAPER_WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def crop_line(
    page: Image.Image,
    *,
    polygon: Sequence[Point] | None = None,
    bbox: BBox | None = None,
) -> Image.Image:
    """Cut one text line out of a page.

    With a polygon, the crop is the polygon's bounding box and everything outside
    the polygon is filled with the paper colour, so ink from neighbouring lines
    does not leak in. With only a bbox ``(left, top, right, bottom)``, the box is
    cut as is. Coordinates are clipped to the page.
    """
    page = to_rgb(page)
    if polygon is not None:
        if len(polygon) < 3:
            raise ImageError(f"a line polygon needs at least 3 points, got {len(polygon)}")
        xs = [int(x) for x, _ in polygon]
        ys = [int(y) for _, y in polygon]
        box = _clip_box((min(xs), min(ys), max(xs) + 1, max(ys) + 1), page.size)
        crop = page.crop(box)
        shifted = [(x - box[0], y - box[1]) for x, y in zip(xs, ys, strict=True)]
        mask = Image.new("L", crop.size, 0)
        ImageDraw.Draw(mask).polygon(shifted, fill=255, outline=255)
        background = Image.new("RGB", crop.size, paper_colour(crop))
        return Image.composite(crop, background, mask)
    if bbox is not None:
        return page.crop(_clip_box(bbox, page.size))
    raise ImageError("crop_line needs a polygon or a bbox")


# Beyond these width:height ratios a crop (a sliver from a bad polygon) is padded with paper:
# image processors that keep the aspect ratio, like the starter's, would shrink it to zero
# pixels on one side and fail. Real lines stay well inside them.
MAX_ASPECT, MIN_ASPECT = 64.0, 1 / 8


def bounded_aspect(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width > height * MAX_ASPECT:
        size = (width, math.ceil(width / MAX_ASPECT))
    elif width < height * MIN_ASPECT:
        size = (math.ceil(height * MIN_ASPECT), height)
    else:
        return image
    canvas = Image.new("RGB", size, paper_colour(image))
    canvas.paste(image.convert("RGB"), ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


def paper_colour(image: Image.Image) -> tuple[int, int, int]:
    """Estimate the paper colour as the per-channel median.

    Ink covers a small fraction of a line's area, so the median lands on paper
    even for yellowed or tinted documents, where pure white would show as a
    hard edge around the polygon.
    """
    # From Pillow's histogram rather than np.median, which sorts every pixel: a millisecond a
    # line crop, as much as the rest of cutting it out.
    histogram = np.asarray(to_rgb(image).histogram()).reshape(3, 256)
    count = image.width * image.height
    ranks = [(count - 1) // 2, count // 2]  # the middle two; the same one for an odd count
    r, g, b = (
        int(np.searchsorted(np.cumsum(channel), ranks, side="right").sum()) // 2
        for channel in histogram
    )
    return r, g, b


def _read_bytes(data: bytes | str | Path) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    try:
        return Path(data).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image file {str(data)!r}: {exc.strerror}") from exc


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"the image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"the image is too large to process ({width}x{height} pixels; "
            f"the limit is {MAX_PIXELS:,} pixels)"
        )


def _exif_upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError):
        # A broken EXIF block should not cost the user the whole image.
        return image


SCALING_ROWS = 256


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer or float grayscale to 8 bit by value range: the range of the
    fewest bits that hold the largest value, since scanners write 10, 12 or 14 bits into
    16-bit files (a fixed 16-bit range made a 12-bit scan nearly black).

    Pillow's own ``convert("L")`` clips instead of scaling, which turns a
    16-bit scan almost entirely white.
    """
    values = np.asarray(image)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        factor = 255.0
    elif top > 255:
        factor = 255.0 / (2 ** math.ceil(math.log2(top + 1)) - 1)
    else:
        factor = 1.0
    # A band of rows at a time: the whole page in float64 took 32 bytes a pixel, some 4 GB for
    # a 600 dpi A3 master, in the web server's upload thread.
    gray = np.empty(values.shape, dtype=np.uint8)
    for start in range(0, values.shape[0], SCALING_ROWS):
        band = values[start : start + SCALING_ROWS].astype(np.float64) * factor
        gray[start : start + SCALING_ROWS] = np.clip(np.rint(band), 0, 255)
    return Image.fromarray(gray)


def _clip_box(box: BBox, size: tuple[int, int]) -> BBox:
    left, top, right, bottom = (int(v) for v in box)
    width, height = size
    clipped = (max(0, left), max(0, top), min(width, right), min(height, bottom))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ImageError(f"the line region {box} lies outside the {width}x{height} page")
    return clipped
