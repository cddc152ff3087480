"""The synthetic handwriting renderer: fonts, text, curriculum, determinism, imagefolder output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from recognition.synth import HELD_OUT_FAMILIES, SyntheticLines, discover_fonts, write_imagefolder
from recognition.synth.cli import main
from recognition.synth.corpus import money, prose_words, sample_text
from recognition.synth.fonts import FONTSOURCE_DIR, PRINTED_FAMILIES

pytestmark = pytest.mark.skipif(
    not discover_fonts(), reason="handwriting fonts from requirements-apt.txt are not installed"
)


def test_held_out_fonts_are_whole_families_never_used_for_training() -> None:
    train_families = {f.family for f in discover_fonts()}
    held_out_families = {f.family for f in discover_fonts(held_out=True)}
    assert len(held_out_families) >= 2
    assert held_out_families <= HELD_OUT_FAMILIES
    assert not train_families & held_out_families


def test_sample_text_stays_within_the_length_limit() -> None:
    rng = random.Random(3)
    for limit in (1, 5, 12, 56):
        for _ in range(50):
            text = sample_text(rng, limit)
            assert 0 < len(text) <= limit


def test_archival_sums_use_period_notation() -> None:
    rng = random.Random(0)
    sums = {money(rng) for _ in range(200)}
    assert any(s.startswith("£") and "s " in s and s.endswith("d") for s in sums)
    assert any(s.startswith("$") for s in sums)


def test_corpus_is_the_projects_own_text() -> None:
    assert len(prose_words()) > 500


def test_items_are_reproducible_and_follow_the_curriculum() -> None:
    lines = SyntheticLines(discover_fonts(), 1000, seed=5, max_chars=40, curriculum=500)
    image, text = lines[7]
    again, same_text = lines[7]
    assert text == same_text
    assert np.array_equal(np.asarray(image), np.asarray(again))
    assert all(len(lines[i][1]) <= 6 for i in range(5))
    assert lines.max_chars_at(999) == 40


def test_capitals_only_fonts_write_only_upper_case_text() -> None:
    caps = {f.path for f in discover_fonts() if f.caps_only}
    lines = SyntheticLines(discover_fonts(), 400, seed=1)
    for i in range(400):
        rng = random.Random(i)
        font = lines._pick_font("Dear sir", rng)
        assert font is not None and font.path not in caps


def test_rendered_lines_have_ink_on_paper() -> None:
    image, _ = SyntheticLines(discover_fonts(held_out=True), 10, seed=2)[3]
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert image.width > image.height
    # Dark ink strokes on light paper.
    assert pixels.max() - pixels.min() > 60
    assert np.median(pixels) > pixels.min() + 40


def test_imagefolder_and_cli_write_metadata(tmp_path: Path) -> None:
    lines = SyntheticLines(discover_fonts(), 3, seed=0)
    metadata = write_imagefolder(lines, tmp_path / "direct")
    rows = [json.loads(r) for r in metadata.read_text().splitlines()]
    assert [r["text"] for r in rows] == [lines[i][1] for i in range(3)]
    assert Image.open(tmp_path / "direct" / rows[0]["file_name"]).size[0] > 0

    assert main(["2", str(tmp_path / "cli"), "--held-out", "--seed", "4"]) == 0
    assert len((tmp_path / "cli" / "metadata.jsonl").read_text().splitlines()) == 2


def _woff_family(root: Path, name: str, source: Path) -> None:
    """A Fontsource package layout: every subset and weight, in WOFF and WOFF2."""
    files = root / "@fontsource" / name / "files"
    files.mkdir(parents=True)
    font = TTFont(source)
    font.flavor = "woff"
    for subset in ("latin", "latin-ext", "cyrillic"):
        font.save(files / f"{name}-{subset}-400-normal.woff")
    font.save(files / f"{name}-latin-700-italic.woff")
    (files / f"{name}-latin-400-normal.woff2").write_bytes(b"needs brotli, never read")


def test_fontsource_packages_give_one_family_each_from_their_latin_woff_files(
    tmp_path: Path,
) -> None:
    source = next(f.path for f in discover_fonts() if not f.caps_only)
    _woff_family(tmp_path, "homemade-apple", source)
    _woff_family(tmp_path, "caveat-brush", source)

    fonts = discover_fonts(dirs=[tmp_path])

    assert sorted(f.path.name for f in fonts) == [
        "caveat-brush-latin-400-normal.woff",
        "caveat-brush-latin-700-italic.woff",
        "homemade-apple-latin-400-normal.woff",
        "homemade-apple-latin-700-italic.woff",
    ]
    assert {f.family for f in fonts} == {"homemade-apple", "caveat-brush"}
    image, text = SyntheticLines(fonts, 1, seed=0)[0]
    assert text and np.asarray(image.convert("L")).min() < 128


@pytest.mark.skipif(not FONTSOURCE_DIR.is_dir(), reason="npm fonts not installed (no npm)")
def test_the_setup_installs_over_a_hundred_training_hands() -> None:
    assert len({f.family for f in discover_fonts()}) > 100


@pytest.mark.skipif(not FONTSOURCE_DIR.is_dir(), reason="npm fonts not installed (no npm)")
def test_printed_faces_are_apart_from_the_hands() -> None:
    printed = {f.family for f in discover_fonts(printed=True)}
    hands = {f.family for f in discover_fonts()}
    assert printed == set(PRINTED_FAMILIES)
    assert not printed & hands
    assert {f.family for f in discover_fonts(printed=None)} == printed | hands
