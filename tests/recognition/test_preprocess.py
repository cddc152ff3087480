import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognition.preprocess import (
    ImageError,
    bounded_aspect,
    crop_line,
    open_image,
    paper_colour,
    to_rgb,
)


def _encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (60, 20), "white")
    image.paste((0, 0, 0), (0, 0, 10, 20))  # dark band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    result = open_image(_encode(image, "JPEG", exif=exif))
    assert result.size == (20, 60)
    assert result.mode == "RGB"
    top = np.asarray(result)[:10].mean()
    bottom = np.asarray(result)[-10:].mean()
    assert top < 100 < bottom  # the left band is now at the top


def test_palette_with_transparency_becomes_paper() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))
    result = open_image(_encode(image, transparency=0))
    pixels = np.asarray(result)
    assert tuple(pixels[0, 0]) == (200, 0, 0)
    assert tuple(pixels[0, 9]) == (255, 255, 255)  # the transparent half


@pytest.mark.parametrize("mode, key, ink", [("L", 0, 60), ("RGB", (0, 0, 0), (60, 60, 60))])
def test_a_key_colour_marked_transparent_becomes_paper(mode, key, ink) -> None:
    """Optimisers turn a mask of transparent pixels into one colour marked transparent, often
    black: the line was read as dark ink on black."""
    image = Image.new(mode, (100, 20), key)
    image.paste(ink, (10, 5, 90, 15))
    pixels = np.asarray(open_image(_encode(image, transparency=key)))
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[10, 50]) == (60, 60, 60)


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    values = np.linspace(0, 65535, 256 * 4, dtype=np.uint16).reshape(4, 256)
    result = open_image(_encode(Image.fromarray(values)))
    pixels = np.asarray(result)[..., 0]
    assert pixels.min() == 0 and pixels.max() == 255
    assert 100 < pixels.mean() < 155  # clipping would make almost all of it 255


@pytest.mark.parametrize(
    "dtype, top",
    [(np.uint16, 2**12 - 1), (np.uint16, 2**10 - 1), (np.int32, 2**20 - 1)],
    ids=["12-bit-in-16", "10-bit-in-16", "20-bit-in-32"],
)
def test_fewer_bits_in_a_wide_container_use_the_whole_grey_range(dtype, top: int) -> None:
    image = Image.fromarray(np.linspace(0, top, 256).astype(dtype).reshape(1, 256))
    assert image.mode in ("I;16", "I")
    pixels = np.asarray(to_rgb(image))[0, :, 0]
    assert (pixels[0], pixels[-1]) == (0, 255)
    assert 120 <= pixels[128] <= 135


def test_alpha_is_flattened_onto_white() -> None:
    image = Image.new("LA", (4, 4), (0, 0))
    image.putpixel((0, 0), (30, 255))
    pixels = np.asarray(open_image(_encode(image)))
    assert tuple(pixels[0, 0]) == (30, 30, 30)
    assert tuple(pixels[3, 3]) == (255, 255, 255)


def test_grayscale_and_bilevel_become_rgb() -> None:
    for mode in ("L", "1", "CMYK"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        assert open_image(_encode(Image.new(mode, (5, 3)), fmt)).mode == "RGB"


def test_reads_paths(tmp_path: Path) -> None:
    path = tmp_path / "line.png"
    path.write_bytes(_encode(Image.new("RGB", (7, 3))))
    assert open_image(path).size == (7, 3)
    assert open_image(str(path)).size == (7, 3)


_NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (_encode(Image.new("RGB", (200, 200), "red"))[:120], "corrupt or truncated"),
        # Formats whose header Pillow reads at open, cut short: they fail before any pixel.
        (_encode(_NOISE, "JPEG")[:64], "corrupt or truncated"),
        (_encode(_NOISE, "WEBP")[:64], "corrupt or truncated"),
        (_encode(_NOISE, "JPEG2000")[:40], "corrupt or truncated"),
    ],
    ids=["empty", "text", "cut-png", "cut-jpeg-header", "cut-webp-header", "cut-jpeg2000-header"],
)
def test_bad_bytes_give_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        open_image(data)


def test_missing_file_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        open_image(tmp_path / "nope.png")


def _png_claiming_size(width: int, height: int) -> bytes:
    """A real PNG whose header claims a huge size: a decompression bomb."""
    data = bytearray(_encode(Image.new("L", (1, 1))))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header[4:]
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize("side", [12_000, 100_000])  # over our limit; over Pillow's
def test_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    with pytest.raises(ImageError, match="too large"):
        open_image(_png_claiming_size(side, side))


def _page() -> Image.Image:
    page = Image.new("RGB", (100, 60), (230, 220, 200))  # yellowed paper
    page.paste((10, 10, 10), (0, 0, 100, 10))  # ink of the line above
    page.paste((20, 20, 20), (40, 25, 60, 35))  # ink of our line
    return page


def test_crop_by_bbox_clips_to_the_page() -> None:
    crop = crop_line(_page(), bbox=(90, 50, 150, 90))
    assert crop.size == (10, 10)


def test_crop_by_polygon_fills_the_outside_with_paper() -> None:
    triangle = [(0, 0), (99, 30), (0, 59)]
    crop = crop_line(_page(), polygon=triangle)
    assert crop.size == (100, 60)
    pixels = np.asarray(crop)
    assert tuple(pixels[2, 90]) == (230, 220, 200)  # outside: paper, not the ink above
    assert tuple(pixels[5, 0]) == (10, 10, 10)  # inside keeps its ink
    assert tuple(pixels[30, 45]) == (20, 20, 20)


def test_paper_colour_is_the_median() -> None:
    assert paper_colour(_page()) == (230, 220, 200)


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (7, 3), (1560, 51)])
def test_paper_colour_equals_numpys_median(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(size[0])
    for levels in (3, 256):  # few levels: ties at the middle; many: the two middle values differ
        pixels = rng.integers(0, levels, size=(size[1], size[0], 3), dtype=np.uint8)
        expected = tuple(int(v) for v in np.median(pixels.reshape(-1, 3), axis=0))
        assert paper_colour(Image.fromarray(pixels)) == expected


def test_degenerate_regions_are_errors() -> None:
    with pytest.raises(ImageError, match="at least 3 points"):
        crop_line(_page(), polygon=[(0, 0), (5, 5)])
    with pytest.raises(ImageError, match="outside"):
        crop_line(_page(), bbox=(200, 200, 300, 300))
    with pytest.raises(ImageError, match="polygon or a bbox"):
        crop_line(_page())


@pytest.mark.parametrize(
    "size, padded",
    [((6400, 10), (6400, 100)), ((10, 400), (50, 400)), ((640, 40), (640, 40))],
    ids=["long-sliver", "tall-sliver", "a-line-untouched"],
)
def test_slivers_are_padded_with_their_paper(size, padded) -> None:
    image = Image.new("RGB", size, (230, 220, 200))
    bounded = bounded_aspect(image)
    assert bounded.size == padded
    assert bounded.getpixel((0, 0)) == (230, 220, 200)


def test_a_large_sixteen_bit_scan_is_scaled_a_band_at_a_time() -> None:
    """A 600 dpi 16-bit master is scaled in the web server's upload thread: in float64 as a
    whole it took 32 bytes a pixel."""
    image = Image.fromarray(np.full((3000, 2000), 40_000, dtype=np.uint16))
    tracemalloc.start()
    try:
        gray = to_rgb(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.asarray(gray)[0, 0].tolist() == [156, 156, 156]
    assert peak / (3000 * 2000) < 6  # the array itself (2), the 8-bit copy (1), one band
