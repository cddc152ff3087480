"""The new model's confidence calibration, fitted on its validation lines; a base model
loaded for training."""

import shutil

import pytest
import torch
from transformers import VisionEncoderDecoderModel

from ocrreview.training.evaluation import fit_calibration_on, load_for_training
from recognition.calibration import fit_calibration
from recognition.inference import recognize
from recognition.loading import load_model
from recognition.preprocess import open_image
from tests import factories
from tests.recognition.conftest import noise_line


def test_the_calibration_is_fitted_on_readings_made_as_the_workers_make_them(
    tiny_model_dir, tmp_path, settings
):
    """The workers read with beam search over the collection's n-best, whose best reading
    scores above the greedy one: the fit must be on those scores."""
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    images = []
    for seed in range(12):
        path = tmp_path / f"{seed}.png"
        noise_line(96, seed=seed).save(path)
        images.append(path)
    loaded = load_model(str(tiny_model_dir), device="cpu")
    read = recognize(loaded, [open_image(p) for p in images], nbest=3, max_new_tokens=8)
    # Half the references are what the workers read, so that the fit has both outcomes.
    samples = [
        (path, result.best.text if i % 2 else "not this")
        for i, (path, result) in enumerate(zip(images, read, strict=True))
    ]
    expected = fit_calibration(
        [
            (r.best.raw_confidence, r.best.text == text)
            for r, (_, text) in zip(read, samples, strict=True)
        ]
    )
    assert fit_calibration_on(tiny_model_dir, samples, nbest=3) == expected


@pytest.mark.django_db
def test_a_base_stored_in_fp16_is_trained_in_fp32(tiny_model_dir, tmp_path):
    """The shipped starter keeps fp16 weights; transformers loads them as fp16 unless told,
    and a CPU cannot train in fp16."""
    halved = tmp_path / "halved"
    model = VisionEncoderDecoderModel.from_pretrained(tiny_model_dir)
    model.half().save_pretrained(halved)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        if (tiny_model_dir / name).exists():
            shutil.copy(tiny_model_dir / name, halved / name)
    version = factories.make_model_version(source=str(halved))
    bundle = load_for_training(version)
    assert {p.dtype for p in bundle.model.parameters()} == {torch.float32}
