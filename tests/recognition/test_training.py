"""The generic training loop, on a tiny from-scratch model that memorises a few lines."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    VisionEncoderDecoderModel,
)

from recognition import training
from recognition.architectures import (
    build_char_tokenizer,
    build_image_processor,
    build_starter_model,
)
from recognition.metrics import cer
from recognition.preprocess import to_rgb
from recognition.training import (
    TrainingConfig,
    encode_labels,
    find_unknown_chars,
    fitting_labels,
    load_bundle,
    train,
    transcribe,
)
from tests.tiny_model import TINY_STARTER

# The shared toy starter, wide enough to learn four words within a test.
TINY = replace(
    TINY_STARTER,
    image_width=128,
    channels=(8, 16, 32, 32, 64),
    context_ffn=128,
    decoder_dim=64,
    decoder_ffn=128,
    max_length=16,
)
WORDS = ["cat", "dog", "sun", "map"]


def word_image(text: str) -> Image.Image:
    image = Image.new("L", (128, 32), 255)
    ImageDraw.Draw(image).text((8, 6), text, fill=0, font=ImageFont.load_default(size=20))
    return image


@pytest.fixture
def tiny_base(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer("abcdefghijklmnopqrstuvwxyz ")
    out = tmp_path / "base"
    build_starter_model(tokenizer, TINY).save_pretrained(out)
    tokenizer.save_pretrained(out)
    build_image_processor(TINY).save_pretrained(out)
    return out


def record_logit_dtypes(model: VisionEncoderDecoderModel) -> set[torch.dtype]:
    """The dtypes of the decoder's logits in every forward pass from now on."""
    dtypes: set[torch.dtype] = set()
    model.decoder.get_output_embeddings().register_forward_hook(
        lambda _module, _inputs, output: dtypes.add(output.dtype)
    )
    return dtypes


def config(**overrides: object) -> TrainingConfig:
    settings: dict[str, object] = {
        "max_steps": 240,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_steps": 5,
        "eval_every": 80,
        "max_new_tokens": 8,
        "checkpoint_every": 1000,
        "log_every": 10,
        "patience": None,
        "num_threads": 1,
    }
    settings.update(overrides)
    return TrainingConfig(**settings)  # type: ignore[arg-type]


def test_labels_drop_the_start_token_end_with_eos_and_pad_with_minus_100() -> None:
    tokenizer = build_char_tokenizer("abc")
    labels = encode_labels(tokenizer, ["ab", "c"], start_id=tokenizer.bos_token_id, max_len=10)
    eos = tokenizer.eos_token_id
    assert labels[0].tolist() == [tokenizer.convert_tokens_to_ids("a"), 5, eos]
    assert labels[1].tolist() == [tokenizer.convert_tokens_to_ids("c"), eos, -100]


def test_char_tokenizer_round_trips_text_with_spaces() -> None:
    tokenizer = build_char_tokenizer()
    text = "Mch 22 - £3 4s 6d, Esq."
    ids = tokenizer(text)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert find_unknown_chars(tokenizer, [text, "Straße €5"]) == ["ß", "€"]


def test_spaces_other_than_the_space_are_found_missing_and_added_not_dropped() -> None:
    """French text holds no-break spaces (before ; : ! ?, inside « »): without them in the
    vocabulary a retrained model joins the words they separate."""
    tokenizer = build_char_tokenizer()
    unknown = find_unknown_chars(tokenizer, ["vingt\u00a0ans", "Monsieur\u202f: oui"])
    assert unknown == ["\u00a0", "\u202f"]


def test_lines_longer_than_the_labels_are_left_out_not_cut() -> None:
    tokenizer = build_char_tokenizer()
    start = tokenizer.bos_token_id
    samples = [("a.png", "a" * 9), ("b.png", "b" * 10), ("c.png", "short")]
    # Ten label tokens: nine characters and the end token fit, ten characters do not.
    kept, too_long = fitting_labels(samples, tokenizer, start, 10)
    assert kept == [samples[0], samples[2]] and too_long == 1


