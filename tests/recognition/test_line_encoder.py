"""The starter's convolutional line encoder inside a VisionEncoderDecoderModel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoConfig, VisionEncoderDecoderModel

from recognition.architectures import build_char_tokenizer, build_starter_model, grow_starter
from recognition.line_encoder import LineEncoderConfig, LineEncoderModel
from tests.tiny_model import TINY_STARTER


@pytest.fixture
def model() -> VisionEncoderDecoderModel:
    torch.manual_seed(0)
    return build_starter_model(build_char_tokenizer("abc "), TINY_STARTER).eval()


def test_one_feature_per_eight_pixel_column(model: VisionEncoderDecoderModel) -> None:
    out = model.encoder(pixel_values=torch.randn(2, 3, 32, 96), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 12, 32)
    assert out.reshaped_hidden_states[-1].shape == (2, 32, 1, 12)


def test_a_saved_model_loads_through_the_auto_classes(
    model: VisionEncoderDecoderModel, tmp_path: Path
) -> None:
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path).encoder, LineEncoderConfig)
    loaded = VisionEncoderDecoderModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.encoder, LineEncoderModel)
    pixels = torch.randn(1, 3, 32, 96)
    with torch.no_grad():
        expected = model.generate(pixels, max_new_tokens=4, num_beams=2)
        assert torch.equal(loaded.generate(pixels, max_new_tokens=4, num_beams=2), expected)


def test_narrower_lines_use_the_first_positions(model: VisionEncoderDecoderModel) -> None:
    out = model.encoder(pixel_values=torch.randn(1, 3, 32, 48))
    assert out.last_hidden_state.shape == (1, 6, 32)


@pytest.mark.parametrize("size", [(64, 96), (32, 128)])
def test_an_image_of_the_wrong_size_is_refused_clearly(
    model: VisionEncoderDecoderModel, size: tuple[int, int]
) -> None:
    with pytest.raises(ValueError, match="expected lines 32 px high and at most 96 px wide"):
        model.encoder(pixel_values=torch.randn(1, 3, *size))


def test_sizes_must_be_multiples_of_the_stride() -> None:
    with pytest.raises(StrictDataclassClassValidationError, match="multiples of 8"):
        LineEncoderConfig(image_height=30, image_width=96)


def test_a_grown_starter_reads_what_it_read_before_and_takes_wider_lines(
    model: VisionEncoderDecoderModel,
) -> None:
    pixels = torch.randn(1, 3, 32, 96)
    with torch.no_grad():
        before = model.encoder(pixel_values=pixels).last_hidden_state
        processor = grow_starter(model, image_width=192, context_layers=3)
        after = model.encoder(pixel_values=pixels).last_hidden_state
        wide = model.encoder(pixel_values=torch.randn(1, 3, 32, 192)).last_hidden_state
    assert torch.allclose(before, after, atol=1e-5)  # added layers start as the identity
    assert wide.shape == (1, 24, 32)
    assert len(model.encoder.context.layers) == 3
    assert model.config.encoder.image_width == 192
    assert processor.size == {"height": 32, "width": 192}
    with pytest.raises(ValueError, match="can only grow"):
        grow_starter(model, image_width=96, context_layers=3)
