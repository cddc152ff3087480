"""Measuring and calibrating model versions with the recognition engine."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

from ocrreview import storage
from ocrreview.corpus.models import Line, ModelVersion
from ocrreview.training.exports import line_image
from ocrreview.transcription.services import batch_size_on
from recognition import calibration, metrics
from recognition.inference import recognize
from recognition.loading import (
    LoadedModel,
    ModelLoadError,
    fill_special_token_ids,
    load_model,
    resolve_offline,
)
from recognition.preprocess import open_image

logger = logging.getLogger(__name__)


@dataclass
class TrainingBundle:
    """What ``recognition.training.train`` needs of a base model."""

    model: VisionEncoderDecoderModel
    tokenizer: Any
    image_processor: Any


def load_for_training(version: ModelVersion) -> TrainingBundle:
    """The base model as its checkpoint has it, in float32 (mixed precision keeps float32
    master weights), on the GPU when there is one. Not ``load_model``: that one prepares a
    model for inference only (bf16 on a GPU, beam-shared projections that would be saved
    under other names)."""
    options: dict[str, Any] = {
        "revision": version.revision or None,
        "local_files_only": resolve_offline(None),
    }
    try:
        source = storage.resolve_model_source(version.source)
        # Given, not the checkpoint's: transformers now loads fp16 weights (the starter's) as
        # fp16, and a CPU cannot train in fp16.
        model = VisionEncoderDecoderModel.from_pretrained(source, dtype=torch.float32, **options)
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        image_processor = AutoImageProcessor.from_pretrained(source, **options)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {version} ({version.source}) to train: {exc}") from exc
    # Like published TrOCR checkpoints, a base may name its decoder start token only in the
    # decoder's config; training needs it on the model's.
    fill_special_token_ids(model, tokenizer)
    if torch.cuda.is_available():
        model.to("cuda")
    return TrainingBundle(model, tokenizer, image_processor)


# Lines cut and read so many at a time: recognize() prepares all it is given as one tensor
# (1.8 MB a line at TrOCR's 384 x 384), so a split of thousands of lines at once would take
# gigabytes, and a worker killed for it would be resumed into the same evaluation for good.
CHUNK_LINES = 256


def _read(loaded: LoadedModel, images: Iterable[Any], nbest: int) -> list[Any]:
    results: list[Any] = []
    pending = iter(images)
    while chunk := list(islice(pending, CHUNK_LINES)):
        results += recognize(
            loaded,
            chunk,
            nbest=nbest,
            # As the workers read: the CPU's batch left a GPU mostly idle for three
            # beam-search passes a run.
            batch_size=batch_size_on(loaded.device),
            max_new_tokens=settings.OCRREVIEW_MAX_NEW_TOKENS,
        )
    return results


def readable_lines(lines: Sequence[Line]) -> tuple[list[Line], int]:
    """The lines whose page image can be read, and how many of the others there are. One
    page gone (a file deleted, an object archived or denied) failed every run after its
    training, and again on every retry, since the frozen split keeps its lines; parent and
    child are scored without them instead. A store that is down raises, for the run to wait
    for it."""
    readable: list[Line] = []
    pages: dict[int, bool] = {}
    for line in lines:
        if line.page_id not in pages:
            try:
                with line.page.image.open("rb") as handle:
                    open_image(handle.read())
                pages[line.page_id] = True
            except Exception as exc:
                if storage.store_is_down(exc):
                    raise
                logger.warning("%s: its image cannot be read (%s)", line.page, exc)
                pages[line.page_id] = False
        if pages[line.page_id]:
            readable.append(line)
    return readable, len(lines) - len(readable)


def score(source: str, revision: str, lines: Sequence[Line], nbest: int) -> dict[str, Any]:
    """Corpus CER and WER of a model on lines whose text is the reference, and the character
    edits and reference characters of its CER, read as the workers
    read them (beam search over `nbest`, the collection's): the gate judges the readings the
    collection will get, and a beam may read better or worse than greedy decoding."""
    if not lines:
        raise ValueError("the frozen evaluation split has no reviewed lines left to score on")
    loaded = load_model(storage.resolve_model_source(source), revision=revision or None)
    cache: dict[int, Any] = {}
    images = (line_image(line, cache) for line in lines)
    hyps = [result.best.text if result.best else "" for result in _read(loaded, images, nbest)]
    refs = [line.text for line in lines]
    edits, characters = metrics.character_edits(refs, hyps)
    return {
        "cer": metrics.cer(refs, hyps),
        "wer": metrics.wer(refs, hyps),
        "edits": edits,
        "characters": characters,
    }


def fit_calibration_on(
    model_dir: Path, samples: Sequence[tuple[Path, str]], nbest: int
) -> dict | None:
    """Platt-fit the new model's confidences on the validation lines: was its best reading
    exactly the reference? None when there are too few lines for a fit to mean anything.
    Read as the workers read (beam search over `nbest`, the collection's): the best of a
    beam scores above the greedy reading, so a fit on greedy scores would overstate the
    confidence of every line the workers read."""
    if len(samples) < calibration.MIN_PAIRS:
        return None
    loaded = load_model(str(model_dir))
    results = _read(loaded, (open_image(path) for path, _ in samples), nbest)
    pairs = [
        (result.best.raw_confidence, result.best.text == text)
        for result, (_, text) in zip(results, samples, strict=True)
        if result.best is not None
    ]
    if len(pairs) < calibration.MIN_PAIRS:
        return None
    return calibration.fit_calibration(pairs)
