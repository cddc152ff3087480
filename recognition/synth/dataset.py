"""A lazily rendered, reproducible stream of synthetic lines, with a length curriculum."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import overload

from PIL import Image

from recognition.synth.corpus import sample_text
from recognition.synth.fonts import FontSpec
from recognition.synth.render import render_line


class SyntheticLines(Sequence[tuple[Image.Image, str]]):
    """Item i is always the same image for the same seed, so training can resume mid-stream.

    With `curriculum` > 0 the longest text grows from `start_chars` at item 0 to `max_chars` at
    item `curriculum`: a model first learns to read words, then whole lines.
    """

    def __init__(
        self,
        fonts: Sequence[FontSpec],
        length: int,
        seed: int = 0,
        max_chars: int = 56,
        curriculum: int = 0,
        start_chars: int = 6,
    ) -> None:
        if not fonts:
            raise ValueError(
                "no handwriting fonts found; install the packages in requirements-apt.txt"
            )
        self.length = length
        self.seed = seed
        self.max_chars = max_chars
        self.curriculum = curriculum
        self.start_chars = start_chars
        families: dict[str, list[FontSpec]] = {}
        for font in fonts:
            families.setdefault(font.family, []).append(font)
        self.families = [families[name] for name in sorted(families)]

    def __len__(self) -> int:
        return self.length

    def max_chars_at(self, index: int) -> int:
        if self.curriculum <= 0 or index >= self.curriculum:
            return self.max_chars
        grown = self.start_chars + (self.max_chars - self.start_chars) * index / self.curriculum
        return int(grown)

    def _pick_font(self, text: str, rng: random.Random) -> FontSpec | None:
        # Families first, so a family shipped in many weights is not over-represented.
        upper = text == text.upper()
        candidates = [
            font
            for family in rng.sample(self.families, len(self.families))
            for font in family
            if font.covers(text) and (upper or not font.caps_only)
        ]
        return rng.choice(candidates) if candidates else None

    def item(self, index: int) -> tuple[Image.Image, str]:
        rng = random.Random(self.seed * 1_000_003 + index)
        while True:
            text = sample_text(rng, self.max_chars_at(index))
            font = self._pick_font(text, rng)
            if font is not None and text.strip():
                return render_line(text, font, rng), text

    @overload
    def __getitem__(self, index: int) -> tuple[Image.Image, str]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Image.Image, str]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[Image.Image, str] | list[tuple[Image.Image, str]]:
        if isinstance(index, slice):
            return [self.item(i) for i in range(*index.indices(self.length))]
        if not -self.length <= index < self.length:
            raise IndexError(index)
        return self.item(index % self.length)


def write_imagefolder(lines: Sequence[tuple[Image.Image, str]], out_dir: Path) -> Path:
    """Write PNGs and a `metadata.jsonl` with `file_name` and `text`, the Hugging Face layout."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = out_dir / "metadata.jsonl"
    with metadata.open("w", encoding="utf-8") as rows:
        for i in range(len(lines)):
            image, text = lines[i]
            file_name = f"{i:06d}.png"
            image.save(out_dir / file_name)
            rows.write(
                json.dumps({"file_name": file_name, "text": text}, ensure_ascii=False) + "\n"
            )
    return metadata
