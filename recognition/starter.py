"""Reproduce the offline starter model: pretrain on synthetic lines, adapt to real lines, export.

    python -m recognition.starter pretrain --work var/starter --steps 7200
    python -m recognition.starter pretrain --work var/starter2 --init MODEL --steps N --lr 5e-4
    python -m recognition.starter finetune --work var/starter --lines ../shared/data/lathrop_stanford/lines
    python -m recognition.starter real --work var/real --source recognition/starter_model --steps N
    python -m recognition.starter export --work var/starter
    python -m recognition.starter cpu-time --folder LINES [--split test]  # CPU s/line, beam 4

Every stage resumes from `WORK/<stage>/checkpoint` when interrupted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from torch.utils.data import ConcatDataset, Dataset

from recognition.architectures import StarterSpec, create_starter_base, grow_starter
from recognition.augment import AugmentedLines
from recognition.synth.dataset import SyntheticLines
from recognition.synth.fonts import discover_fonts
from recognition.training import (
    Sample,
    TrainingConfig,
    add_chars,
    find_unknown_chars,
    load_bundle,
    open_rgb,
    train,
)

STARTER_DIR = Path(__file__).with_name("starter_model")
DEMO_DIR = Path(__file__).parent.parent / "demo" / "lathrop"
HTR_LINES = Path("../shared/data/htr_lines")
LATHROP_LINES = Path("../shared/data/lathrop_stanford/lines")
IMAGES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})


def _log(path: Path) -> Any:
    def on_progress(event: dict[str, Any]) -> None:
        line = json.dumps({"time": time.strftime("%H:%M:%S"), **event})
        print(line, flush=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")

    return on_progress


# Real lines hold at most 36 characters in nine cases out of ten; longer synthetic lines would
# be shrunk below the model's height to fit its width.
PRETRAIN_MAX_CHARS = 44


def pretrain_config(
    steps: int, num_threads: int, learning_rate: float = 1e-3, num_workers: int = 0
) -> TrainingConfig:
    return TrainingConfig(
        max_steps=steps,
        batch_size=16,
        learning_rate=learning_rate,
        weight_decay=0.05,
        warmup_steps=300,
        shuffle=False,  # SyntheticLines orders its items as a length curriculum
        eval_every=400,
        max_new_tokens=64,
        patience=None,
        ctc_weight=1.0,
        checkpoint_every=100,
        num_threads=num_threads,
        cpu_bf16=True,
        check_train_chars=False,
        num_workers=num_workers,
    )


def pretrain(
    work: Path,
    steps: int,
    num_threads: int,
    seed: int = 0,
    init: Path | None = None,
    learning_rate: float = 1e-3,
    num_workers: int = 0,
) -> Path:
    """Train on synthetic lines from a fresh starter, or go on training `init` (say, with
    fonts it has not seen) under another seed, so it meets new lines."""
    base = init or work / "base"
    if init is None and not (base / "config.json").exists():
        create_starter_base(base, StarterSpec(), seed=seed)
    config = pretrain_config(steps, num_threads, learning_rate, num_workers)
    fonts = discover_fonts()
    samples = steps * config.batch_size
    # A model that reads whole lines already needs no curriculum from short words.
    train_lines = SyntheticLines(
        fonts,
        samples,
        seed=seed,
        max_chars=PRETRAIN_MAX_CHARS,
        curriculum=0 if init else samples // 4,
    )
    # Validation uses the training fonts with another seed: the held-out fonts are for the
    # final evaluation only, never for choosing a checkpoint.
    val_lines = SyntheticLines(fonts, 64, seed=seed + 10_000, max_chars=PRETRAIN_MAX_CHARS)
    val = [val_lines[i] for i in range(len(val_lines))]
    result = train(base, train_lines, val, config, work / "pretrain", _log(work / "pretrain.log"))
    return result.model_dir


def read_imagefolder(
    folder: Path, split: str | None, field: str = "text_plain"
) -> list[dict[str, Any]]:
    rows = []
    with (folder / "metadata.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if split is None or row.get("split") == split:
                rows.append(
                    {
                        **row,
                        "path": folder / row["file_name"],
                        "label": row.get(field) or row["text"],
                    }
                )
    return rows


def split_by_page(
    rows: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Hold out whole pages, as the dataset's own split holds out whole letters."""
    pages = sorted({str(r.get("page", r["file_name"])) for r in rows})
    random.Random(seed).shuffle(pages)
    held = set(pages[: max(1, int(len(pages) * fraction))])
    train_set = [
        (r["path"], r["label"]) for r in rows if str(r.get("page", r["file_name"])) not in held
    ]
    val_set = [(r["path"], r["label"]) for r in rows if str(r.get("page", r["file_name"])) in held]
    return train_set, val_set


