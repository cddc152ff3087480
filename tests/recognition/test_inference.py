import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import (
    AutoTokenizer,
    BertConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessor,
)

from recognition.architectures import create_starter_base
from recognition.calibration import fit_calibration
from recognition.inference import (
    LineResult,
    OutOfMemory,
    alternative_confidence,
    estimate_line_bytes,
    memory_batch_limit,
    recognize,
    token_spans,
)
from recognition.loading import LoadedModel, load_model
from tests.recognition.conftest import noise_line
from tests.tiny_model import TINY_STARTER

MAX_TOKENS = 12


def _summary(results: list[LineResult]) -> list[list[tuple[str, float]]]:
    return [[(h.text, h.logprob) for h in r.hypotheses] for r in results]


def _assert_same(a: list[LineResult], b: list[LineResult]) -> None:
    assert [[h.text for h in r.hypotheses] for r in a] == [
        [h.text for h in r.hypotheses] for r in b
    ]
    for left, right in zip(_summary(a), _summary(b), strict=True):
        assert [lp for _, lp in left] == pytest.approx([lp for _, lp in right], abs=1e-4)


@pytest.mark.parametrize("nbest", [1, 3])
def test_batched_results_equal_one_by_one(
    tiny_model: LoadedModel, line_images: list[Image.Image], nbest: int
) -> None:
    batched = recognize(
        tiny_model, line_images, nbest=nbest, batch_size=4, max_new_tokens=MAX_TOKENS
    )
    alone = [
        recognize(tiny_model, [image], nbest=nbest, max_new_tokens=MAX_TOKENS)[0]
        for image in line_images
    ]
    _assert_same(batched, alone)
    assert len({r.hypotheses[0].text for r in batched}) > 1  # the model does look at the image


