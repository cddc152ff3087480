"""Generic fine-tuning of a VisionEncoderDecoder line recogniser.

Used both to build the starter model and by the retraining feature (from a Celery task), so it
takes plain samples and callbacks, knows nothing of Django, and can resume after an interruption.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    VisionEncoderDecoderModel,
)

import recognition.line_encoder  # noqa: F401  (registers the starter's encoder with Auto*)
from recognition import metrics
from recognition.forkserver import forkserver
from recognition.inference import NEUTRAL_SEARCH
from recognition.loading import (
    convolve_channels_last,
    cuda_has_native_bf16,
    max_new_tokens_for,
    resolve_device,
)
from recognition.preprocess import bounded_aspect, open_image, to_rgb
from recognition.text import nfc, one_line

Sample = tuple["Image.Image | str | Path", str]
BEST_RECORD = "best_cer.json"  # beside the best model: its validation CER and step
ProgressCallback = Callable[[dict[str, Any]], None]


class ModelBundle(Protocol):
    """What `recognition.loading.LoadedModel` provides; a directory path works as well."""

    model: Any
    tokenizer: Any
    image_processor: Any


# The scaler halves its scale at each overflow: from 2**16, this many in a row is no longer
# a scale too high.
FP16_OVERFLOWS_IN_A_ROW = 32


class Diverged(RuntimeError):
    """The loss stopped being a number: training on would only spread NaN through the weights."""


@dataclass
class TrainingConfig:
    epochs: int = 10
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 100
    train_encoder: bool = True  # False: decoder-only, far cheaper and safer on few lines
    shuffle: bool = True  # False keeps sample order, e.g. for a length curriculum
    eval_every: int = 200  # steps; validation also runs at the end
    eval_batch_size: int = 16
    max_new_tokens: int = 128
    patience: int | None = 5  # validations without a better CER before stopping
    ctc_weight: float = 0.0  # auxiliary CTC loss on the encoder's columns (line encoder, Swin)
    # Part of each target token's probability spread over the vocabulary: a model trained on
    # the same real lines stage after stage stops being pushed towards ever surer readings.
    label_smoothing: float = 0.0
    # Validate and keep an exponential moving average of the weights rather than the weights
    # themselves: past the point where a lower learning rate still helps, single steps only
    # move a trained model around its minimum, and their average sits nearer to it.
    ema_decay: float | None = None
    checkpoint_every: int = 500  # steps
    resume: bool = True
    seed: int = 0
    num_threads: int | None = None
    # bf16 autocast on the CPU: twice the samples per second on a CPU with native bf16
    # (AVX512-BF16, AMX). Where bf16 would be emulated (ten times slower than fp32 on an
    # AVX2 CPU here) training stays in fp32 and says so. Weights and optimizer stay fp32.
    cpu_bf16: bool = False
    log_every: int = 20
    # Processes that open, render and preprocess the next batches while the model trains: on a
    # GPU, rendering synthetic lines (about 70 a second in one process) is the bottleneck. 0 on
    # a small CPU, where a worker takes a core from training (`bench.training_data`: 0.73 times
    # the samples/s on 2 cores), and for the retraining task, since a Celery prefork worker is
    # a daemon and may not have children.
    num_workers: int = 0
    # Check the training texts for characters the tokenizer lacks; off for rendered streams,
    # whose texts cannot be read without rendering every image.
    check_train_chars: bool = True


@dataclass
class TrainingResult:
    model_dir: Path
    best_cer: float | None
    best_step: int
    steps: int
    added_chars: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    cancelled: bool = False
    wall_s: float = 0.0


@dataclass
class _State:
    step: int = 0
    best_cer: float | None = None
    best_step: int = 0
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # Kept with the checkpoint: a resumed run's tokenizer has them already, and finds none.
    added_chars: list[str] = field(default_factory=list)


def load_bundle(base: str | Path | ModelBundle) -> tuple[VisionEncoderDecoderModel, Any, Any]:
    """A model directory is loaded onto the GPU when there is one, in fp32 whatever the
    checkpoint's dtype (training keeps fp32 weights; autocast does the rest); a loaded bundle
    stays where it is."""
    if isinstance(base, str | Path):
        model = VisionEncoderDecoderModel.from_pretrained(base, dtype=torch.float32)
        torch.nn.Module.to(model, resolve_device(None))  # the typed wrapper on .to confuses mypy
        return model, AutoTokenizer.from_pretrained(base), AutoImageProcessor.from_pretrained(base)
    return base.model, base.tokenizer, base.image_processor


def find_unknown_chars(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[str]:
    """Characters the tokenizer cannot round-trip (mapped to unk, dropped, or altered).
    Each is tried between two letters: alone, a space (a no-break space too) would be taken
    for the word boundary a BPE tokenizer folds into its next token, and be passed over."""
    unknown = []
    for ch in sorted(set("".join(texts))):
        if ch == " ":
            continue
        ids = tokenizer(f"a{ch}a", add_special_tokens=False)["input_ids"]
        decoded = str(tokenizer.decode(ids, skip_special_tokens=True))
        if tokenizer.unk_token_id in ids or nfc(decoded) != nfc(f"a{ch}a"):
            unknown.append(ch)
    return unknown


def add_chars(model: VisionEncoderDecoderModel, tokenizer: Any, chars: Sequence[str]) -> None:
    if not chars:
        return
    tokenizer.add_tokens(list(chars))
    model.decoder.resize_token_embeddings(len(tokenizer))
    model.config.decoder.vocab_size = len(tokenizer)
    model.config.vocab_size = len(tokenizer)


def encode_labels(
    tokenizer: Any, texts: Sequence[str], start_id: int, max_len: int
) -> torch.Tensor:
    """Target ids padded with -100; the decoder start token is dropped and EOS ensured, which
    fits both a tokenizer that adds BOS (RoBERTa) and one that adds only EOS (the starter's)."""
    eos = tokenizer.eos_token_id
    rows = [
        ids[: max_len - 1] + [eos] if len(ids) > max_len else ids
        for ids in label_ids(tokenizer, texts, start_id)
    ]
    width = max(len(r) for r in rows)
    return torch.tensor([r + [-100] * (width - len(r)) for r in rows], dtype=torch.long)


def label_ids(tokenizer: Any, texts: Sequence[str], start_id: int) -> list[list[int]]:
    eos = tokenizer.eos_token_id
    rows = []
    for ids in tokenizer(list(texts))["input_ids"]:
        ids = list(ids)
        if ids and ids[0] == start_id:
            ids = ids[1:]
        if not ids or ids[-1] != eos:
            ids.append(eos)
        rows.append(ids)
    return rows


def fitting_labels(
    samples: Sequence[Sample], tokenizer: Any, start_id: int, max_len: int
) -> tuple[list[Sample], int]:
    """The samples whose labels fit `max_len` tokens, and how many did not: encode_labels
    cuts a longer one, which would teach the model to end a line there, and a reading cut
    short is not marked as cut, so it could be accepted unseen."""
    labels = label_ids(tokenizer, [text for _, text in samples], start_id)
    kept = [sample for sample, ids in zip(samples, labels, strict=True) if len(ids) <= max_len]
    return kept, len(samples) - len(kept)


def open_rgb(image: Image.Image | str | Path) -> Image.Image:
    """As the engine prepares a line (recognition.preprocess): transparency on paper white,
    16-bit scans scaled, EXIF orientation applied, slivers padded, a bad file an ImageError.
    A model trained on lines prepared otherwise would be validated on pictures it never
    reads."""
    return bounded_aspect(to_rgb(image) if isinstance(image, Image.Image) else open_image(image))


def pixel_values(image_processor: Any, images: Sequence[Image.Image | str | Path]) -> torch.Tensor:
    # Explicit HWC arrays, as the engine passes them: for an image 1 or 3 pixels wide the
    # processor would otherwise have to guess the channel axis.
    arrays = [np.array(open_rgb(i)) for i in images]
    return image_processor(arrays, return_tensors="pt", input_data_format="channels_last")[
        "pixel_values"
    ]


@dataclass(frozen=True)
class BatchEncoder:
    """Sample indices to model inputs (pixels, label ids); picklable, so that DataLoader workers
    can run it."""

    samples: Sequence[Sample]
    image_processor: Any
    tokenizer: Any
    start_id: int
    max_len: int

    def __call__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = [self.samples[i] for i in indices]
        return (
            pixel_values(self.image_processor, [image for image, _ in batch]),
            encode_labels(self.tokenizer, [text for _, text in batch], self.start_id, self.max_len),
        )


def micro_batches(
    encode: BatchEncoder, order: Sequence[int], first_step: int, steps: int, config: TrainingConfig
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The micro-batches of one epoch's `order` from optimizer step `first_step` on."""
    size = config.batch_size
    per_step = size * config.grad_accum
    starts = range(first_step * per_step, min(steps * per_step, len(order)), size)
    chunks = [order[i : i + size] for i in starts]
    if config.num_workers == 0:
        return map(encode, chunks)
    # batch_size=None: each chunk is already a batch, and the encoder is the collate function.
    loader: DataLoader[tuple[torch.Tensor, torch.Tensor]] = DataLoader(
        chunks,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_size=None,
        collate_fn=encode,
        num_workers=config.num_workers,
        prefetch_factor=4,
        multiprocessing_context=forkserver(),
    )
    return iter(loader)


@torch.no_grad()
def transcribe(
    model: VisionEncoderDecoderModel,
    tokenizer: Any,
    image_processor: Any,
    images: Sequence[Image.Image | str | Path],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    num_beams: int = 1,
) -> list[str]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    for i in range(0, len(images), batch_size):
        pixels = pixel_values(image_processor, images[i : i + batch_size]).to(device)
        # Validated the way the engine reads, so the CER that picks the best model is the
        # engine's: the checkpoint's decoding constraints off, within the decoder's positions.
        ids = cast(Any, model).generate(
            pixels,
            max_new_tokens=max_new_tokens_for(model, max_new_tokens),
            num_beams=num_beams,
            **NEUTRAL_SEARCH,
        )
        # As the engine keeps a reading (token_spans): one line, composed, stripped.
        out.extend(
            nfc(one_line(t)).strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)
        )
    model.train(was_training)
    return out


class CTCHead(nn.Module):
    """Reads the encoder's feature map column by column; the alignment CTC forces on it is what
    teaches a from-scratch encoder to localise characters early, before cross-attention can."""

    def __init__(self, hidden: int, vocab: int) -> None:
        super().__init__()
        self.blank = vocab
        self.proj = nn.Linear(hidden, vocab + 1)

    def loss(
        self, hidden: torch.Tensor, grid: tuple[int, int], labels: torch.Tensor, eos: int
    ) -> torch.Tensor:
        batch, _, channels = hidden.shape
        columns = hidden.reshape(batch, grid[0], grid[1], channels).mean(1)
        log_probs = self.proj(columns).float().log_softmax(-1).transpose(0, 1)
        keep = (labels >= 0) & (labels != eos)
        targets = labels[keep]
        lengths = keep.sum(1)
        inputs = torch.full((batch,), columns.shape[1], dtype=torch.long)
        return nn.functional.ctc_loss(
            log_probs, targets, inputs, lengths, blank=self.blank, zero_infinity=True
        )


def _grid(model: VisionEncoderDecoderModel, pixels: torch.Tensor) -> tuple[Any, tuple[int, int]]:
    outputs = model.encoder(pixel_values=pixels, output_hidden_states=True)
    reshaped = getattr(outputs, "reshaped_hidden_states", None)
    if not reshaped:
        raise ValueError("ctc_weight needs an encoder with a 2-D feature map (line encoder, Swin)")
    return outputs, (int(reshaped[-1].shape[2]), int(reshaped[-1].shape[3]))


def _decoder_loss(outputs: Any, labels: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    if not config.label_smoothing:
        return cast(torch.Tensor, outputs.loss)
    # As VisionEncoderDecoderModel computes its loss (padding is -100), smoothed.
    logits = outputs.logits
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=-100,
        label_smoothing=config.label_smoothing,
    )


def _train_mode(model: VisionEncoderDecoderModel, config: TrainingConfig) -> None:
    """A frozen encoder stays in eval mode, or its batch-norm statistics would still drift."""
    model.train()
    if not config.train_encoder:
        model.encoder.eval()


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.05, 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _order(n: int, epoch: int, config: TrainingConfig) -> list[int]:
    if not config.shuffle:
        return list(range(n))
    order = list(range(n))
    random.Random(config.seed * 7919 + epoch).shuffle(order)
    return order


def _save_model(
    path: Path,
    model: Any,
    tokenizer: Any,
    image_processor: Any,
    add_files: Callable[[Path], object] | None = None,
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    image_processor.save_pretrained(tmp)
    if add_files is not None:
        add_files(tmp)
    _swap(tmp, path)


def _recall_best(state: _State, record: Path) -> None:
    """A better model may have been kept after the last checkpoint (validation runs more often
    than checkpoints): without this, a resumed run would overwrite it with a worse one and
    report the checkpoint's best instead of the one in best/."""
    if not record.exists():
        return
    best = json.loads(record.read_text())
    if state.best_cer is None or best["cer"] < state.best_cer:
        state.best_cer, state.best_step = float(best["cer"]), int(best["step"])


def _swap(tmp: Path, path: Path) -> None:
    """Replace a directory so that a crash leaves either the old or the new one, never half
    (a crash between the two renames leaves the old one under its `.old` name:
    `_recover_swap` puts it back)."""
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def _recover_swap(path: Path) -> None:
    old = path.with_name(path.name + ".old")
    if old.exists() and not path.exists():
        old.rename(path)


def _save_checkpoint(
    out_dir: Path, bundle: tuple[Any, Any, Any], extra: dict[str, Any], state: _State
) -> None:
    # Saved with the weights, before the swap: a kill at any moment leaves the previous
    # checkpoint or this one, each whole, never weights without their optimizer state.
    _save_model(
        out_dir / "checkpoint",
        *bundle,
        add_files=lambda tmp: torch.save(
            {"state": asdict(state), **extra}, tmp / "trainer_state.pt"
        ),
    )


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _amp(
    device: torch.device, cpu_bf16: bool
) -> tuple[torch.autocast | None, torch.amp.GradScaler | None]:
    if device.type == "cpu" and cpu_bf16 and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16), None
    if device.type != "cuda":
        return None, None
    if cuda_has_native_bf16(device):
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def train(
    base: str | Path | ModelBundle,
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    config: TrainingConfig,
    out_dir: str | Path,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[Path, int], object] | None = None,
) -> TrainingResult:
    """Fine-tune `base` and keep the model with the lowest validation CER in `out_dir/best`.

    A checkpoint in `out_dir/checkpoint` is resumed when `config.resume` is set (reported as a
    `{"event": "resumed", "step": N}` before the first step trained again). `on_checkpoint`
    is called with the checkpoint's folder and step each time one is saved whole. Torch's thread
    count and random state are the caller's again afterwards: a worker that trains and then
    reads lines must not read them on the training's threads and seed.
    """
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng():
            return _train(
                base,
                train_samples,
                val_samples,
                config,
                out_dir,
                on_progress,
                should_cancel,
                on_checkpoint,
            )
    finally:
        torch.set_num_threads(threads)


