"""Measuring and calibrating model versions with the recognition engine."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from django.conf import settings

from ocrreview.corpus.models import Line
from ocrreview.training.exports import line_image
from ocrreview.training.models import ModelVersion
from recognition import calibration, metrics
from recognition.inference import recognize
from recognition.loading import LoadedModel, load_model
from recognition.preprocess import open_image


def load_for_training(version: ModelVersion) -> LoadedModel:
    """The base model in float32 (mixed precision keeps float32 master weights; a model loaded
    for inference on a GPU is bf16), moved to the GPU when there is one."""
    loaded = load_model(version.source, revision=version.revision or None, device="cpu")
    if torch.cuda.is_available():
        loaded.model.to("cuda")
    return loaded


def _read(loaded: LoadedModel, images: Sequence[Any]) -> list[Any]:
    return recognize(
        loaded,
        list(images),
        nbest=1,
        batch_size=settings.OCRREVIEW_BATCH_SIZE,
        max_new_tokens=settings.OCRREVIEW_MAX_NEW_TOKENS,
    )


def score(source: str, revision: str, lines: Sequence[Line]) -> dict[str, float]:
    """Corpus CER and WER of a model on lines whose text is the reference."""
    if not lines:
        raise ValueError("the frozen evaluation split has no reviewed lines left to score on")
    loaded = load_model(source, revision=revision or None)
    cache: dict[int, Any] = {}
    images = [line_image(line, cache) for line in lines]
    hyps = [result.best.text if result.best else "" for result in _read(loaded, images)]
    refs = [line.text for line in lines]
    return {"cer": metrics.cer(refs, hyps), "wer": metrics.wer(refs, hyps)}


def fit_calibration_on(model_dir: Path, samples: Sequence[tuple[Path, str]]) -> dict | None:
    """Platt-fit the new model's confidences on the validation lines: was its best reading
    exactly the reference? None when there are too few lines for a fit to mean anything."""
    if len(samples) < calibration.MIN_PAIRS:
        return None
    loaded = load_model(str(model_dir))
    results = _read(loaded, [open_image(path) for path, _ in samples])
    pairs = [
        (result.best.raw_confidence, result.best.text == text)
        for result, (_, text) in zip(results, samples, strict=True)
        if result.best is not None
    ]
    if len(pairs) < calibration.MIN_PAIRS:
        return None
    return calibration.fit_calibration(pairs)
