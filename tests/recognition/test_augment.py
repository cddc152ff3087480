"""Augmented variants of real lines for fine-tuning."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from recognition.augment import AugmentedLines, augment_line


def written_line() -> Image.Image:
    image = Image.new("L", (240, 48), 230)
    ImageDraw.Draw(image).text((10, 10), "Dear Madam", fill=20, font_size=24)
    return image


def test_a_variant_keeps_the_paper_colour_in_new_margins_and_the_ink() -> None:
    for seed in range(20):
        variant = np.asarray(augment_line(written_line(), random.Random(seed)).convert("L"))
        corners = [variant[0, 0], variant[0, -1], variant[-1, 0], variant[-1, -1]]
        assert min(corners) > 120, seed  # never black wedges from shear or rotation
        assert variant.min() < 110, seed  # the strokes are still there


def test_the_first_copy_is_the_scan_and_the_others_are_reproducible_variants() -> None:
    line = written_line()
    lines = AugmentedLines([(line, "Dear Madam"), (line, "Sir")], copies=3, seed=1)
    assert len(lines) == 6
    assert [text for _, text in lines] == ["Dear Madam", "Sir"] * 3
    assert lines[0][0] is line
    first, again = lines[4][0], AugmentedLines(lines.samples, 3, seed=1)[4][0]
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(lines[2][0]), np.asarray(lines[4][0]))
