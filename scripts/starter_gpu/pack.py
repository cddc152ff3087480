"""Pack the starter's training data for a GPU machine whose working tree may hold 64 MiB.

    python scripts/starter_gpu/pack.py   # writes .gpu1/data.zip and .gpu2/data.zip

htr_lines is re-encoded at the model's input height (40 px, the image processor's own bilinear
resampling, grayscale WebP at quality 85) in two halves that travel in two calls: `.gpu1` with
the training fonts, `.gpu2` with every validation line the recipe reads, the Lathrop `train`
rows (never the `test` letters) and the wheels. WebP at 40 px costs accuracy (the stage-7 model
read 60 validation lines at CER 0.225 from 40 px lossless, 0.257 at quality 80, 0.294 at 55),
so the device's validation numbers read higher than this machine's on the original images.
"""

import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, ".")
from recognition.starter import (  # noqa: E402
    HTR_LINES,
    LATHROP_LINES,
    REAL_VALIDATION_LINES,
    every_nth,
)
from recognition.synth.fonts import discover_fonts  # noqa: E402

HEIGHT, QUALITY = 40, 85
PARTS = (Path(".gpu1"), Path(".gpu2"))


def webp(path: Path) -> bytes:
    image = Image.open(path).convert("L")
    width = max(1, round(image.width * HEIGHT / image.height))
    buffer = io.BytesIO()
    image.resize((width, HEIGHT), Image.Resampling.BILINEAR).save(
        buffer, "WEBP", quality=QUALITY, method=6
    )
    return buffer.getvalue()


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def main() -> None:
    for folder in PARTS:
        folder.mkdir(exist_ok=True)
    first, second = (zipfile.ZipFile(p / "data.zip", "w", zipfile.ZIP_STORED) for p in PARTS)
    rows = [json.loads(line) for line in (HTR_LINES / "metadata.jsonl").open(encoding="utf-8")]
    validation = every_nth([r for r in rows if r["split"] == "validation"], REAL_VALIDATION_LINES)
    kept = []
    for i, row in enumerate([r for r in rows if r["split"] == "train"] + validation):
        part, archive = (1, second) if row["split"] == "validation" or i % 2 else (0, first)
        name = f"htr/{Path(row['file_name']).with_suffix('.webp')}"
        archive.writestr(name, webp(HTR_LINES / row["file_name"]))
        fields = {k: row[k] for k in ("text_plain", "page", "script", "split")}
        kept.append({"file_name": f"../../{PARTS[part].name}/{name}", **fields})
    second.writestr("htr_lines/metadata.jsonl.gz", gzip.compress(jsonl(kept)))
    for name in ("chars.tsv", "NOTICE.md"):
        second.write(HTR_LINES / name, f"htr_lines/{name}")
    lathrop = []
    for line in (LATHROP_LINES / "metadata.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        if row["split"] == "train":
            name = str(Path(row["file_name"]).with_suffix(".webp"))
            second.writestr(f"lathrop/{name}", webp(LATHROP_LINES / row["file_name"]))
            lathrop.append({**row, "file_name": name})
    second.writestr("lathrop/metadata.jsonl", jsonl(lathrop))
    for font in discover_fonts(printed=None):
        first.write(font.path, f"fonts/{font.path.name}")
    first.close()
    second.close()
    print(f"packed {len(kept)} htr_lines rows and {len(lathrop)} Lathrop train rows")


if __name__ == "__main__":
    main()
