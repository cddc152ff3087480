"""Building a fine-tuning dataset from a collection's ground truth.

One export is one zip under MEDIA_ROOT/exports/ holding, for the same lines and the same
train/validation/test split, every format asked for:

- ``imagefolder/<split>/`` line PNGs and ``metadata.jsonl`` (what TrOCR fine-tuning recipes read,
  and what ``load_dataset("imagefolder")`` and the training task read);
- ``hf/`` a ``datasets.DatasetDict`` written with ``save_to_disk``, and ``parquet/<split>.parquet``;
- ``page/`` and ``alto/`` one XML file per page next to the page image;
- ``text/`` one plain-text file per document;
- ``export.json`` the filters, counts and split of every line.
"""

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery
from PIL import Image as PILImage

from ocrreview.corpus.models import Collection, Line, Page
from ocrreview.review.models import Correction
from ocrreview.training import splits
from ocrreview.training.models import DatasetExport, EvaluationSplit
from ocrreview.training.xmlformats import Alternative, XmlLine, XmlPage, alto_xml, page_xml
from ocrreview.transcription.models import Hypothesis
from recognition.preprocess import ImageError, crop_line, open_image

FORMATS = {
    "imagefolder": "Image folder with metadata.jsonl",
    "hf": "Hugging Face dataset (save_to_disk and Parquet)",
    "page": "PAGE XML per page",
    "alto": "ALTO v4 per page",
    "text": "Plain text per document",
}
UNITS = [choice for choice, _ in EvaluationSplit.Unit.choices]
# The actions that settle a line's text; the last one names the line's reviewer.
READING_ACTIONS = [
    Correction.Action.ACCEPT,
    Correction.Action.EDIT,
    Correction.Action.PICK,
    Correction.Action.REVERT,
    Correction.Action.IMPORT,
]

ProgressCallback = Callable[[float], None]


class ExportError(ValueError):
    """The export cannot be built as asked; the message is meant for the admin who asked."""