def finetune_config(epochs: int, num_threads: int) -> TrainingConfig:
    return TrainingConfig(
        epochs=epochs,
        batch_size=8,
        learning_rate=5e-4,
        weight_decay=0.05,
        warmup_steps=20,
        eval_every=40,
        max_new_tokens=72,
        patience=5,
        ctc_weight=1.0,
        checkpoint_every=40,
        num_threads=num_threads,
        cpu_bf16=True,
    )


def finetune(
    work: Path,
    lines: Path,
    epochs: int,
    synthetic_mix: int,
    num_threads: int,
    base: Path | None = None,
    seed: int = 0,
    copies: int = 6,
    exclude_pages: Sequence[str] = (),
) -> Path:
    """Adapt to real lines of the `train` split only; the `test` split is never read here, nor
    lines of pages whose names end with one of `exclude_pages`."""
    rows = [
        row
        for row in read_imagefolder(lines, split="train")
        if not str(row.get("page", "")).endswith(tuple(exclude_pages))
    ]
    train_set, val_set = split_by_page(rows, 0.15, seed)
    # Some synthetic lines keep the model from forgetting how to read while it adapts.
    synth = SyntheticLines(
        discover_fonts(), synthetic_mix, seed=seed + 20_000, max_chars=PRETRAIN_MAX_CHARS
    )
    real = AugmentedLines(train_set, copies, seed=seed)
    mixed: list[Sample] = [real[i] for i in range(len(real))] + [
        synth[i] for i in range(len(synth))
    ]
    result = train(
        base or work / "pretrain" / "best",
        mixed,
        val_set,
        finetune_config(epochs, num_threads),
        work / "finetune",
        _log(work / "finetune.log"),
    )
    return result.model_dir


# Real lines run to 85 characters in 99 cases out of a hundred: at 40 px high that is about
# 1,300 px, twice what the first starter's 640 px held without shrinking the writing.
REAL_SPEC = StarterSpec(image_width=1280, context_layers=4)
REAL_MAX_CHARS = 80
REAL_VALIDATION_LINES = 300


def real_config(
    steps: int,
    num_threads: int,
    learning_rate: float,
    batch_size: int = 16,
    num_workers: int = 0,
    ctc_weight: float = 1.0,
    ema_decay: float | None = None,
) -> TrainingConfig:
    """The pretraining recipe, over real lines: shuffled (no curriculum), longer lines.
    The vocabulary is grown from chars.tsv beforehand, so the texts are not read first
    (that would augment every line once before the first step)."""
    return replace(
        pretrain_config(steps, num_threads, learning_rate, num_workers),
        batch_size=batch_size,
        warmup_steps=200,
        shuffle=True,
        eval_every=500,
        eval_batch_size=32,
        max_new_tokens=REAL_SPEC.max_length,
        ctc_weight=ctc_weight,
        ema_decay=ema_decay,
    )


def grown_base(
    source: Path,
    out_dir: Path,
    chars: str,
    context_layers: int = REAL_SPEC.context_layers,
    dropout: float | None = None,
) -> Path:
    """`source` widened to REAL_SPEC and deepened to `context_layers` (a no-op for a model
    already that size), with every character of `chars` in its vocabulary, and `dropout` (if
    given) in its encoder's and decoder's transformer layers. Made once per work folder, whole
    or not at all; a later run from another source is refused rather than training the old
    base."""
    record = out_dir / "grown_from.txt"
    if (out_dir / "config.json").exists():
        if record.exists() and record.read_text(encoding="utf-8") != str(source.resolve()):
            raise ValueError(
                f"{out_dir} was grown from {record.read_text(encoding='utf-8')}, not {source}; "
                "use another --work folder"
            )
        return out_dir
    model, tokenizer, _ = load_bundle(source)
    image_processor = grow_starter(model, REAL_SPEC.image_width, context_layers)
    add_chars(model, tokenizer, find_unknown_chars(tokenizer, list(chars)))
    if dropout is not None:
        # Read when the layers are built, so it takes effect when train() loads this base.
        model.config.encoder.dropout = model.config.decoder.dropout = dropout
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    image_processor.save_pretrained(partial)
    (partial / record.name).write_text(str(source.resolve()), encoding="utf-8")
    partial.rename(out_dir)
    return out_dir


