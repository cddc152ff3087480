"""Benchmark: naive per-line TrOCR inference against the engine, on CPU.

``python -m recognition.bench [--quick] [--ablation]``

Builds the ``microsoft/trocr-base-handwritten`` architecture with random
weights (no download), saves it like a real checkpoint, and transcribes the
same synthetic line images with beam 4, 4 returned sequences and a forced
output length of 24 tokens:

(a) the way the Hugging Face docs show it: one ``generate`` per line, fp32;
(b) the engine with its best CPU settings: int8 dynamic quantisation, batches
    of 8 lines sorted by width, beam sharing (``recognition.beam_sharing``),
    SDPA encoder attention, inference mode.

``--agreement MODEL FOLDER`` measures instead the accuracy cost of the tricks
on a trained model and real lines (top-1 agreement with fp32 one line at a
time, and CER).

``--ablation`` adds (c) the engine in fp32 (batching only) so the share of each
trick, and its effect on the output, can be read off. Every variant runs in its
own spawned process so its peak memory is its own. Top-1 agreement is measured
against (a); with random weights the output distribution is nearly flat, so
this is a pessimistic stand-in for the agreement on a trained model.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoImageProcessor,
    PreTrainedTokenizerFast,
    TrOCRConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessor,
)

from recognition.evaluate import read_metadata
from recognition.inference import NEUTRAL_SEARCH, recognize
from recognition.loading import LoadedModel, load_model
from recognition.metrics import cer
from recognition.preprocess import open_image

NUM_BEAMS = 4
NBEST = 4
OUTPUT_TOKENS = 24
BATCH_SIZE = 8
VOCAB_SIZE = 50265
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]

Transcriber = Callable[[Sequence[Image.Image]], list[str]]


@dataclass
class VariantResult:
    name: str
    seconds_per_line: float
    peak_rss_mib: float
    top1: list[str]


def build_trocr_base(out_dir: Path) -> Path:
    """trocr-base-handwritten's architecture (ViT-base 384 encoder, 12-layer
    d_model 1024 TrOCR decoder, RoBERTa-sized vocabulary), random weights."""
    encoder = ViTConfig(
        image_size=384,
        patch_size=16,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        qkv_bias=False,
    )
    decoder = TrOCRConfig(
        vocab_size=VOCAB_SIZE,
        d_model=1024,
        decoder_layers=12,
        decoder_attention_heads=16,
        decoder_ffn_dim=4096,
        max_position_embeddings=512,
        layernorm_embedding=True,
        scale_embedding=False,
        use_learned_position_embeddings=True,
        cross_attention_hidden_size=768,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    model.save_pretrained(out_dir)
    _vocabulary_tokenizer().save_pretrained(out_dir)
    ViTImageProcessor(
        size={"height": 384, "width": 384},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        resample=Image.Resampling.BILINEAR,
    ).save_pretrained(out_dir)
    return out_dir


def _vocabulary_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with the full 50265-entry vocabulary, so that
    decoding any generated id works as with the real one."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in sorted(alphabet):
        vocab[char] = len(vocab)
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(vocab) < VOCAB_SIZE:
        n = len(vocab)
        vocab[f"Ġ{letters[n % 26]}{letters[n // 26 % 26]}{letters[n // 676 % 26]}{n}"] = n
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def line_images(count: int, seed: int = 0) -> list[bytes]:
    """Synthetic text lines of varied length, as PNG bytes."""
    rng = random.Random(seed)
    words = [
        "the",
        "of",
        "and",
        "to",
        "in",
        "was",
        "his",
        "that",
        "it",
        "with",
        "as",
        "for",
        "had",
        "he",
        "by",
        "on",
        "at",
        "which",
    ]
    images = []
    for _ in range(count):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 14)))
        image = Image.new("L", (12 + 7 * len(text), 40), 245)
        ImageDraw.Draw(image).text((6, 14), text, fill=20)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def run_variant(name: str, model_dir: str, pngs: list[bytes]) -> VariantResult:
    """Runs in a fresh process; times transcription only, after one warm-up line."""
    torch.set_num_threads(os.cpu_count() or 1)
    images = [Image.open(io.BytesIO(data)).convert("RGB") for data in pngs]
    transcribe = _naive(model_dir) if name.startswith("(a)") else _engine(name, model_dir)
    transcribe(images[:1])
    start = time.perf_counter()
    top1 = transcribe(images)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return VariantResult(name, elapsed / len(images), peak_kib / 1024, top1)


def _naive(model_dir: str) -> Transcriber:
    processor = AutoImageProcessor.from_pretrained(model_dir)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    # fp32 as the engine computes on a CPU, whatever the checkpoint stores.
    model: Any = VisionEncoderDecoderModel.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()

    def transcribe(images: Sequence[Image.Image]) -> list[str]:
        texts = []
        for image in images:
            pixel_values = processor(images=image, return_tensors="pt").pixel_values
            generated = model.generate(
                pixel_values,
                num_beams=NUM_BEAMS,
                num_return_sequences=NBEST,
                max_new_tokens=OUTPUT_TOKENS,
                min_new_tokens=OUTPUT_TOKENS,
            )
            texts.append(tokenizer.batch_decode(generated, skip_special_tokens=True)[0].strip())
        return texts

    return transcribe


def _engine(name: str, model_dir: str) -> Transcriber:
    loaded = load_model(model_dir, device="cpu", quantize="int8" in name)
    # The engine hands generate() a min_new_tokens of its own (NEUTRAL_SEARCH), which wins
    # over the checkpoint's: a line could then end before 24 tokens, and the variants would
    # not do the same work. This process runs one variant only, so the engine's search is
    # changed for it here.
    NEUTRAL_SEARCH["min_new_tokens"] = OUTPUT_TOKENS

    def transcribe(images: Sequence[Image.Image]) -> list[str]:
        results = recognize(
            loaded,
            images,
            nbest=NBEST,
            num_beams=NUM_BEAMS,
            batch_size=BATCH_SIZE,
            max_new_tokens=OUTPUT_TOKENS,
        )
        return [r.best.text if r.best else "" for r in results]

    return transcribe


def agreement(model: str, folder: Path, field: str, lines: int) -> None:
    """Accuracy cost of the speed tricks on a trained model and real lines:
    top-1 agreement with one-by-one fp32 and corpus CER, greedy and beam 4."""
    samples = read_metadata(folder, field)[:lines]
    images = [open_image(folder / sample.file_name) for sample in samples]
    refs = [sample.reference for sample in samples]
    fp32 = load_model(model, device="cpu")
    int8 = load_model(model, device="cpu", quantize=True)
    print(f"{len(samples)} lines of {folder}, model {model}")
    print(f"{'setting':<34} {'top-1 = fp32 alone':>18} {'CER':>7}")
    for beams in (1, NUM_BEAMS):
        reference = _top1(fp32, images, beams, 1)
        for name, texts in (
            ("fp32, one line at a time", reference),
            (f"fp32, batch {BATCH_SIZE}", _top1(fp32, images, beams, BATCH_SIZE)),
            (f"int8, batch {BATCH_SIZE}", _top1(int8, images, beams, BATCH_SIZE)),
        ):
            same = sum(a == b for a, b in zip(reference, texts, strict=True))
            label = f"beam {beams}: {name}"
            print(f"{label:<34} {same:>14}/{len(samples):<3} {cer(refs, texts):>7.3f}")


def _top1(
    loaded: LoadedModel, images: Sequence[Image.Image], beams: int, batch_size: int
) -> list[str]:
    results = recognize(loaded, images, num_beams=beams, batch_size=batch_size)
    return [r.best.text if r.best else "" for r in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognition.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 lines instead of 32")
    parser.add_argument("--ablation", action="store_true", help="also run the engine in fp32")
    parser.add_argument(
        "--agreement",
        nargs=2,
        metavar=("MODEL", "FOLDER"),
        help="instead of timing, measure the accuracy cost of the tricks on a trained model "
        "and a folder in the evaluate layout",
    )
    parser.add_argument("--field", default="text", help="with --agreement: the reference field")
    parser.add_argument("--lines", type=int, default=64, help="with --agreement: lines to use")
    args = parser.parse_args(argv)
    if args.agreement:
        agreement(args.agreement[0], Path(args.agreement[1]), args.field, args.lines)
        return 0
    pngs = line_images(8 if args.quick else 32)
    variants = ["(a) naive: generate per line, fp32", f"(b) engine: int8, batch {BATCH_SIZE}"]
    if args.ablation:
        variants.append(f"(c) engine: fp32, batch {BATCH_SIZE}")
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="trocr-bench-") as tmp:
        model_dir = str(build_trocr_base(Path(tmp)))
        results = []
        for name in variants:
            with context.Pool(1) as pool:
                results.append(pool.apply(run_variant, (name, model_dir, pngs)))
    naive = results[0]
    print(
        f"{len(pngs)} lines, beam {NUM_BEAMS}, {NBEST} returned, {OUTPUT_TOKENS} tokens, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'variant':<40} {'s/line':>8} {'peak RSS MiB':>13} {'top-1 = (a)':>12} {'CER vs (a)':>11}"
    )
    for result in results:
        agree = sum(a == b for a, b in zip(naive.top1, result.top1, strict=True))
        print(
            f"{result.name:<40} {result.seconds_per_line:>8.3f} {result.peak_rss_mib:>13.0f} "
            f"{agree:>9}/{len(pngs):<2} {cer(naive.top1, result.top1):>11.3f}"
        )
    print(f"speedup: {naive.seconds_per_line / results[1].seconds_per_line:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
