"""Score a model on a folder of line images.

``python -m recognition.evaluate MODEL FOLDER [--field text_plain] [--split test]``

FOLDER holds the images and a ``metadata.jsonl`` whose rows name an image
(``file_name``, relative to FOLDER) and its reference text (``--field``, by
default ``text``), the Hugging Face "imagefolder" layout; ``--split`` keeps the
rows whose ``split`` field has that value, ``--where FIELD=VALUE`` those whose FIELD does. The per-line results go to
``--output`` when given (data folders are often read-only); corpus-level WER and
CER are printed, CER last as ``cer: 0.XXX``. A line whose image cannot be read
counts as an empty transcription.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from recognition.inference import LineResult, recognize
from recognition.loading import LoadedModel, load_model
from recognition.metrics import cer, wer
from recognition.preprocess import ImageError, open_image

# Lines decoded and held in memory at once; bounds memory on large folders.
CHUNK = 256


@dataclass(frozen=True)
class Sample:
    file_name: str
    reference: str


def read_metadata(
    folder: Path, field: str, split: str | None = None, where: Mapping[str, str] | None = None
) -> list[Sample]:
    path = folder / "metadata.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found")
    samples = []
    with path.open(encoding="utf-8") as rows:
        for number, row in enumerate(rows, start=1):
            if not row.strip():
                continue
            record = json.loads(row)
            # A null text would be scored as the reference "None".
            if "file_name" not in record or not isinstance(record.get(field), str):
                raise SystemExit(f"{path}:{number} lacks 'file_name' or a text in {field!r}")
            if split is not None and record.get("split") != split:
                continue
            if any(
                key not in record or _as_text(record[key]) != value
                for key, value in (where or {}).items()
            ):
                continue
            samples.append(Sample(str(record["file_name"]), record[field]))
    if not samples:
        raise SystemExit(
            f"{path} lists no lines"
            + (f" in split {split!r}" if split else "")
            + (f" where {dict(where)}" if where else "")
        )
    return samples


def _as_text(value: Any) -> str:
    """A metadata value as a --where condition writes it (JSON's true, not Python's True)."""
    return value if isinstance(value, str) else json.dumps(value)


def transcribe(
    loaded: LoadedModel, folder: Path, samples: Sequence[Sample], **options: Any
) -> Iterator[tuple[Sample, LineResult]]:
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start : start + CHUNK]
        opened: list[Image.Image | LineResult] = []
        for sample in chunk:
            try:
                opened.append(open_image(folder / sample.file_name))
            except ImageError as exc:
                opened.append(LineResult(error=str(exc)))
        images = [item for item in opened if isinstance(item, Image.Image)]
        recognised = iter(recognize(loaded, images, **options))
        for sample, item in zip(chunk, opened, strict=True):
            yield sample, item if isinstance(item, LineResult) else next(recognised)


def prediction_row(sample: Sample, result: LineResult) -> dict[str, Any]:
    best = result.best
    prediction = best.text if best else ""
    return {
        "file_name": sample.file_name,
        "reference": sample.reference,
        "prediction": prediction,
        "confidence": best.confidence if best else None,
        "line_cer": cer([sample.reference], [prediction]) if sample.reference.strip() else None,
        "error": result.error,
        "hypotheses": [
            {"text": h.text, "confidence": h.confidence, "share": h.share}
            for h in result.hypotheses
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognition.evaluate", description=__doc__)
    parser.add_argument("model", help="hub id or local model directory")
    parser.add_argument("folder", type=Path, help="folder with metadata.jsonl and the images")
    parser.add_argument("--field", default="text", help="reference text field (default: text)")
    parser.add_argument("--split", help="keep only rows whose 'split' field has this value")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="keep only rows whose FIELD has this value (e.g. script=typed); repeatable",
    )
    parser.add_argument("--output", type=Path, help="write per-line results (JSON lines) here")
    parser.add_argument("--revision")
    parser.add_argument("--device")
    parser.add_argument("--quantize", action="store_true", help="int8 dynamic quantisation (CPU)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--nbest", type=int, default=1)
    parser.add_argument("--num-beams", type=int)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--calibration", type=Path, help="JSON file with a calibration fit")
    args = parser.parse_args(argv)

    if any("=" not in condition for condition in args.where):
        parser.error("--where takes FIELD=VALUE")
    where = dict(condition.split("=", 1) for condition in args.where)
    if len(where) != len(args.where):
        parser.error("--where names a field twice; a row has one value per field")
    samples = read_metadata(args.folder, args.field, args.split, where)
    loaded = load_model(
        args.model, revision=args.revision, device=args.device, quantize=args.quantize
    )
    fit = json.loads(args.calibration.read_text()) if args.calibration else None
    refs, hyps, failed = [], [], 0
    with args.output.open("w", encoding="utf-8") if args.output else nullcontext() as out:
        for sample, result in transcribe(
            loaded,
            args.folder,
            samples,
            nbest=args.nbest,
            num_beams=args.num_beams,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            calibration=fit,
        ):
            row = prediction_row(sample, result)
            if out is not None:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            refs.append(sample.reference)
            hyps.append(row["prediction"])
            failed += result.error is not None
    print(f"lines: {len(samples)} ({failed} failed)")
    if args.output:
        print(f"predictions: {args.output}")
    print(f"wer: {wer(refs, hyps):.3f}")
    print(f"cer: {cer(refs, hyps):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
