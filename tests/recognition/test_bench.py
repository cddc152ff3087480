"""The benchmark script's parts; the benchmark itself is never run as a test."""

import io
from pathlib import Path

import pytest
from PIL import Image

from recognition.bench import (
    OUTPUT_TOKENS,
    VOCAB_SIZE,
    _engine,
    _vocabulary_tokenizer,
    line_images,
    main,
)
from recognition.loading import STARTER_MODEL_DIR
from tests.recognition.test_evaluate import _folder


def test_bench_tokenizer_has_the_roberta_layout() -> None:
    tokenizer = _vocabulary_tokenizer()
    assert len(tokenizer) == VOCAB_SIZE
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (1, 2)
    assert tokenizer.decode([200, 5000, 50264]) != ""


def test_bench_lines_vary_in_width() -> None:
    widths = {Image.open(io.BytesIO(png)).width for png in line_images(8)}
    assert len(widths) > 3


def test_agreement_mode_reports_every_setting(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "text")
    (folder / "metadata.jsonl").write_text(
        "\n".join(
            r for r in (folder / "metadata.jsonl").read_text().splitlines() if "broken" not in r
        )
    )
    assert main(["--agreement", str(tiny_model_dir), str(folder), "--lines", "3"]) == 0
    out = capsys.readouterr().out
    for setting in ("beam 1: fp32, batch 8", "beam 4: int8, batch 8"):
        assert setting in out
    assert "3/3" in out  # fp32 batched agrees with fp32 one line at a time


def test_every_engine_variant_makes_as_many_tokens_a_line_as_the_naive_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Otherwise the speed-up compares unequal work: a trained model (the starter) ends the
    bench's drawn lines before 24 tokens."""
    from transformers import VisionEncoderDecoderModel

    from recognition import inference

    monkeypatch.setitem(inference.NEUTRAL_SEARCH, "min_new_tokens", None)  # restored after
    made: list[int] = []
    generate = VisionEncoderDecoderModel.generate

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        output = generate(self, *args, **kwargs)
        end = self.config.decoder.eos_token_id
        for row in output.sequences.tolist():
            tokens = row[1:]  # after the start token
            made.append(tokens.index(end) if end in tokens else len(tokens))
        return output

    monkeypatch.setattr(VisionEncoderDecoderModel, "generate", counting)
    transcribe = _engine("(b) engine", str(STARTER_MODEL_DIR))
    transcribe([Image.open(io.BytesIO(png)) for png in line_images(2)])
    assert made and min(made) >= OUTPUT_TOKENS
