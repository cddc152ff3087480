"""How fast training data arrives, with and without loading workers, and what that does to
pretraining the starter model on this machine.

    python -m bench.training_data [--workers N] [--lines 640] [--steps 30]

prints the lines per second that rendering and preprocessing synthetic lines deliver in the
training process alone (`data_in_process_lines_per_s`) and with N worker processes
(`data_workers_lines_per_s`, their ratio `data_speedup`): the ceiling of any training run,
however fast its GPU. Then the samples per second of `--steps` pretraining steps of the starter
model without and with workers (`train_speedup`), on this machine's CPU or GPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from recognition.starter import PRETRAIN_MAX_CHARS, STARTER_DIR, pretrain_config
from recognition.synth.dataset import SyntheticLines
from recognition.synth.fonts import discover_fonts
from recognition.training import BatchEncoder, load_bundle, micro_batches, train


def data_rate(lines: SyntheticLines, encode: BatchEncoder, workers: int, batch: int) -> float:
    config = replace(pretrain_config(1, 1), batch_size=batch, num_workers=workers)
    steps = len(lines) // batch
    started = time.perf_counter()
    delivered = sum(
        len(labels) for _, labels in micro_batches(encode, range(len(lines)), 0, steps, config)
    )
    return delivered / (time.perf_counter() - started)


def train_rate(lines: SyntheticLines, steps: int, workers: int, threads: int) -> float:
    config = replace(
        pretrain_config(steps, threads, num_workers=workers), log_every=steps, eval_every=10**9
    )
    steps_seen: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as out:
        train(STARTER_DIR, lines, [], config, Path(out), steps_seen.append)
    return float(next(e["samples_per_s"] for e in steps_seen if e["event"] == "step"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument(
        "--lines", type=int, default=640, help="lines rendered per data measurement"
    )
    parser.add_argument("--steps", type=int, default=30, help="training steps per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    args = parser.parse_args(argv)

    model, tokenizer, image_processor = load_bundle(STARTER_DIR)
    fonts = discover_fonts()
    lines = SyntheticLines(fonts, args.lines, seed=99, max_chars=PRETRAIN_MAX_CHARS)
    encode = BatchEncoder(
        lines, image_processor, tokenizer, model.config.decoder_start_token_id, 64
    )
    alone = data_rate(lines, encode, 0, 16)
    parallel = data_rate(lines, encode, args.workers, 16)
    print(f"data_in_process_lines_per_s: {alone:.0f}")
    print(f"data_workers_lines_per_s: {parallel:.0f} ({args.workers} workers)")
    print(f"data_speedup: {parallel / alone:.2f}")

    stream = SyntheticLines(fonts, args.steps * 16, seed=98, max_chars=PRETRAIN_MAX_CHARS)
    without = train_rate(stream, args.steps, 0, args.threads)
    with_workers = train_rate(stream, args.steps, args.workers, args.threads)
    print(f"train_in_process_samples_per_s: {without:.1f}")
    print(f"train_workers_samples_per_s: {with_workers:.1f} ({args.workers} workers)")
    print(f"train_speedup: {with_workers / without:.2f}")


if __name__ == "__main__":
    main()