def test_nbest_is_sorted_and_shares_sum_to_at_most_one(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    results = recognize(tiny_model, line_images, nbest=4, num_beams=5, max_new_tokens=MAX_TOKENS)
    for result in results:
        hypotheses = result.hypotheses
        assert 1 <= len(hypotheses) <= 4
        assert [h.rank for h in hypotheses] == list(range(1, len(hypotheses) + 1))
        logprobs = [h.logprob for h in hypotheses]
        assert logprobs == sorted(logprobs, reverse=True)
        assert sum(h.share for h in hypotheses) == pytest.approx(1.0)
        assert sum(h.confidence for h in hypotheses) <= 1.0
        assert len({h.text for h in hypotheses}) == len(hypotheses)
        for h in hypotheses:
            assert h.confidence == pytest.approx(math.exp(h.logprob))
            assert 0.0 < h.confidence <= h.share <= 1.0


def test_token_spans_cover_the_text(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    results = recognize(tiny_model, line_images, nbest=2, max_new_tokens=MAX_TOKENS)
    for hypothesis in (h for r in results for h in r.hypotheses):
        spans = [(t.start, t.end) for t in hypothesis.tokens]
        assert spans[0][0] == 0
        assert spans[-1][1] == len(hypothesis.text)
        assert all(prev[1] == cur[0] for prev, cur in zip(spans, spans[1:], strict=False))
        assert all(start <= end for start, end in spans)
        assert all(0.0 < t.prob <= 1.0 for t in hypothesis.tokens)


def test_multibyte_characters_go_to_the_token_that_completes_them(
    tiny_model: LoadedModel,
) -> None:
    text = "Überweisung à Paris €"
    ids = tiny_model.tokenizer.encode(text, add_special_tokens=False)
    decoded, tokens = token_spans(tiny_model.tokenizer, ids, [0.0] * len(ids))
    assert decoded == text
    assert "".join(decoded[t.start : t.end] for t in tokens) == text
    assert any(t.start == t.end for t in tokens) or len(ids) <= len(text)


def test_a_reading_is_one_line_whatever_the_vocabulary_holds(tiny_model: LoadedModel) -> None:
    """A line break in a reading was stored as the line's text: the editor then refused to
    save it unchanged, and the text export wrote it as two lines."""
    ids = tiny_model.tokenizer.encode("Dear Sir,\nI\treceived", add_special_tokens=False)
    decoded, tokens = token_spans(tiny_model.tokenizer, ids, [0.0] * len(ids))
    assert decoded == "Dear Sir, I received"
    assert tokens[-1].end == len(decoded)


def test_a_reading_spelt_letter_then_accent_is_stored_composed() -> None:
    """As typed text is (NFC): else searching or correcting "pão" misses the model's "pão"."""
    from recognition.architectures import build_char_tokenizer

    tokenizer = build_char_tokenizer("pao\u0303\u2028")
    ids = tokenizer.encode("pa\u0303o\u2028pao", add_special_tokens=False)
    decoded, tokens = token_spans(tokenizer, ids, [0.0] * len(ids))
    assert decoded == "p\u00e3o pao"
    # The accent completes the letter, as a multi-byte character's last token does.
    assert [(t.start, t.end) for t in tokens[:4]] == [(0, 1), (1, 1), (1, 2), (2, 3)]


def test_greedy_gives_one_hypothesis_whose_probability_is_the_product(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    for result in recognize(tiny_model, line_images, max_new_tokens=MAX_TOKENS):
        (best,) = result.hypotheses
        assert best.share == 1.0
        product = math.prod(t.prob for t in best.tokens)
        assert best.raw_confidence == pytest.approx(product, rel=1e-6)
        assert best.confidence <= min(t.prob for t in best.tokens)


def test_max_new_tokens_is_honoured_and_reported(tiny_model: LoadedModel) -> None:
    (result,) = recognize(tiny_model, [noise_line(200)], max_new_tokens=3)
    best = result.hypotheses[0]
    assert len(best.tokens) <= 3
    assert best.truncated == (len(best.tokens) == 3 and best.tokens[-1].token != "</s>")


@pytest.mark.parametrize("nbest", [1, 3])
def test_decoding_constraints_a_checkpoint_ships_do_not_change_readings_or_scores(
    tiny_model_dir: Path, tmp_path: Path, line_images: list[Image.Image], nbest: int
) -> None:
    constrained = Path(shutil.copytree(tiny_model_dir, tmp_path / "constrained"))
    generation = json.loads((constrained / "generation_config.json").read_text())
    generation.update(no_repeat_ngram_size=1, repetition_penalty=3.0, length_penalty=2.0)
    (constrained / "generation_config.json").write_text(json.dumps(generation))
    plain = recognize(
        load_model(str(tiny_model_dir)), line_images, nbest=nbest, max_new_tokens=MAX_TOKENS
    )
    shipped = recognize(
        load_model(str(constrained)), line_images, nbest=nbest, max_new_tokens=MAX_TOKENS
    )
    _assert_same(shipped, plain)


def test_generation_stops_where_the_decoders_positions_end(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir))
    # A decoder with learned positions for 4 tokens, the start token included.
    positions = loaded.model.decoder.model.decoder.embed_positions
    positions.weight = torch.nn.Parameter(positions.weight[: 4 + positions.offset].clone())
    loaded.model.config.decoder.max_position_embeddings = 4
    (result,) = recognize(loaded, [noise_line(200)], max_new_tokens=50)
    assert result.error is None
    assert len(result.hypotheses[0].tokens) <= 3


@pytest.mark.parametrize("size", [(5000, 2), (3, 400)], ids=["sliver", "tall-and-narrow"])
def test_a_sliver_is_read_by_a_model_that_keeps_the_aspect_ratio(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    # The starter's processor scales to its height and shrinks long lines: a 2500:1 crop
    # came out zero pixels high and failed ("Size must contain 'height' and 'width'").
    loaded = load_model(str(create_starter_base(tmp_path / "starter", TINY_STARTER)))
    (result,) = recognize(loaded, [Image.new("RGB", size, "white")], max_new_tokens=4)
    assert result.error is None and result.hypotheses


@pytest.mark.parametrize("nbest", [1, 3])
def test_a_model_with_a_bert_decoder_reads(
    tiny_model_dir: Path, tmp_path: Path, nbest: int
) -> None:
    # Sizes are named otherwise than TrOCR's (hidden_size, num_hidden_layers): the memory
    # estimate that sizes batches read d_model and failed every call.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    decoder = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        is_decoder=True,
        add_cross_attention=True,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    out = tmp_path / "bert"
    VisionEncoderDecoderModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    ViTImageProcessor.from_pretrained(tiny_model_dir).save_pretrained(out)
    (result,) = recognize(load_model(str(out)), [noise_line(64)], nbest=nbest, max_new_tokens=4)
    assert result.error is None and 1 <= len(result.hypotheses) <= nbest


def test_bad_images_do_not_sink_the_batch(tiny_model: LoadedModel) -> None:
    good = noise_line(120)
    images = [
        good,
        Image.new("RGB", (0, 0)),
        Image.new("RGB", (1, 1)),
        noise_line(20_000, height=40),
        "not an image",
        Image.new("P", (80, 20)),
        Image.new("I;16", (80, 20)),
        Image.new("RGBA", (80, 20)),
    ]
    results = recognize(tiny_model, images, nbest=2, max_new_tokens=MAX_TOKENS)  # type: ignore[arg-type]
    assert len(results) == len(images)
    assert results[1].error is not None and "no pixels" in results[1].error
    assert results[4].error is not None and "PIL image" in results[4].error
    for index in (0, 2, 3, 5, 6, 7):
        assert results[index].error is None
        assert results[index].hypotheses
    alone = recognize(tiny_model, [good], nbest=2, max_new_tokens=MAX_TOKENS)
    _assert_same(results[:1], alone)


def test_cuda_out_of_memory_halves_the_batch(
    tiny_model: LoadedModel, line_images: list[Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = recognize(tiny_model, line_images, nbest=2, batch_size=8, max_new_tokens=MAX_TOKENS)
    real_generate = tiny_model.model.generate
    sizes: list[int] = []

    def generate_with_little_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(kwargs["pixel_values"].shape[0])
        if sizes[-1] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(tiny_model.model, "generate", generate_with_little_memory)
    results = recognize(tiny_model, line_images, nbest=2, batch_size=8, max_new_tokens=MAX_TOKENS)
    assert sizes[:2] == [7, 3]  # 7 lines, then halved until a batch fits
    assert max(sizes[2:]) <= 2
    _assert_same(results, expected)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_out_of_memory_for_a_single_line_is_raised_not_recorded_as_the_lines_error(
    tiny_model: LoadedModel,
    line_images: list[Image.Image],
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    """The device is busy (training holds its memory): the lines are not at fault."""

    def generate_with_no_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(tiny_model.model, "generate", generate_with_no_memory)
    with pytest.raises(OutOfMemory):
        recognize(tiny_model, line_images, batch_size=batch_size, max_new_tokens=MAX_TOKENS)


def test_a_failing_batch_is_retried_line_by_line(
    tiny_model: LoadedModel, line_images: list[Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_generate = tiny_model.model.generate

    def generate_failing_on_batches(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["pixel_values"].shape[0] > 1:
            raise RuntimeError("simulated kernel failure")
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(tiny_model.model, "generate", generate_failing_on_batches)
    results = recognize(tiny_model, line_images, batch_size=4, max_new_tokens=MAX_TOKENS)
    assert all(r.error is None and r.hypotheses for r in results)


def test_a_line_the_image_processor_refuses_fails_alone(
    tiny_model: LoadedModel, line_images: list[Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is prepared in one call of the processor; when that call fails, the lines
    are prepared one by one so that only the line it refuses fails."""
    processor = tiny_model.image_processor
    refused_width = line_images[1].width

    class Refusing:
        def __call__(self, *, images, **kwargs):  # type: ignore[no-untyped-def]
            if any(image.shape[1] == refused_width for image in images):
                raise ValueError("simulated processor failure")
            return processor(images=images, **kwargs)

    monkeypatch.setattr(tiny_model, "image_processor", Refusing())
    results = recognize(tiny_model, line_images, max_new_tokens=MAX_TOKENS)
    assert results[1].error == "ValueError: simulated processor failure"
    others = [r for i, r in enumerate(results) if i != 1]
    assert all(r.error is None and r.hypotheses for r in others)
    monkeypatch.setattr(tiny_model, "image_processor", processor)
    _assert_same(
        others, recognize(tiny_model, line_images[:1] + line_images[2:], max_new_tokens=MAX_TOKENS)
    )


def test_results_round_trip_through_json(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    results = recognize(
        tiny_model, line_images[:2] + [Image.new("RGB", (0, 5))], nbest=2, max_new_tokens=MAX_TOKENS
    )
    for result in results:
        data = json.loads(json.dumps(result.to_dict()))
        assert LineResult.from_dict(data) == result


def test_calibration_is_applied_to_the_confidence(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    fit = fit_calibration([(0.9, False), (0.8, True)] * 10)
    (raw,) = recognize(tiny_model, line_images[:1], max_new_tokens=MAX_TOKENS)
    (calibrated,) = recognize(
        tiny_model, line_images[:1], max_new_tokens=MAX_TOKENS, calibration=fit
    )
    assert calibrated.hypotheses[0].raw_confidence == raw.hypotheses[0].raw_confidence
    assert calibrated.hypotheses[0].confidence != raw.hypotheses[0].confidence


def test_calibrated_confidences_of_a_line_sum_to_at_most_one(
    tiny_model: LoadedModel, line_images: list[Image.Image]
) -> None:
    """The fit is of the best reading's rightness: applied to every alternative too, a line's
    four readings each showed about 50 %."""
    # Three readings in four right, whatever their raw score: about 0.75 for any score.
    fit = fit_calibration([(0.9, True), (0.001, True), (0.9, False), (0.001, True)] * 5)
    (line,) = recognize(
        tiny_model,
        line_images[:1],
        max_new_tokens=MAX_TOKENS,
        num_beams=4,
        nbest=4,
        calibration=fit,
    )
    confidences = [h.confidence for h in line.hypotheses]
    assert len(confidences) >= 2
    assert confidences[0] > 0.6
    assert sum(confidences) <= 1.0 + 1e-9


def test_an_alternative_is_never_surer_than_the_best_reading() -> None:
    """A fit that lowers mid-range scores (an over-confident model's) takes a best reading at
    raw 0.50 to 0.27: a close second at raw 0.45 got 0.66 of what that leaves."""
    best = 1 / (1 + math.exp(1))
    assert alternative_confidence(0.45, 0.50, best) == best
    assert alternative_confidence(0.05, 0.50, best) == pytest.approx((1 - best) * 0.1)


@pytest.mark.parametrize(
    "fit, message",
    [
        ({"method": "isotonic", "a": 1.0, "b": 0.0}, "unknown calibration method 'isotonic'"),
        ({"method": "platt-logit", "a": 1.0}, "lacks a finite 'b'"),
        ({"method": "platt-logit", "a": float("nan"), "b": 0.0}, "lacks a finite 'a'"),
    ],
)
def test_a_calibration_fit_that_cannot_be_applied_is_refused_before_reading(
    tiny_model: LoadedModel, monkeypatch: pytest.MonkeyPatch, fit: dict, message: str
) -> None:
    calls = []
    monkeypatch.setattr(tiny_model.model, "generate", lambda **kwargs: calls.append(kwargs))
    with pytest.raises(ValueError, match=message):
        recognize(tiny_model, [noise_line(100)], calibration=fit)
    assert not calls


def test_invalid_search_settings_are_refused(tiny_model: LoadedModel) -> None:
    with pytest.raises(ValueError, match="nbest"):
        recognize(tiny_model, [noise_line(50)], nbest=3, num_beams=2)
    with pytest.raises(ValueError, match="positive"):
        recognize(tiny_model, [noise_line(50)], max_new_tokens=0)


def test_batch_size_is_bounded_by_memory(tiny_model: LoadedModel) -> None:
    assert estimate_line_bytes(tiny_model, 8, 96) > estimate_line_bytes(tiny_model, 1, 96)
    assert memory_batch_limit(tiny_model, 4, 96) >= 1


def test_int8_quantised_model_transcribes(
    tiny_model_dir: Path, line_images: list[Image.Image]
) -> None:
    quantised = load_model(str(tiny_model_dir), device="cpu", quantize=True)
    results = recognize(quantised, line_images, nbest=2, max_new_tokens=MAX_TOKENS)
    assert all(r.error is None and r.hypotheses for r in results)
