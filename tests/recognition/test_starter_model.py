"""The starter model shipped in the repository: it loads offline, stays small, and reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from recognition.inference import recognize
from recognition.loading import STARTER_MODEL_DIR, load_model
from recognition.metrics import cer
from recognition.preprocess import open_image
from recognition.starter import read_imagefolder
from recognition.synth.dataset import SyntheticLines
from recognition.synth.fonts import discover_fonts

MAX_BYTES = 30 * 1024 * 1024
# The shipped model scores 0.125 (fp32) and 0.114 (int8) on these lines, the first generation
# 0.30, and a model that does not read (random weights) 1.0 or more.
READS_BELOW_CER = 0.25
HTR_LINES = Path(__file__).resolve().parents[3] / "shared" / "data" / "htr_lines"
# On every fifth typed validation line of htr_lines it scores 0.09; the first generation 0.73.
READS_TYPED_BELOW_CER = 0.2


def test_the_shipped_files_stay_under_30_mb() -> None:
    size = sum(p.stat().st_size for p in STARTER_MODEL_DIR.rglob("*") if p.is_file())
    assert 0 < size <= MAX_BYTES


@pytest.mark.parametrize("quantize", [False, True], ids=["fp32", "int8"])
def test_it_reads_lines_in_fonts_it_never_saw(quantize: bool) -> None:
    """A regression guard for the shipped weights, not their measurement (see MODEL_CARD.md):
    lines in the held-out fonts, which no training step or checkpoint choice ever used."""
    loaded = load_model(
        str(STARTER_MODEL_DIR), device="cpu", quantize=quantize, local_files_only=True
    )
    lines = SyntheticLines(discover_fonts(held_out=True), 24, seed=4242, max_chars=30)
    images, texts = zip(*(lines[i] for i in range(len(lines))), strict=True)
    results = recognize(loaded, list(images), max_new_tokens=48)
    assert [r.error for r in results] == [None] * len(results)
    predictions = [r.best.text if r.best else "" for r in results]
    assert cer(list(texts), predictions) < READS_BELOW_CER


@pytest.mark.skipif(not HTR_LINES.is_dir(), reason="../shared/data/htr_lines is not here")
def test_it_reads_real_typewritten_lines() -> None:
    """A regression guard of what the real lines taught it: typed pages of the validation
    split, never trained on."""
    loaded = load_model(str(STARTER_MODEL_DIR), device="cpu", local_files_only=True)
    rows = [
        row for row in read_imagefolder(HTR_LINES, split="validation") if row["script"] == "typed"
    ][::5]
    results = recognize(loaded, [open_image(row["path"]) for row in rows], max_new_tokens=128)
    predictions = [r.best.text if r.best else "" for r in results]
    assert cer([row["label"] for row in rows], predictions) < READS_TYPED_BELOW_CER
