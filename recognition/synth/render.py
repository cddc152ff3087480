"""Render a text line in a handwriting font and degrade it the way scanned pages are degraded."""

from __future__ import annotations

import io
import math
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy.ndimage import map_coordinates

from recognition.synth.fonts import FontSpec

# Real line crops are at most 128 px high; rendering near that size keeps downscaling similar.
FONT_SIZES = (30, 56)


@lru_cache(maxsize=256)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _ink_mask(text: str, font: ImageFont.FreeTypeFont, rng: random.Random) -> Image.Image:
    """Draw character by character so letter spacing and the baseline can wander."""
    size = font.size
    spacing = rng.uniform(-0.06, 0.12) * size
    drift_amplitude = rng.uniform(0.0, 0.08) * size
    drift_period = rng.uniform(4.0, 30.0)
    drift_phase = rng.uniform(0, 2 * math.pi)
    width = int(sum(font.getlength(ch) for ch in text) + abs(spacing) * len(text) + 2 * size)
    mask = Image.new("L", (max(width, 1), int(size) * 3), 0)
    draw = ImageDraw.Draw(mask)
    stroke = 1 if rng.random() < 0.2 else 0
    x = float(size) / 2
    for i, ch in enumerate(text):
        dy = drift_amplitude * math.sin(drift_phase + 2 * math.pi * i / drift_period)
        draw.text((x, size + dy), ch, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
        x += font.getlength(ch) + spacing
    return mask


def _shear(mask: Image.Image, shear: float) -> Image.Image:
    width, height = mask.size
    extra = int(abs(shear) * height)
    offset = -extra if shear > 0 else 0
    return mask.transform(
        (width + extra, height),
        Image.Transform.AFFINE,
        (1, shear, offset, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )


def _elastic(mask: np.ndarray, rng: random.Random, strength: float) -> np.ndarray:
    """Smooth random displacement: a coarse noise grid upsampled, so strokes bend, not shatter."""
    height, width = mask.shape
    gen = np.random.default_rng(rng.getrandbits(32))
    grid = (max(2, height // 24), max(2, width // 24))
    fields = []
    for _ in range(2):
        coarse = gen.uniform(-1, 1, grid).astype(np.float32)
        image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        fields.append(np.asarray(image) * strength)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    warped = map_coordinates(mask, [rows + fields[0], cols + fields[1]], order=1, mode="constant")
    return warped.astype(np.float32)


def _crop(mask: Image.Image, rng: random.Random) -> Image.Image:
    bbox = mask.getbbox() or (0, 0, 1, 1)
    size = mask.height / 3
    pad_x = int(rng.uniform(0.05, 0.6) * size)
    pad_top, pad_bottom = (int(rng.uniform(0.05, 0.45) * size) for _ in range(2))
    left, top = max(0, bbox[0] - pad_x), max(0, bbox[1] - pad_top)
    right = min(mask.width, bbox[2] + pad_x)
    bottom = min(mask.height, bbox[3] + pad_bottom)
    return mask.crop((left, top, right, bottom))


def _paper(height: int, width: int, rng: random.Random) -> np.ndarray:
    gen = np.random.default_rng(rng.getrandbits(32))
    base = np.array([rng.uniform(170, 250)] * 3) + np.array(
        [rng.uniform(0, 12), 0, -rng.uniform(0, 18)]
    )
    coarse = gen.normal(0, rng.uniform(2, 14), (max(2, height // 16), max(2, width // 16)))
    stains = Image.fromarray(coarse.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = gen.normal(0, rng.uniform(1, 7), (height, width))
    texture = np.asarray(stains) + grain
    return np.clip(base[None, None, :] + texture[:, :, None], 0, 255)


def _ink_colour(rng: random.Random) -> np.ndarray:
    colours = [(20, 20, 25), (45, 30, 20), (30, 35, 70), (70, 55, 40), (60, 60, 60)]
    r, g, b = rng.choice(colours)
    return np.array([r, g, b], dtype=np.float32) + rng.uniform(-15, 15)


def _neighbour_strokes(mask: np.ndarray, font: FontSpec, rng: random.Random) -> np.ndarray:
    """Crops of real lines catch descenders and ascenders of the lines above and below."""
    height, width = mask.shape
    out = mask.copy()
    gen = np.random.default_rng(rng.getrandbits(32))
    for edge in ("top", "bottom"):
        if rng.random() < 0.3:
            depth = max(1, int(height * rng.uniform(0.05, 0.2)))
            for _ in range(gen.integers(1, 6)):
                x0 = int(gen.integers(0, max(1, width - 10)))
                length = int(gen.integers(3, max(4, depth + 10)))
                xs = np.clip(x0 + np.arange(length) // 3, 0, width - 1)
                ys = np.arange(length) % depth
                ys = ys if edge == "top" else height - 1 - ys
                out[ys, xs] = np.maximum(out[ys, xs], 255.0)
    return out


def render_line(text: str, font: FontSpec, rng: random.Random) -> Image.Image:
    """An RGB or grayscale line image of `text` written in `font`, with random degradations."""
    size = rng.randint(*FONT_SIZES)
    mask_image = _ink_mask(text, _font(font.path, size), rng)
    if rng.random() < 0.8:
        mask_image = _shear(mask_image, rng.uniform(-0.35, 0.25))
    mask_image = _crop(mask_image, rng)
    thickness = rng.random()
    if thickness < 0.2:
        mask_image = mask_image.filter(ImageFilter.MaxFilter(3))
    elif thickness > 0.9 and size > 40:
        mask_image = mask_image.filter(ImageFilter.MinFilter(3))
    mask = np.asarray(mask_image, dtype=np.float32)
    if rng.random() < 0.7:
        mask = _elastic(mask, rng, rng.uniform(0.5, 2.5))
    mask = _neighbour_strokes(mask, font, rng)
    alpha = (mask / 255.0 * rng.uniform(0.7, 1.0))[:, :, None]
    height, width = mask.shape
    pixels = _paper(height, width, rng) * (1 - alpha) + _ink_colour(rng)[None, None, :] * alpha
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    if rng.random() < 0.6:
        image = image.convert("L")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(25, 90))
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    if rng.random() < 0.5:
        # Real crops are stored at most 128 px high and often smaller.
        scale = rng.uniform(0.5, 1.0)
        image = image.resize((max(1, int(width * scale)), max(1, int(height * scale))))
    return image