def _train(
    base: str | Path | ModelBundle,
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    config: TrainingConfig,
    out_dir: str | Path,
    on_progress: ProgressCallback | None,
    should_cancel: Callable[[], bool] | None,
    on_checkpoint: Callable[[Path, int], object] | None,
) -> TrainingResult:
    if not train_samples:
        raise ValueError("no training samples")
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    checkpoint = out_dir / "checkpoint"
    _recover_swap(checkpoint)
    _recover_swap(out_dir / "best")
    resuming = config.resume and (checkpoint / "trainer_state.pt").exists()
    if resuming and not isinstance(base, str | Path):
        # The checkpoint is trained on, not the base, which the caller still holds: on a GPU
        # its copy took as much memory again, and a run that had just fitted ran out of it
        # at every resume.
        base.model.to("cpu")
    model, tokenizer, image_processor = load_bundle(checkpoint if resuming else base)
    start_id = model.config.decoder_start_token_id
    if start_id is None or model.config.pad_token_id is None:
        raise ValueError("the model config needs decoder_start_token_id and pad_token_id")

    texts = [t for _, t in train_samples] if config.check_train_chars else []
    texts += [t for _, t in val_samples]
    added = find_unknown_chars(tokenizer, texts)
    add_chars(model, tokenizer, added)
    label_length = max_new_tokens_for(model, config.max_new_tokens)
    if config.check_train_chars:
        train_samples, too_long = fitting_labels(train_samples, tokenizer, start_id, label_length)
        if not train_samples:
            raise ValueError(f"every training line is longer than {label_length} tokens")

    device = next(model.parameters()).device
    convolve_channels_last(model, device)
    _train_mode(model, config)
    if not config.train_encoder:
        model.encoder.requires_grad_(False)
    ctc = CTCHead(model.encoder.config.hidden_size, len(tokenizer)) if config.ctc_weight else None
    params = [p for p in model.parameters() if p.requires_grad]
    if ctc is not None:
        ctc.to(device)
        params += list(ctc.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    # Batch norm's running statistics are averaged with the weights they go with.
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        if config.ema_decay
        else None
    )
    per_step = config.batch_size * config.grad_accum
    steps_per_epoch = max(1, len(train_samples) // per_step)
    total = config.max_steps or config.epochs * steps_per_epoch
    state = _State()
    if resuming:
        saved = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
        state = _State(**saved["state"])
        _recall_best(state, out_dir / "best" / BEST_RECORD)
        optimizer.load_state_dict(saved["optimizer"])
        if ctc is not None and saved.get("ctc") is not None:
            ctc.load_state_dict(saved["ctc"])
        if ema is not None and saved.get("ema") is not None:
            ema.load_state_dict(saved["ema"])
    state.added_chars = [*state.added_chars, *added]
    autocast, scaler = _amp(device, config.cpu_bf16)

    def report(event: dict[str, Any]) -> None:
        if on_progress is not None:
            on_progress(event)

    if config.check_train_chars and too_long:
        report(
            {
                "event": "warning",
                "message": "training lines left out as longer than the "
                f"{label_length} tokens the model writes at most (they would teach it to "
                f"stop there): {too_long}",
            }
        )
    if config.cpu_bf16 and device.type == "cpu" and autocast is None:
        report({"event": "warning", "message": "this CPU has no native bf16: training in fp32"})
    if resuming:
        report({"event": "resumed", "step": state.step})

    def validate() -> bool:
        """Run validation; True when patience is exhausted."""
        if not val_samples:
            return False
        kept = cast(VisionEncoderDecoderModel, ema.module) if ema is not None else model
        hyps = transcribe(
            kept,
            tokenizer,
            image_processor,
            [i for i, _ in val_samples],
            config.eval_batch_size,
            config.max_new_tokens,
        )
        # As the gate and the benchmarks count, so that the numbers shown agree.
        cer = metrics.cer([t for _, t in val_samples], hyps)
        event = {
            "event": "eval",
            "step": state.step,
            "cer": cer,
            "example": hyps[0] if hyps else "",
        }
        state.history.append(event)
        if state.best_cer is None or cer < state.best_cer:
            state.best_cer, state.best_step, state.bad_evals = cer, state.step, 0
            best = {"cer": cer, "step": state.step}
            _save_model(
                out_dir / "best",
                kept,
                tokenizer,
                image_processor,
                add_files=lambda tmp: (tmp / BEST_RECORD).write_text(json.dumps(best)),
            )
        else:
            state.bad_evals += 1
        report({**event, "best_cer": state.best_cer})
        return out_of_patience()

    def out_of_patience() -> bool:
        return config.patience is not None and state.bad_evals >= config.patience

    def checkpoint_now() -> None:
        extra = {
            "optimizer": optimizer.state_dict(),
            "ctc": ctc.state_dict() if ctc else None,
            "ema": ema.state_dict() if ema else None,
        }
        _save_checkpoint(out_dir, (model, tokenizer, image_processor), extra, state)
        if on_checkpoint is not None:
            on_checkpoint(checkpoint, state.step)

    # A run resumed after it had stopped early (its worker died while evaluating) is over.
    stopped_early, cancelled = out_of_patience(), False
    overflows = 0
    window_loss, window_samples, window_start = 0.0, 0, time.monotonic()
    encode = BatchEncoder(train_samples, image_processor, tokenizer, start_id, label_length)
    order_epoch = -1
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(())
    while state.step < total and not (stopped_early or cancelled):
        epoch, offset = divmod(state.step, steps_per_epoch)
        if epoch != order_epoch:
            order = _order(len(train_samples), epoch, config)
            order_epoch = epoch
            batches = micro_batches(encode, order, offset, steps_per_epoch, config)
        # Fewer micro-batches than grad_accum when there are fewer lines than one step takes.
        step_batches = list(itertools.islice(batches, config.grad_accum))
        for pixels, labels in step_batches:
            pixels, labels = pixels.to(device), labels.to(device)
            with autocast or nullcontext():
                if ctc is not None:
                    encoded, grid = _grid(model, pixels)
                    loss = _decoder_loss(
                        model(encoder_outputs=encoded, labels=labels), labels, config
                    )
                    ctc_loss = ctc.loss(
                        encoded.last_hidden_state, grid, labels, tokenizer.eos_token_id
                    )
                    loss = loss + config.ctc_weight * ctc_loss
                else:
                    loss = _decoder_loss(model(pixel_values=pixels, labels=labels), labels, config)
            finite = math.isfinite(loss.item())
            overflows = 0 if finite else overflows + 1
            # With fp16 the scaler skips a step that overflowed and scales down; a loss that
            # stays non-finite however far it scales down has diverged.
            if not finite and (scaler is None or overflows > FP16_OVERFLOWS_IN_A_ROW):
                raise Diverged(
                    f"the training loss is {loss.item()} at step {state.step + 1}; "
                    "lower the learning rate or train the decoder only"
                )
            scaled = loss / len(step_batches)
            (scaler.scale(scaled) if scaler else scaled).backward()
            if finite:
                window_loss += loss.item() * len(labels)
                window_samples += len(labels)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * _lr_factor(state.step, config.warmup_steps, total)
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update_parameters(model)
        state.step += 1
        if state.step % config.log_every == 0 or state.step == total:
            elapsed = time.monotonic() - window_start
            event = {
                "event": "step",
                "step": state.step,
                "total_steps": total,
                # None: every batch of the window overflowed in fp16 and was skipped.
                "loss": window_loss / window_samples if window_samples else None,
                "lr": optimizer.param_groups[0]["lr"],
                "samples_per_s": window_samples / max(elapsed, 1e-9),
            }
            state.history.append(event)
            report(event)
            window_loss, window_samples, window_start = 0.0, 0, time.monotonic()
        if state.step % config.eval_every == 0 or state.step == total:
            stopped_early = validate()
            _train_mode(model, config)
        if should_cancel is not None and should_cancel():
            cancelled = True
        if state.step % config.checkpoint_every == 0 or cancelled or stopped_early:
            checkpoint_now()
    checkpoint_now()
    if not (out_dir / "best").exists():
        _save_model(out_dir / "best", ema.module if ema else model, tokenizer, image_processor)
    return TrainingResult(
        model_dir=out_dir / "best",
        best_cer=state.best_cer,
        best_step=state.best_step,
        steps=state.step,
        added_chars=state.added_chars,
        history=state.history,
        stopped_early=stopped_early,
        cancelled=cancelled,
        wall_s=time.monotonic() - started,
    )
