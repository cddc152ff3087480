"""Cutting a batch of lines out of their page scans and preparing them for the model.

It is the part of reading a batch that needs no model, written as one call on plain data (page
files as bytes, line geometry, the model's image processor) so that a pipeline can run it in a
thread beside the model, or in a pool of processes where one core cannot keep a GPU busy.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from recognition.inference import Prepared, prepare_with
from recognition.preprocess import ImageError, Point, crop_line, open_image


@dataclass(frozen=True)
class LineCut:
    """Where a line is: its page (a key of the batch's pages) and its polygon or box, as
    stored: a malformed one fails its line when it is cut."""

    page: Hashable
    bbox: Sequence[int]
    polygon: Sequence[Point] | None = None


@dataclass
class CutBatch:
    """A batch's lines as the model takes them. `prepared` holds the lines that could be cut,
    in batch order, without the ones in `errors` (by position in the batch); `seconds` is the
    time each stage took."""

    prepared: Prepared
    errors: dict[int, str]
    seconds: dict[str, float] = field(default_factory=dict)


class PageCutter:
    """Cuts lines from pages, keeping the last page decoded: lines come sorted by page, and a
    page's lines span batches."""

    def __init__(self) -> None:
        self._page: Hashable = None
        self._image: Image.Image | None = None
        self._error = ""

    def cut_and_prepare(
        self, image_processor: Any, pages: Mapping[Hashable, bytes | str], lines: Sequence[LineCut]
    ) -> CutBatch:
        """`pages` maps each page of the batch to its file's bytes, or to why it could not
        be read."""
        started = time.perf_counter()
        images: list[Image.Image] = []
        errors: dict[int, str] = {}
        for position, line in enumerate(lines):
            try:
                image = self._page_image(line.page, pages[line.page])
                polygon = line.polygon if len(line.polygon or []) >= 3 else None
                x0, y0, x1, y1 = line.bbox
                images.append(crop_line(image, polygon=polygon, bbox=(x0, y0, x1, y1)))
            except (ImageError, TypeError, ValueError) as exc:
                errors[position] = str(exc)
        cut = time.perf_counter()
        prepared = prepare_with(image_processor, images)
        seconds = {"decode+crop": cut - started, "preprocess": time.perf_counter() - cut}
        return CutBatch(prepared, errors, seconds)

    def _page_image(self, key: Hashable, data: bytes | str) -> Image.Image:
        if key != self._page:
            self._page, self._image, self._error = key, None, ""
            try:
                if isinstance(data, str):
                    raise ImageError(data)
                self._image = open_image(data)
            except Exception as exc:
                # A decoder's unforeseen failure too: told once, it would leave the page's
                # other lines an empty reason, which fails no line.
                self._error = f"the page image cannot be read: {exc or type(exc).__name__}"
        if self._image is None:
            raise ImageError(self._error)
        return self._image


# A pool process's cutter and image processor, set once by `start_cutting_process`.
_process_state: tuple[PageCutter, Any] | None = None


def start_cutting_process(image_processor: Any) -> None:
    """The initializer of a pool process that runs `cut_in_process`."""
    global _process_state
    # The pool has a process per core it may use: threads of their own would only contend.
    torch.set_num_threads(1)
    _process_state = (PageCutter(), image_processor)


def cut_in_process(pages: Mapping[Hashable, bytes | str], lines: Sequence[LineCut]) -> CutBatch:
    """`PageCutter.cut_and_prepare` in a pool process started by `start_cutting_process`."""
    assert _process_state is not None, "start the pool with start_cutting_process"
    cutter, image_processor = _process_state
    return cutter.cut_and_prepare(image_processor, pages, lines)