@dataclass
class ExportOptions:
    documents: list[int] = field(default_factory=list)  # empty: the whole collection
    include_auto_accepted: bool = False
    min_confidence: float = 0.95
    unit: str = EvaluationSplit.Unit.DOCUMENT
    seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    formats: list[str] = field(default_factory=lambda: list(FORMATS))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown:
            raise ExportError(f"unknown export formats: {', '.join(unknown)}")
        if not self.formats:
            raise ExportError("choose at least one export format")
        if self.unit not in UNITS:
            raise ExportError(f"split unit must be one of {', '.join(UNITS)}, not {self.unit!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ExportError(f"min_confidence must be between 0 and 1, not {self.min_confidence}")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ExportError(f"{name} must be between 0 and 1, not {value}")

    def filters(self) -> dict:
        values = asdict(self)
        del values["formats"]
        return values

    @classmethod
    def of(cls, export: DatasetExport) -> "ExportOptions":
        return cls(**export.filters, formats=list(export.formats))


def ground_truth_lines(collection: Collection, options: ExportOptions) -> QuerySet[Line]:
    accepted = Q(status=Line.Status.REVIEWED)
    if options.include_auto_accepted:
        accepted |= Q(status=Line.Status.AUTO_ACCEPTED, confidence__gte=options.min_confidence)
    lines = Line.objects.filter(accepted, collection=collection).exclude(text="")
    if options.documents:
        lines = lines.filter(document__in=options.documents)
    last_reader = Correction.objects.filter(line=OuterRef("pk"), action__in=READING_ACTIONS)
    last_reader = last_reader.order_by("-created_at", "-id").values("user__username")[:1]
    return (
        lines.select_related("document", "page", "model_version")
        .annotate(reviewer=Subquery(last_reader))
        .order_by("document_id", "page__index", "order", "id")
    )


def export_file(export: DatasetExport) -> Path:
    return Path(settings.MEDIA_ROOT) / export.path


def build_export(export: DatasetExport, on_progress: ProgressCallback) -> dict:
    """Write the export's zip and return its counts; sets ``path`` and ``checksum``."""
    options = ExportOptions.of(export)
    collection = export.collection
    lines = list(ground_truth_lines(collection, options))
    if not lines:
        raise ExportError(
            "no ground-truth lines match these filters: review some lines first"
            + ("" if options.include_auto_accepted else " or include auto-accepted lines")
        )
    split = splits.freeze_evaluation_split(
        collection,
        unit=options.unit,
        seed=options.seed,
        fraction=options.test_fraction,
        user=export.created_by,
    )
    assignment = splits.assign_splits(
        lines,
        split,
        unit=options.unit,
        seed=options.seed,
        validation_fraction=options.validation_fraction,
    )
    with tempfile.TemporaryDirectory(prefix=f"export-{export.pk}-") as tmp:
        root = Path(tmp) / "dataset"
        rows = _write_line_images(lines, assignment, collection, root, on_progress)
        counts = _counts(lines, assignment)
        if "hf" in options.formats:
            _write_hf(rows, root)
        by_page = _group_by_page(lines)
        if "page" in options.formats or "alto" in options.formats:
            _write_xml(by_page, options.formats, root)
        if "text" in options.formats:
            _write_text(lines, root)
        if "imagefolder" not in options.formats:
            shutil.rmtree(root / "imagefolder")
        manifest = {
            "collection": collection.name,
            "licence": collection.licence,
            "filters": options.filters(),
            "formats": options.formats,
            "evaluation_split": {"frozen_at": split.frozen_at.isoformat(), "unit": split.unit},
            "counts": counts,
            "lines": {str(pk): name for pk, name in assignment.items()},
        }
        (root / "export.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        on_progress(0.9)
        export.path, export.checksum = _zip(root, export.pk)
    return counts


def line_image(line: Line, page_images: dict[int, PILImage.Image]) -> PILImage.Image:
    """The line cut from its page; ``page_images`` caches the page being read."""
    if line.page_id not in page_images:
        page_images.clear()  # lines come page by page; keep one decoded page in memory
        with line.page.image.open("rb") as handle:
            page_images[line.page_id] = open_image(handle.read())
    page_image = page_images[line.page_id]
    if len(line.polygon) >= 3:
        return crop_line(page_image, polygon=[tuple(p) for p in line.polygon])
    return crop_line(page_image, bbox=tuple(line.bbox))


def _write_line_images(
    lines: list[Line],
    assignment: dict[int, str],
    collection: Collection,
    root: Path,
    on_progress: ProgressCallback,
) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {name: [] for name in splits.SPLITS}
    page_images: dict[int, PILImage.Image] = {}
    for done, line in enumerate(lines, start=1):
        split_name = assignment[line.pk]
        if split_name == splits.HELD_OUT:
            continue
        try:
            image = line_image(line, page_images)
        except (ImageError, OSError) as exc:
            raise ExportError(f"line {line.pk} of {line.page}: {exc}") from exc
        folder = root / "imagefolder" / split_name
        folder.mkdir(parents=True, exist_ok=True)
        file_name = f"line-{line.pk}.png"
        image.save(folder / file_name)
        rows[split_name].append(
            {
                "file_name": file_name,
                "text": line.text,
                "line_id": line.pk,
                "document_id": line.document_id,
                "document": line.document.title,
                "page_id": line.page_id,
                "page": line.page.index,
                "model_version": line.model_version.name if line.model_version else "",
                "reviewer": line.reviewer or "",
                "status": line.status,
                "confidence": line.confidence,
                "licence": collection.licence,
            }
        )
        if done % 20 == 0:
            on_progress(0.7 * done / len(lines))
    for split_name, split_rows in rows.items():
        if split_rows:
            with (root / "imagefolder" / split_name / "metadata.jsonl").open("w") as out:
                for row in split_rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


def _counts(lines: list[Line], assignment: dict[int, str]) -> dict:
    counts = {name: 0 for name in (*splits.SPLITS, splits.HELD_OUT)}
    for name in assignment.values():
        counts[name] += 1
    counts["lines"] = len(lines)
    counts["documents"] = len({line.document_id for line in lines})
    counts["pages"] = len({line.page_id for line in lines})
    counts["characters"] = sum(len(line.text) for line in lines)
    counts["reviewed"] = sum(line.status == Line.Status.REVIEWED for line in lines)
    counts["auto_accepted"] = counts["lines"] - counts["reviewed"]
    return counts


def _write_hf(rows: dict[str, list[dict]], root: Path) -> None:
    from datasets import Dataset, DatasetDict, Features, Image, Value, disable_progress_bars

    disable_progress_bars()  # they would fill the worker's log with carriage returns

    features = Features(
        {
            "image": Image(),
            "text": Value("string"),
            "line_id": Value("int64"),
            "document_id": Value("int64"),
            "document": Value("string"),
            "page_id": Value("int64"),
            "page": Value("int64"),
            "model_version": Value("string"),
            "reviewer": Value("string"),
            "status": Value("string"),
            "confidence": Value("float64"),
            "licence": Value("string"),
        }
    )
    parts = {}
    for split_name, split_rows in rows.items():
        if not split_rows:
            continue
        folder = root / "imagefolder" / split_name
        columns: dict[str, list] = {name: [] for name in features}
        for row in split_rows:
            for name in features:
                if name != "image":
                    columns[name].append(row[name])
            # Bytes, not paths, so the saved dataset carries its images wherever it goes.
            png = (folder / row["file_name"]).read_bytes()
            columns["image"].append({"bytes": png, "path": row["file_name"]})
        parts[split_name] = Dataset.from_dict(columns, features=features)
    dataset = DatasetDict(parts)
    dataset.save_to_disk(str(root / "hf"))
    (root / "parquet").mkdir()
    for split_name, part in dataset.items():
        part.to_parquet(str(root / "parquet" / f"{split_name}.parquet"))


def _group_by_page(lines: list[Line]) -> dict[Page, list[Line]]:
    pages: dict[Page, list[Line]] = {}
    for line in lines:
        pages.setdefault(line.page, []).append(line)
    return pages


def _alternatives(lines: list[Line]) -> dict[int, list[Alternative]]:
    found: dict[int, list[Alternative]] = {}
    hypotheses = Hypothesis.objects.filter(
        line__in=[line.pk for line in lines if line.model_version_id is not None]
    ).order_by("line_id", "rank")
    current = {line.pk: line.model_version_id for line in lines}
    for hypothesis in hypotheses:
        if hypothesis.model_version_id == current[hypothesis.line_id]:
            confidence = hypothesis.calibrated_confidence
            if confidence is None:
                confidence = hypothesis.confidence
            found.setdefault(hypothesis.line_id, []).append(
                Alternative(hypothesis.text, confidence)
            )
    return found


def _write_xml(by_page: dict[Page, list[Line]], formats: list[str], root: Path) -> None:
    for page, page_lines in by_page.items():
        stem = f"document-{page.document_id}-page-{page.index + 1:04d}"
        image_name = stem + Path(page.image.name).suffix.lower()
        alternatives = _alternatives(page_lines)
        xml_page = XmlPage(
            image_filename=image_name,
            width=page.width,
            height=page.height,
            lines=[
                XmlLine(
                    id=line.pk,
                    text=line.text,
                    confidence=line.confidence,
                    bbox=line.bbox,
                    polygon=line.polygon,
                    baseline=line.baseline,
                    alternatives=alternatives.get(line.pk, []),
                )
                for line in page_lines
            ],
        )
        with page.image.open("rb") as handle:
            image_bytes = handle.read()
        for name in ("page", "alto"):
            if name not in formats:
                continue
            folder = root / name
            folder.mkdir(exist_ok=True)
            (folder / image_name).write_bytes(image_bytes)
            xml = page_xml(xml_page) if name == "page" else alto_xml(xml_page, f"p{page.pk}")
            (folder / f"{stem}.xml").write_bytes(xml)


def _write_text(lines: list[Line], root: Path) -> None:
    folder = root / "text"
    folder.mkdir()
    documents: dict[int, list[Line]] = {}
    for line in lines:
        documents.setdefault(line.document_id, []).append(line)
    for document_id, document_lines in documents.items():
        text = "\n".join(line.text for line in document_lines) + "\n"
        (folder / f"document-{document_id}.txt").write_text(text, encoding="utf-8")


def _zip(root: Path, export_id: int) -> tuple[str, str]:
    relative = f"exports/{export_id}.zip"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".zip.part")
    digest = hashlib.sha256()
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                # PNGs and Parquet are compressed already; deflating them again costs time only.
                stored = path.suffix in (".png", ".jpg", ".jpeg", ".parquet", ".arrow")
                archive.write(
                    path,
                    path.relative_to(root).as_posix(),
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                )
    with partial.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    partial.replace(target)
    return relative, digest.hexdigest()


def read_split(export: DatasetExport, split_name: str, into: Path) -> list[tuple[Path, str]]:
    """Unpack one split's line images from an export; returns (image path, text) pairs."""
    prefix = f"imagefolder/{split_name}/"
    samples = []
    with zipfile.ZipFile(export_file(export)) as archive:
        names = set(archive.namelist())
        if prefix + "metadata.jsonl" not in names:
            return []
        for raw in io.TextIOWrapper(archive.open(prefix + "metadata.jsonl"), encoding="utf-8"):
            row = json.loads(raw)
            target = into / split_name / row["file_name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(prefix + row["file_name"]))
            samples.append((target, row["text"]))
    return samples
