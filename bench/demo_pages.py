"""The demo as a user sees it: every line of the pages in demo/lathrop/, cut from the page by
its ALTO polygon as ingestion cuts it, read by a model, against the ALTO's text.

    python -m bench.demo_pages [MODEL] [--num-beams 4] [--output var/eval/demo.jsonl]
prints each page's CER and, last, `cer: 0.XXX` over all lines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ocrreview.corpus.xmlimport import parse_layout_xml
from recognition.inference import recognize
from recognition.loading import STARTER_MODEL_DIR, load_model
from recognition.metrics import cer
from recognition.preprocess import crop_line, open_image

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo" / "lathrop"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", nargs="?", default=str(STARTER_MODEL_DIR))
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--output", type=Path, help="per-line results (JSON lines)")
    args = parser.parse_args()
    loaded = load_model(args.model, device="cpu", local_files_only=True)
    refs: list[str] = []
    hyps: list[str] = []
    rows = []
    for xml in sorted(DEMO_DIR.glob("*.xml")):
        layout = parse_layout_xml(xml.read_bytes(), xml.name)
        page = open_image(xml.with_suffix(".jpg"))
        lines = [line for line in layout.lines if line.text and line.polygon]
        crops = [crop_line(page, polygon=line.polygon) for line in lines]
        results = recognize(loaded, crops, num_beams=args.num_beams, max_new_tokens=128)
        page_refs = [line.text for line in lines]
        page_hyps = [r.best.text if r.best else "" for r in results]
        print(f"{xml.stem}: {len(lines)} lines, cer {cer(page_refs, page_hyps):.3f}")
        refs += page_refs
        hyps += page_hyps
        rows += [
            {"page": xml.stem, "reference": ref, "prediction": hyp}
            for ref, hyp in zip(page_refs, page_hyps, strict=True)
        ]
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    print(f"lines: {len(refs)}")
    print(f"cer: {cer(refs, hyps):.3f}")


if __name__ == "__main__":
    main()
