"""The floor any recogniser must beat: Tesseract 5 on the same line crops.

    python -m bench.tesseract_floor ../shared/data/lathrop_stanford/lines --split test
prints `cer: 0.XXX`. Needs Debian's `tesseract-ocr` (only for this measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from recognition.metrics import cer


def tesseract(image: Path, psm: int, lang: str) -> str:
    result = subprocess.run(
        ["tesseract", str(image), "-", "--psm", str(psm), "-l", lang],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    return " ".join(result.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="imagefolder with metadata.jsonl")
    parser.add_argument("--split", default="test")
    parser.add_argument("--field", default="text_plain")
    parser.add_argument("--psm", type=int, default=7)
    parser.add_argument("--lang", default="eng")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.folder / "metadata.jsonl").open(encoding="utf-8")]
    rows = [r for r in rows if args.split in ("", r.get("split"))]
    refs = [r[args.field] for r in rows]
    hyps = [tesseract(args.folder / r["file_name"], args.psm, args.lang) for r in rows]
    print(f"lines: {len(rows)}")
    print(f"cer: {cer(refs, hyps):.3f}")


if __name__ == "__main__":
    main()