def every_nth(rows: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """An even spread over the rows, which the metadata orders by source and page."""
    step = max(1, len(rows) // count)
    return list(rows[::step][:count])


def train_real(
    work: Path,
    source: Path,
    steps: int,
    num_threads: int,
    learning_rate: float = 5e-4,
    copies: int = 4,
    synthetic: int = 30_000,
    seed: int = 0,
    htr: Path = HTR_LINES,
    lathrop: Path = LATHROP_LINES,
    exclude_pages: Sequence[str] = (),
    context_layers: int = REAL_SPEC.context_layers,
    batch_size: int = 16,
    num_workers: int = 0,
    ctc_weight: float = 1.0,
    ema_decay: float | None = None,
    validation_lines: int = REAL_VALIDATION_LINES,
    dropout: float | None = None,
    label_smoothing: float = 0.0,
    train_encoder: bool = True,
) -> Path:
    """Go on training `source` on the real lines of htr_lines and the Lathrop `train` split
    (less the demo pages), augmented, mixed with synthetic lines in handwritten and printed
    faces. Validation: an even spread of htr_lines' own validation split and the Lathrop
    pages held out from training; the Lathrop `test` split is never read."""
    htr_rows = read_imagefolder(htr, split="train")
    lathrop_train, _ = _lathrop_split(lathrop, exclude_pages)
    real: list[Sample] = [(r["path"], r["label"]) for r in htr_rows] + lathrop_train
    val = validation_samples(htr, lathrop, exclude_pages, validation_lines)
    chars = (htr / "chars.tsv").read_text(encoding="utf-8").splitlines()[1:]
    base = grown_base(
        source,
        work / "base",
        "".join(line.split("\t")[0] for line in chars),
        context_layers,
        dropout,
    )
    streams: list[Sequence[Sample]] = [
        AugmentedLines(real, copies, seed=seed),
        SyntheticLines(
            discover_fonts(printed=False),
            synthetic,
            seed=seed + 30_000,
            max_chars=REAL_MAX_CHARS,
        ),
        # Typed pages are a minority of the real lines and of archives' typed letters.
        SyntheticLines(
            discover_fonts(printed=True),
            synthetic // 2,
            seed=seed + 40_000,
            max_chars=REAL_MAX_CHARS,
        ),
    ]
    # ConcatDataset needs only len() and [] of its parts and offers them itself, which is all
    # that train() reads of a Sequence.
    lines = cast(Sequence[Sample], ConcatDataset(cast("list[Dataset[Sample]]", streams)))
    config = replace(
        real_config(
            steps, num_threads, learning_rate, batch_size, num_workers, ctc_weight, ema_decay
        ),
        seed=seed,
        label_smoothing=label_smoothing,
        train_encoder=train_encoder,
    )
    result = train(base, lines, val, config, work / "real", _log(work / "real.log"))
    return result.model_dir


def _lathrop_split(
    lathrop: Path, exclude_pages: Sequence[str]
) -> tuple[list[Sample], list[Sample]]:
    rows = [
        row
        for row in read_imagefolder(lathrop, split="train")
        if not str(row.get("page", "")).endswith(tuple(exclude_pages))
    ]
    # The same pages are held out whatever the seed, so that stages' validations compare.
    return split_by_page(rows, 0.15, seed=0)


def validation_samples(
    htr: Path, lathrop: Path, exclude_pages: Sequence[str], count: int
) -> list[Sample]:
    """The lines that choose a real stage's model: an even spread of `count` of htr_lines'
    validation split, and the Lathrop pages held out from training."""
    htr_val = every_nth(read_imagefolder(htr, split="validation"), count)
    return [(r["path"], r["label"]) for r in htr_val] + _lathrop_split(lathrop, exclude_pages)[1]


def calibrate(model_dir: Path, samples: Sequence[Sample], nbest: int = 5) -> dict[str, Any]:
    """Platt-fit the model's line confidences on `samples` and write the fit beside its
    weights (CALIBRATION_FILE), where the app takes it for the starter's model version. Read
    as a collection's workers read by default (beam search over five, 96 new tokens): a fit
    on other readings would misstate their confidences, and the review threshold compares
    the calibrated ones."""
    from recognition.calibration import fit_calibration
    from recognition.inference import recognize
    from recognition.loading import CALIBRATION_FILE, load_model

    loaded = load_model(str(model_dir), device="cpu", local_files_only=True)
    pairs: list[tuple[float, bool]] = []
    for start in range(0, len(samples), 64):
        chunk = samples[start : start + 64]
        results = recognize(loaded, [open_rgb(image) for image, _ in chunk], nbest=nbest)
        pairs += [
            (result.best.raw_confidence, result.best.text == text)
            for result, (_, text) in zip(results, chunk, strict=True)
            if result.best is not None
        ]
    fit = fit_calibration(pairs)
    (model_dir / CALIBRATION_FILE).write_text(json.dumps(fit, indent=2) + "\n", encoding="utf-8")
    return fit


def export(source: Path, out_dir: Path = STARTER_DIR, *, fp16: bool = False) -> Path:
    """Copy a trained model into the repository, keeping the model card. `fp16` halves the
    weights' size on disk (the issue's 30 MB); the engine loads them in fp32 on a CPU, and
    training always does."""
    model, tokenizer, image_processor = load_bundle(source)
    if fp16:
        model.half()
    card = out_dir / "MODEL_CARD.md"
    kept = card.read_text(encoding="utf-8") if card.exists() else None
    shutil.rmtree(out_dir, ignore_errors=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    image_processor.save_pretrained(out_dir)
    if kept is not None:
        card.write_text(kept, encoding="utf-8")
    return out_dir


def cpu_time_per_line(
    model_dir: Path, folder: Path, split: str | None = None, num_beams: int = 4
) -> float:
    """CPU seconds per line for the engine on one thread, the way a small worker runs it."""
    import torch

    from recognition.inference import recognize
    from recognition.loading import load_model
    from recognition.preprocess import open_image

    torch.set_num_threads(1)
    loaded = load_model(str(model_dir), device="cpu", local_files_only=True)
    rows = read_imagefolder(folder, split=split)
    images = [open_image(r["path"]) for r in rows]
    recognize(loaded, images[:2], num_beams=num_beams)  # warm-up, not timed
    started = time.process_time()
    recognize(loaded, images, num_beams=num_beams, batch_size=8)
    return (time.process_time() - started) / len(images)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognition.starter", description=__doc__)
    parser.add_argument(
        "stage", choices=["pretrain", "finetune", "real", "export", "calibrate", "cpu-time"]
    )
    parser.add_argument("--work", type=Path, default=Path("var/starter"))
    parser.add_argument("--steps", type=int, default=7200, help="pretraining optimizer steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="pretrain, real: processes rendering the next lines while the model trains; on a GPU "
        "machine its CPU cores less one, since rendering is then the bottleneck; 0 on a small "
        "CPU, where a worker slows training down",
    )
    parser.add_argument("--init", type=Path, help="pretrain: go on training this model")
    parser.add_argument(
        "--lr", type=float, help="peak learning rate (default: pretrain 1e-3, real 5e-4)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="pretrain, real: seed of the lines and their order"
    )
    parser.add_argument(
        "--lines", type=Path, default=LATHROP_LINES, help="finetune, real: the Lathrop lines"
    )
    parser.add_argument("--htr", type=Path, default=HTR_LINES, help="real: the htr_lines folder")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=16,
        help="real: lines per optimizer step (16 on a CPU; more on a GPU, with a higher --lr)",
    )
    parser.add_argument(
        "--ctc-weight",
        type=float,
        default=1.0,
        help="real: weight of the auxiliary CTC loss; its head is not shipped and starts "
        "untrained, so a stage going on from a trained model may do better with 0",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        help="real: validate and keep a moving average of the weights with this decay per step",
    )
    parser.add_argument(
        "--validation-lines",
        type=int,
        default=REAL_VALIDATION_LINES,
        help="real, calibrate: htr_lines validation lines that choose the best model (and "
        "calibrate it), an even spread "
        "(the split has 921; stages 12 to 27 were chosen on 300)",
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--copies", type=int, help="augmented variants per real line (finetune 6, real 4)"
    )
    parser.add_argument(
        "--synthetic-mix", type=int, help="synthetic lines mixed in (finetune 300, real 30000)"
    )
    parser.add_argument(
        "--exclude-pages-of",
        type=Path,
        default=DEMO_DIR,
        help="finetune: never train on lines of the page images in this folder (default: the "
        "demo pages, so the demo shows what the model does on pages it has not seen)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        help="finetune: start from this model; export, calibrate, cpu-time: this model",
    )
    parser.add_argument(
        "--context-layers",
        type=int,
        default=REAL_SPEC.context_layers,
        help="real: grow the encoder to this many transformer layers, each added one starting "
        "as the identity",
    )
    parser.add_argument(
        "--dropout",
        type=float,
        help="real: dropout of the encoder's and decoder's transformer layers (default: the "
        "source's own, 0.1 for the starter)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="real: share of each target token's probability spread over the vocabulary",
    )
    parser.add_argument(
        "--decoder-only",
        action="store_true",
        help="real: train the decoder alone, the encoder frozen with its batch-norm statistics",
    )
    parser.add_argument("--out", type=Path, default=STARTER_DIR)
    parser.add_argument("--fp16", action="store_true", help="export: store the weights in fp16")
    parser.add_argument(
        "--folder",
        type=Path,
        help="cpu-time: imagefolder of line images (default: the test split of --lines)",
    )
    parser.add_argument(
        "--split", help="cpu-time: only the rows of this split (default without --folder: test)"
    )
    args = parser.parse_args(argv)
    demo_pages = [p.name for p in args.exclude_pages_of.iterdir() if p.suffix.lower() in IMAGES]
    # Options left out take each stage's own default.
    lr = {"learning_rate": args.lr} if args.lr is not None else {}
    copies = {"copies": args.copies} if args.copies is not None else {}
    mix = args.synthetic_mix
    if args.stage == "pretrain":
        print(
            pretrain(
                args.work,
                args.steps,
                args.threads,
                args.seed,
                args.init,
                **lr,
                num_workers=args.workers,
            )
        )
    elif args.stage == "finetune":
        print(
            finetune(
                args.work,
                args.lines,
                args.epochs,
                300 if mix is None else mix,
                args.threads,
                args.source,
                exclude_pages=demo_pages,
                **copies,
            )
        )
    elif args.stage == "real":
        synthetic = {"synthetic": mix} if mix is not None else {}
        print(
            train_real(
                args.work,
                args.source or STARTER_DIR,
                args.steps,
                args.threads,
                exclude_pages=demo_pages,
                seed=args.seed,
                context_layers=args.context_layers,
                batch_size=args.batch_size,
                num_workers=args.workers,
                ctc_weight=args.ctc_weight,
                ema_decay=args.ema_decay,
                validation_lines=args.validation_lines,
                dropout=args.dropout,
                label_smoothing=args.label_smoothing,
                train_encoder=not args.decoder_only,
                htr=args.htr,
                lathrop=args.lines,
                **lr,
                **copies,
                **synthetic,
            )
        )
    elif args.stage == "calibrate":
        samples = validation_samples(args.htr, args.lines, demo_pages, args.validation_lines)
        fit = calibrate(args.source or STARTER_DIR, samples)
        print(json.dumps(fit))
    elif args.stage == "cpu-time":
        # By default the Lathrop test lines, on which the model card measures the speed.
        folder, split = (
            (args.folder, args.split) if args.folder else (args.lines, args.split or "test")
        )
        seconds = cpu_time_per_line(args.source or STARTER_DIR, folder, split)
        print(f"cpu_s_per_line_beam4: {seconds:.3f}")
    else:
        print(export(args.source or args.work / "finetune" / "best", args.out, fp16=args.fp16))
    return 0


if __name__ == "__main__":
    sys.exit(main())