def test_training_says_how_many_lines_it_left_out_as_too_long(
    tiny_base: Path, tmp_path: Path
) -> None:
    samples = [(word_image(w), w) for w in WORDS] + [(word_image("long"), "long " * 100)]
    events: list[dict[str, object]] = []
    train(tiny_base, samples, [], config(max_steps=1), tmp_path / "run", events.append)
    warnings = [str(e["message"]) for e in events if e["event"] == "warning"]
    assert any(w.startswith("training lines left out") and w.endswith(": 1") for w in warnings)


@pytest.mark.parametrize("cpu_bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_training_memorises_lines_and_keeps_the_best_model(
    tiny_base: Path, tmp_path: Path, cpu_bf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bf16 path runs wherever the test does (emulated on CPUs without native bf16).
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    samples = [(word_image(w), w) for w in WORDS]
    bundle = SimpleNamespace(
        model=VisionEncoderDecoderModel.from_pretrained(tiny_base),
        tokenizer=AutoTokenizer.from_pretrained(tiny_base),
        image_processor=AutoImageProcessor.from_pretrained(tiny_base),
    )
    untrained = transcribe(
        bundle.model,
        bundle.tokenizer,
        bundle.image_processor,
        [i for i, _ in samples],
        max_new_tokens=8,
    )
    logit_dtypes = record_logit_dtypes(bundle.model)
    events: list[dict[str, object]] = []
    result = train(
        bundle,
        samples * 4,
        samples,
        config(ctc_weight=0.5, cpu_bf16=cpu_bf16),
        tmp_path / "run",
        events.append,
    )

    # Training steps ran in bf16 only when asked; validation always runs in fp32.
    assert logit_dtypes == ({torch.bfloat16, torch.float32} if cpu_bf16 else {torch.float32})

    losses = [e["loss"] for e in events if e["event"] == "step"]
    assert losses[-1] < losses[0] / 2  # type: ignore[operator]
    cers = [e["cer"] for e in events if e["event"] == "eval"]
    assert result.best_cer == min(cers) < 0.1  # type: ignore[operator]
    assert cer(WORDS, untrained) > 0.5
    best = VisionEncoderDecoderModel.from_pretrained(result.model_dir)
    assert {p.dtype for p in best.parameters()} == {torch.float32}
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    processor = AutoImageProcessor.from_pretrained(result.model_dir)
    hyps = transcribe(best, tokenizer, processor, [i for i, _ in samples], max_new_tokens=8)
    assert sum(h == w for h, w in zip(hyps, WORDS, strict=True)) >= 3


def test_label_smoothing_keeps_the_loss_above_its_floor_and_still_memorises(
    tiny_base: Path, tmp_path: Path
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    epsilon = 0.2
    vocab = VisionEncoderDecoderModel.from_pretrained(tiny_base).config.decoder.vocab_size
    # A smoothed target's cross-entropy can fall no lower than the target's own entropy.
    right, wrong = 1 - epsilon + epsilon / vocab, epsilon / vocab
    floor = -right * math.log(right) - (vocab - 1) * wrong * math.log(wrong)
    runs = {}
    for smoothing in (0.0, epsilon):
        events: list[dict[str, object]] = []
        result = train(
            tiny_base,
            samples * 4,
            samples,
            config(label_smoothing=smoothing),
            tmp_path / f"run-{smoothing}",
            events.append,
        )
        runs[smoothing] = [float(e["loss"]) for e in events if e["event"] == "step"]  # type: ignore[arg-type]
        assert result.best_cer is not None and result.best_cer < 0.1

    assert min(runs[0.0]) < floor / 2
    assert min(runs[epsilon]) >= floor


def test_bf16_asked_on_a_cpu_without_native_bf16_trains_in_fp32_and_says_so(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    model = VisionEncoderDecoderModel.from_pretrained(tiny_base)
    logit_dtypes = record_logit_dtypes(model)
    bundle = SimpleNamespace(
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(tiny_base),
        image_processor=AutoImageProcessor.from_pretrained(tiny_base),
    )
    samples = [(word_image(w), w) for w in WORDS]
    events: list[dict[str, object]] = []
    train(
        bundle,
        samples,
        samples,
        config(max_steps=2, cpu_bf16=True),
        tmp_path / "run",
        events.append,
    )

    assert logit_dtypes == {torch.float32}
    assert {
        "event": "warning",
        "message": "this CPU has no native bf16: training in fp32",
    } in events


def test_unknown_characters_are_added_to_tokenizer_and_decoder(
    tiny_base: Path, tmp_path: Path
) -> None:
    samples = [(word_image("café"), "café"), (word_image("Ø5"), "Ø5")]
    result = train(tiny_base, samples, samples, config(max_steps=2), tmp_path / "run")
    assert result.added_chars == ["5", "Ø", "é"]
    # Resumed (here: asked for more steps), the run still reports what it added.
    resumed = train(tiny_base, samples, samples, config(max_steps=3), tmp_path / "run")
    assert (resumed.steps, resumed.added_chars) == (3, ["5", "Ø", "é"])
    tokenizer = AutoTokenizer.from_pretrained(result.model_dir)
    model = VisionEncoderDecoderModel.from_pretrained(result.model_dir)
    assert (
        tokenizer.decode(tokenizer("café Ø5")["input_ids"], skip_special_tokens=True) == "café Ø5"
    )
    assert model.decoder.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.decoder.get_output_embeddings().out_features == len(tokenizer)


def test_decoder_only_training_leaves_the_encoder_untouched(
    tiny_base: Path, tmp_path: Path
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    before = VisionEncoderDecoderModel.from_pretrained(tiny_base)
    result = train(
        tiny_base, samples, [], config(max_steps=3, train_encoder=False), tmp_path / "run"
    )
    after = VisionEncoderDecoderModel.from_pretrained(result.model_dir)
    for (name, old), new in zip(
        before.encoder.state_dict().items(), after.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(old, new), name
    assert not torch.equal(
        before.decoder.get_input_embeddings().weight, after.decoder.get_input_embeddings().weight
    )


def test_cancelled_run_resumes_from_its_checkpoint(tiny_base: Path, tmp_path: Path) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    out = tmp_path / "run"
    calls = {"n": 0}

    def cancel_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    first = train(
        tiny_base, samples, samples, config(max_steps=6), out, should_cancel=cancel_after_three
    )
    assert first.cancelled and first.steps == 3
    assert (out / "checkpoint" / "trainer_state.pt").exists()
    second = train(tiny_base, samples, samples, config(max_steps=6), out)
    assert not second.cancelled and second.steps == 6


def test_the_encoder_trains_channels_last_on_the_cpu(tiny_base: Path, tmp_path: Path) -> None:
    formats: list[bool] = []
    original = torch.nn.Conv2d.forward

    def recording(self: torch.nn.Conv2d, pixels: torch.Tensor) -> torch.Tensor:
        output = original(self, pixels)
        formats.append(output.is_contiguous(memory_format=torch.channels_last))
        return output

    samples = [(word_image(w), w) for w in WORDS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Conv2d, "forward", recording)
        train(tiny_base, samples, samples, config(max_steps=2), tmp_path / "run")
    assert formats and all(formats)


def test_a_moving_average_of_the_weights_is_kept_and_resumed_with_the_run(
    tiny_base: Path, tmp_path: Path
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    averaged = config(max_steps=6, eval_every=6, ema_decay=0.5)
    whole = train(tiny_base, samples, samples, averaged, tmp_path / "whole")
    calls = {"n": 0}

    def cancel_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    out = tmp_path / "resumed"
    train(tiny_base, samples, samples, averaged, out, should_cancel=cancel_after_three)
    resumed = train(tiny_base, samples, samples, averaged, out)

    kept = VisionEncoderDecoderModel.from_pretrained(whole.model_dir).state_dict()
    last = VisionEncoderDecoderModel.from_pretrained(tmp_path / "whole" / "checkpoint")
    assert not torch.allclose(
        kept["decoder.output_projection.weight"],
        last.state_dict()["decoder.output_projection.weight"],
    )
    # The average goes on over the steps before the resume rather than starting again there.
    saved = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert (resumed.steps, int(saved["ema"]["n_averaged"])) == (6, 6)


def record_trained_texts(
    monkeypatch: pytest.MonkeyPatch, tokenizer: PreTrainedTokenizerBase
) -> list[str]:
    """The texts of every training micro-batch, in the order the model is trained on them."""
    texts: list[str] = []
    forward = VisionEncoderDecoderModel.forward

    def recording_forward(self: VisionEncoderDecoderModel, *args: Any, **kwargs: Any) -> Any:
        labels = kwargs.get("labels")
        if labels is not None:
            for row in labels.tolist():
                ids = [i for i in row if i != -100]
                texts.append(tokenizer.decode(ids, skip_special_tokens=True))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(VisionEncoderDecoderModel, "forward", recording_forward)
    return texts


def test_loading_workers_change_the_speed_not_the_batches_even_across_a_resume(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = [f"{a}{b}" for a in "abcde" for b in "xy"]
    samples = []
    for word in words:  # files, which the workers open themselves
        word_image(word).save(tmp_path / f"{word}.png")
        samples.append((tmp_path / f"{word}.png", word))
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    texts = record_trained_texts(monkeypatch, tokenizer)
    # Two optimizer steps per epoch (two micro-batches of two each; 2 of the 10 lines left
    # over), so six steps cross two epoch boundaries.
    run = config(max_steps=6, batch_size=2, grad_accum=2, eval_every=100)

    train(tiny_base, samples, [], run, tmp_path / "in-process")
    in_process = list(texts)
    texts.clear()
    calls = {"n": 0}

    def cancel_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    with_workers = replace(run, num_workers=2)
    first = train(
        tiny_base, samples, [], with_workers, tmp_path / "workers", should_cancel=cancel_after_three
    )
    assert first.cancelled and first.steps == 3
    second = train(tiny_base, samples, [], with_workers, tmp_path / "workers")

    assert second.steps == 6
    assert texts == in_process
    assert len(in_process) == 6 * 4
    epochs = [in_process[i : i + 8] for i in range(0, len(in_process), 8)]
    assert all(len(set(epoch)) == 8 for epoch in epochs)  # no line twice within an epoch
    assert len({tuple(epoch) for epoch in epochs}) == 3  # each epoch in its own order


def test_fewer_lines_than_one_accumulated_step_still_train(tiny_base: Path, tmp_path: Path) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    run = config(max_steps=2, batch_size=4, grad_accum=2)  # a step would take 8 lines
    assert train(tiny_base, samples, [], run, tmp_path / "run").steps == 2
    with pytest.raises(ValueError, match="no training samples"):
        train(tiny_base, [], samples, run, tmp_path / "empty")


def test_a_run_killed_while_checkpointing_resumes_from_the_last_whole_checkpoint(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    run = config(max_steps=4, batch_size=2, checkpoint_every=1, eval_every=100)
    save = torch.save

    def killed_at_step_three(obj: Any, path: Path) -> None:
        if obj["state"]["step"] == 3:
            Path(path).write_bytes(b"PK\x03\x04 half a file")
            raise KeyboardInterrupt("killed")
        save(obj, path)

    monkeypatch.setattr(training.torch, "save", killed_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_base, samples, [], run, tmp_path / "run")
    monkeypatch.setattr(training.torch, "save", save)

    events: list[dict[str, object]] = []
    resumed = train(tiny_base, samples, [], run, tmp_path / "run", events.append)
    assert resumed.steps == 4
    assert [e["step"] for e in events if e["event"] == "step"] == [4]  # steps 3 and 4 only


def test_a_run_killed_between_the_renames_of_a_checkpoint_resumes_from_the_one_before(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    run = config(max_steps=4, batch_size=2, checkpoint_every=1, eval_every=100)
    rename = Path.rename
    swaps = {"checkpoint": 0}

    def killed_in_the_third_swap(self: Path, target: Path) -> Path:
        if self.name == "checkpoint.tmp":
            swaps["checkpoint"] += 1
            if swaps["checkpoint"] == 3:  # step 2's checkpoint moved aside, step 3's not in
                raise KeyboardInterrupt("killed")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", killed_in_the_third_swap)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_base, samples, [], run, tmp_path / "run")
    monkeypatch.setattr(Path, "rename", rename)
    assert not (tmp_path / "run" / "checkpoint").exists()

    events: list[dict[str, object]] = []
    resumed = train(tiny_base, samples, [], run, tmp_path / "run", events.append)
    assert resumed.steps == 4
    assert [e["step"] for e in events if e["event"] == "resumed"] == [2]


def test_a_resumed_run_keeps_a_better_model_saved_after_its_checkpoint(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [(word_image(w), w) for w in WORDS]
    run = config(max_steps=4, batch_size=2, eval_every=1, checkpoint_every=2)
    # Validation CER by step; the first run dies at step 4's validation, after the best model
    # (step 3) but two steps after its last checkpoint (step 2).
    first_run = iter([0.9, 0.8, 0.1])

    def scripted_then_killed(refs: object, hyps: object) -> float:
        value = next(first_run, None)
        if value is None:
            raise KeyboardInterrupt("killed")
        return value

    monkeypatch.setattr(training.metrics, "cer", scripted_then_killed)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_base, samples, samples, run, tmp_path / "run")
    best_weights = (tmp_path / "run" / "best" / "model.safetensors").read_bytes()

    second_run = iter([0.5, 0.6])
    monkeypatch.setattr(training.metrics, "cer", lambda refs, hyps: next(second_run))
    resumed = train(tiny_base, samples, samples, run, tmp_path / "run")
    assert (resumed.best_cer, resumed.best_step) == (0.1, 3)
    assert (tmp_path / "run" / "best" / "model.safetensors").read_bytes() == best_weights


def test_lines_are_prepared_for_training_as_the_engine_prepares_them(tiny_base: Path) -> None:
    processor = AutoImageProcessor.from_pretrained(tiny_base)
    ink = word_image("cat")
    transparent = Image.new("RGBA", ink.size, (0, 0, 0, 0))  # black, but see-through
    transparent.putalpha(ImageOps.invert(ink))
    flattened = training.pixel_values(processor, [transparent])
    assert torch.equal(flattened, training.pixel_values(processor, [ink.convert("RGB")]))
    assert torch.equal(
        flattened,
        processor(images=[np.array(to_rgb(transparent))], return_tensors="pt").pixel_values,
    )


def test_training_leaves_torchs_threads_and_random_state_as_it_found_them(
    tiny_base: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    samples = [(word_image(w), w) for w in WORDS]
    train(tiny_base, samples, [], config(max_steps=1, num_threads=1, seed=7), tmp_path / "run")
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.rand(3), expected)


def test_a_half_precision_checkpoint_trains_in_fp32(tiny_base: Path, tmp_path: Path) -> None:
    """A model shipped in fp16 (half the disk) must not be trained in fp16 on the CPU, where
    small updates round away."""
    model, tokenizer, image_processor = load_bundle(tiny_base)
    half = tmp_path / "half"
    model.half().save_pretrained(half)
    tokenizer.save_pretrained(half)
    image_processor.save_pretrained(half)

    reloaded, _, _ = load_bundle(half)

    assert {p.dtype for p in reloaded.parameters()} == {torch.float32}


def test_a_loss_that_is_not_a_number_stops_the_run_with_a_clear_error(
    tiny_base: Path, tmp_path: Path
) -> None:
    """As after a learning rate too high: the history is JSON, which holds no NaN, and the
    weights would be NaN from then on."""
    model = VisionEncoderDecoderModel.from_pretrained(tiny_base)
    with torch.no_grad():
        model.decoder.get_output_embeddings().weight[0, 0] = float("nan")
    model.save_pretrained(tiny_base)
    samples = [(word_image(w), w) for w in WORDS]
    with pytest.raises(training.Diverged, match="training loss is nan at step 1; lower"):
        train(tiny_base, samples, samples, config(max_steps=4), tmp_path / "run")


def test_a_run_that_stopped_early_stays_stopped_when_resumed(
    tiny_base: Path, tmp_path: Path
) -> None:
    """Its worker may die in the minutes of evaluation after training: the resumed run trained
    on, and its steps and model depended on when the worker died."""
    samples = [(word_image(w), w) for w in WORDS]
    flat = config(max_steps=40, learning_rate=1e-12, warmup_steps=0, eval_every=2, patience=1)
    first = train(tiny_base, samples, samples, flat, tmp_path / "run")
    assert first.stopped_early and first.steps == 4
    resumed = train(tiny_base, samples, samples, flat, tmp_path / "run")
    assert resumed.stopped_early and resumed.steps == 4
