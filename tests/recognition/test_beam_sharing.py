from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from transformers import VisionEncoderDecoderModel

from recognition.beam_sharing import DistinctRowsProjection
from recognition.inference import recognize
from recognition.loading import LoadedModel
from recognition.text import one_line


@pytest.mark.parametrize("pattern", ["aaaa", "aabb", "abab", "aab", "ab", "a", "aaabbb"])
def test_distinct_rows_projection_equals_the_plain_projection(pattern: str) -> None:
    torch.manual_seed(0)
    projection = nn.Linear(6, 5)
    rows = {name: torch.randn(3, 6) for name in set(pattern)}
    states = torch.stack([rows[name] for name in pattern])
    assert torch.allclose(DistinctRowsProjection(projection)(states), projection(states))


def test_engine_beam_search_matches_plain_transformers(
    tiny_model: LoadedModel, tiny_model_dir: Path, line_images: list[Image.Image]
) -> None:
    plain = VisionEncoderDecoderModel.from_pretrained(tiny_model_dir).eval()
    pixel_values = tiny_model.image_processor(images=line_images, return_tensors="pt").pixel_values
    with torch.inference_mode():
        reference = plain.generate(
            pixel_values=pixel_values,
            num_beams=3,
            max_new_tokens=10,
            length_penalty=0.0,
            output_scores=True,
            return_dict_in_generate=True,
        )
    texts = tiny_model.tokenizer.batch_decode(reference.sequences, skip_special_tokens=True)
    results = recognize(tiny_model, line_images, nbest=1, num_beams=3, max_new_tokens=10)
    for result, text, score in zip(results, texts, reference.sequences_scores, strict=True):
        assert result.hypotheses[0].text == one_line(text).strip()
        assert result.hypotheses[0].logprob == pytest.approx(float(score), abs=1e-4)
