"""Segmentation's bounds on pages kraken handles badly: a blank page is not sent to kraken at
all (blla found up to 200 "lines" of scanner noise on one, in minutes and 4 GB), and a page
much wider than tall is padded with paper before kraken scales it to its fixed height."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.segmentation import (
    MAX_SEGMENTATION_ASPECT,
    bounded_for_segmentation,
    do_segment_document,
    has_ink,
)
from tests import factories

PAPER = 245


def scanned_blank(width: int = 800, height: int = 300, seed: int = 0) -> Image.Image:
    noise = np.random.default_rng(seed).normal(PAPER, 4, (height, width))
    return Image.fromarray(noise.clip(0, 255).astype("uint8")).convert("RGB")


def test_white_and_scanned_blank_pages_have_no_ink():
    assert not has_ink(Image.new("RGB", (800, 300), "white"))
    assert not has_ink(scanned_blank())


def test_one_word_or_faint_pencil_is_ink():
    word = scanned_blank()
    ImageDraw.Draw(word).text((40, 140), "Received", fill=(20, 20, 20))
    pencil = scanned_blank(seed=1)
    ImageDraw.Draw(pencil).line([(100, 150), (400, 152)], fill=(PAPER - 60,) * 3, width=2)
    assert has_ink(word)
    assert has_ink(pencil)


def test_a_card_photographed_on_a_dark_background_is_ink():
    """An index card shot on black velvet, as archives photograph them: the median is the
    background, and the card was taken for an empty page with no lines."""
    for background in (15, 60):
        frame = Image.new("RGB", (1200, 1600), (background,) * 3)
        frame.paste(scanned_blank(600, 800), (300, 400))
        ImageDraw.Draw(frame).text((340, 600), "Received", fill=(20, 20, 20))
        assert has_ink(frame)


def test_a_wide_page_is_padded_below_with_paper_and_a_page_is_left_alone():
    strip = scanned_blank()
    ImageDraw.Draw(strip).text((40, 140), "Received", fill=(20, 20, 20))

    bounded, factor = bounded_for_segmentation(strip)

    assert factor == 1
    assert bounded.width == strip.width
    assert bounded.width / bounded.height <= MAX_SEGMENTATION_ASPECT
    assert np.array_equal(np.asarray(bounded)[: strip.height], np.asarray(strip))
    below = np.asarray(bounded.convert("L"))[strip.height :]
    assert abs(int(np.median(below)) - PAPER) <= 1 and below.std() == 0
    portrait = scanned_blank(600, 800)
    assert bounded_for_segmentation(portrait) == (portrait, 1)


def test_a_wide_page_that_paper_would_take_past_the_pixel_limit_is_reduced_first():
    """A scroll as large as a page may be (30,000 x 4,000) was padded to 600 MP, gigabytes in
    the worker and again in kraken's child. The factor maps kraken's coordinates back."""
    strip = scanned_blank(3000, 400)
    ImageDraw.Draw(strip).rectangle([(2400, 200), (2700, 240)], fill=(20, 20, 20))

    bounded, factor = bounded_for_segmentation(strip, max_pixels=3000 * 400)

    assert factor == 3
    assert bounded.width * bounded.height <= 3000 * 400
    assert bounded.width / bounded.height <= MAX_SEGMENTATION_ASPECT
    ink = np.argwhere(np.asarray(bounded.convert("L")) < 100)
    (top, left), (bottom, right) = ink.min(axis=0) * factor, ink.max(axis=0) * factor
    assert abs(left - 2400) <= factor and abs(right - 2700) <= factor
    assert abs(top - 200) <= factor and abs(bottom - 240) <= factor


@pytest.mark.django_db
def test_a_blank_page_is_segmented_into_no_lines_and_its_document_is_ready(letters):
    document = factories.make_document(letters)
    factories.make_page(document, width=800, height=300)  # white

    do_segment_document(document.pk, "test")

    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert document.pages.get().status == Page.Status.SEGMENTED
    assert not document.lines.exists()
