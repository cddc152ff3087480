"""`python -m recognition.synth N OUT`: write N synthetic handwritten lines as an imagefolder."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from recognition.synth.dataset import SyntheticLines, write_imagefolder
from recognition.synth.fonts import HELD_OUT_FAMILIES, discover_fonts


def build_parser(prog: str = "python -m recognition.synth") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("count", type=int, help="number of lines")
    parser.add_argument("out", type=Path, help="output folder (PNGs and metadata.jsonl)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=56)
    parser.add_argument(
        "--held-out",
        action="store_true",
        help=f"use only the evaluation fonts ({', '.join(sorted(HELD_OUT_FAMILIES))})",
    )


def run(count: int, out: Path, seed: int = 0, max_chars: int = 56, held_out: bool = False) -> Path:
    lines = SyntheticLines(discover_fonts(held_out=held_out), count, seed=seed, max_chars=max_chars)
    return write_imagefolder(lines, out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metadata = run(args.count, args.out, args.seed, args.max_chars, args.held_out)
    print(metadata)
    return 0
