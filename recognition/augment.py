"""Random variations of real line images, so a few hundred corrected lines teach more than one
fixed picture each: another writer slants, stretches, presses harder or scans paler."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import overload

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from recognition.training import Sample, open_rgb


def augment_line(image: Image.Image, rng: random.Random) -> Image.Image:
    """An RGB variant of `image`; the text stays whole because only the geometry around it and
    the rendering of the strokes change."""
    image = image.convert("RGB")
    width, height = image.size
    paper = _paper_colour(image)
    shear = rng.uniform(-0.25, 0.25)
    extra = int(abs(shear) * height)
    image = image.transform(
        (width + extra, height),
        Image.Transform.AFFINE,
        (1, shear, -extra if shear > 0 else 0, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
        fillcolor=paper,
    )
    image = image.rotate(
        rng.uniform(-2, 2), Image.Resampling.BILINEAR, expand=True, fillcolor=paper
    )
    stretch = rng.uniform(0.8, 1.2)
    image = image.resize((max(1, int(image.width * stretch)), image.height))
    pressure = rng.random()
    if pressure < 0.2:
        image = image.filter(ImageFilter.MinFilter(3))  # darker strokes spread: thicker
    elif pressure > 0.85:
        image = image.filter(ImageFilter.MaxFilter(3))
    if rng.random() < 0.4:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.3))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    if rng.random() < 0.3:
        image = ImageOps.grayscale(image).convert("RGB")
    return image


def _paper_colour(image: Image.Image) -> tuple[int, int, int]:
    """The brightest common colour: the page, which new margins must match, not black."""
    histogram = image.convert("L").histogram()
    total, seen = sum(histogram), 0
    for level in range(255, -1, -1):
        seen += histogram[level]
        if seen >= total * 0.3:
            return (level, level, level)
    return (255, 255, 255)


class AugmentedLines(Sequence[Sample]):
    """`copies` variants of every sample; item i is always the same variant for the same seed,
    so a resumed training run sees the same data."""

    def __init__(self, samples: Sequence[Sample], copies: int, seed: int = 0) -> None:
        self.samples = samples
        self.copies = copies
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples) * self.copies

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        image, text = self.samples[index % len(self.samples)]
        if index < len(self.samples):
            return image, text  # the first copy is the line as scanned
        rng = random.Random(self.seed * 1_000_003 + index)
        return augment_line(open_rgb(image), rng), text
