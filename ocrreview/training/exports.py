"""Building a fine-tuning dataset from a collection's ground truth.

One export is one zip in storage, ``exports/<id>-<claim>.zip``, holding, for the same lines and
the same train/validation/test split, every format asked for:

- ``imagefolder/<split>/`` line PNGs and ``metadata.jsonl`` (what TrOCR fine-tuning recipes read,
  and what ``load_dataset("imagefolder")`` and the training task read);
- ``hf/`` a ``datasets.DatasetDict`` as ``save_to_disk`` lays it out, and
  ``parquet/<split>.parquet``;
- ``page/`` and ``alto/`` one XML file per page next to the page image;
- ``text/`` one plain-text file per document;
- ``export.json`` the filters, counts and split of every line.

It is written as a stream, so that a worker's memory does not grow with the collection: lines
come from the database in chunks and in reading order, one page image is decoded at a time, and
each line image is cropped, encoded and written to the zip and to the Hugging Face files before
the next one; a page's XML and a document's text are written when the next page or document
begins; what is kept for every line is its id and its split. The zip is a temporary file until
it is whole; then it goes to storage (in parts, on S3).
"""

import bisect
import hashlib
import io
import json
import secrets
import shutil
import tempfile
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from PIL import Image as PILImage

from ocrreview import storage
from ocrreview.corpus.iiif_export import attribution_of, rights_of
from ocrreview.corpus.models import Collection, Document, Line, Page, iiif_json_through
from ocrreview.corpus.names import clean_name
from ocrreview.corpus.xmlformats import Alternative, XmlLine, XmlPage, alto_xml, page_xml
from ocrreview.corpus.zipstream import ZipWriter
from ocrreview.review.models import Correction
from ocrreview.training import splits
from ocrreview.training.models import DatasetExport, EvaluationSplit, EvaluationSplitChange
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
READING_ORDER = ("document_id", "page__index", "order", "id")
CHUNK = 1000  # lines fetched from the database at a time
# Rows per Arrow record batch and Parquet row group: what datasets itself uses for images.
HF_BATCH = 100
HF_SHARD = "data-00000-of-00001.arrow"
# Compressed already: deflating them again costs time only.
STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".parquet", ".arrow")


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

    def described(self) -> list[str]:
        """The filters as an admin reads them on the export's page, not as they are stored."""
        if self.documents:
            titles = Document.objects.filter(pk__in=self.documents).order_by("title")
            titles = list(titles.values_list("title", flat=True))
            gone = len(set(self.documents)) - len(titles)
            chosen = "Only these documents: " + ", ".join(titles)
            if gone:
                chosen += f"{', and ' if titles else ''}{gone} deleted since"
        else:
            chosen = "All documents"
        if self.include_auto_accepted:
            # min_confidence only sorts the auto-accepted lines: reviewed ones are all taken.
            threshold = _percent(self.min_confidence)
            accepted = f"Auto-accepted lines taken in when read at {threshold} confidence or more"
        else:
            accepted = "Auto-accepted lines left out: only lines a person reviewed"
        unit = EvaluationSplit.Unit(self.unit).label.lower()
        training = 1 - self.validation_fraction - self.test_fraction
        split = (
            f"Split by {unit}: {_percent(training)} training, "
            f"{_percent(self.validation_fraction)} validation, {_percent(self.test_fraction)} "
            f"test (seed {self.seed})"
        )
        formats = "Formats: " + ", ".join(FORMATS[name] for name in self.formats)
        return [chosen, accepted, split, formats]


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g} %"


def split_sentences(export: DatasetExport) -> list[str]:
    """How a finished export split its lines, against the shares asked, and what it did to the
    collection's evaluation split, as sentences for its page."""
    counts = export.counts
    if not all(isinstance(counts.get(name), int) for name in splits.SPLITS):
        return []
    sentences = []
    assigned = sum(counts[name] for name in splits.SPLITS)
    info = counts.get("split") or {}
    try:
        options = ExportOptions.of(export)
    except ExportError:
        options = None
    if assigned:
        achieved = ", ".join(
            f"{_percent(counts[name] / assigned)} {name}" for name in splits.SPLITS
        )
        sentence = f"Achieved: {achieved} of {assigned} lines"
        if options is not None:
            asked = (
                1 - options.validation_fraction - options.test_fraction,
                options.validation_fraction,
                options.test_fraction,
            )
            sentence = (
                "Asked: "
                + ", ".join(
                    f"{_percent(share)} {name}"
                    for name, share in zip(splits.SPLITS, asked, strict=True)
                )
                + f". {sentence}"
            )
        unit = info.get("unit")
        if unit:
            sentence += f", train and validation by whole {unit}s"
        sentences.append(sentence + ".")
    if counts.get(splits.HELD_OUT):
        sentences.append(
            f"{counts[splits.HELD_OUT]} lines held out: they sit beside test or validation "
            "lines (or in a held-out document) and neither train nor measure."
        )
    if info.get("note"):
        sentences.append(info["note"] + ".")
    for change in export_split_changes(export):
        sentences.append(describe_change(change))
    if "evaluation_lines" in info:
        lines, minimum = info["evaluation_lines"], settings.OCRREVIEW_GATE_MIN_LINES
        if info.get("provisional"):
            sentences.append(
                f"The evaluation split held {lines} lines, under the {minimum} the promotion "
                "gate decides on: it is provisional, and the next exports grow it with new "
                "reviewed documents no export trained on until it holds them."
            )
        else:
            sentences.append(f"The evaluation split held {lines} lines, sealed for good.")
    return sentences


def export_split_changes(export: DatasetExport) -> list[EvaluationSplitChange]:
    return list(EvaluationSplitChange.objects.filter(export=export).order_by("id"))


def describe_change(change: EvaluationSplitChange) -> str:
    """A change of the evaluation split as a sentence."""
    unit = change.split.unit
    if change.kind == EvaluationSplitChange.Kind.FROZEN:
        sentence = (
            f"Froze the evaluation split: {change.lines_added} lines of "
            f"{change.units_added} {unit}{'s' if change.units_added != 1 else ''}"
        )
    elif change.kind == EvaluationSplitChange.Kind.REDRAWN:
        sentence = (
            f"Drew the evaluation split again: {change.lines_added} lines of "
            f"{change.units_added} {unit}{'s' if change.units_added != 1 else ''}"
        )
    else:
        sentence = f"Grew the evaluation split by {change.lines_added} lines"
        if change.units_added:
            plural = "s" if change.units_added != 1 else ""
            sentence += f", {change.units_added} new {unit}{plural} among them"
        sentence += f", to {change.lines}"
    if change.sealed and change.lines < change.minimum:
        # An imported test split (or one frozen before splits grew) is sealed whatever its size.
        sentence += f"; sealed under the promotion gate's minimum of {change.minimum}"
    elif change.sealed:
        sentence += f"; sealed, the promotion gate's minimum of {change.minimum} reached"
    else:
        sentence += f"; provisional, under the gate's minimum of {change.minimum}"
    if change.note:
        sentence += f". {change.note.rstrip('.')}"
    return sentence + "."


NO_REVIEWED_LINES = (
    "there are no reviewed lines yet: an export draws its evaluation split and validation "
    "from lines people reviewed, so review some lines first"
)


def start_refusal(collection: Collection) -> str | None:
    """Why no export of the collection can succeed yet, said before one is started rather than
    by a worker's failure; None when one can start."""
    if Line.objects.filter(splits.MEASURES, collection=collection).exists():
        return None
    return NO_REVIEWED_LINES


def _matching_lines(collection: Collection, options: ExportOptions) -> QuerySet[Line]:
    accepted = Q(status=Line.Status.REVIEWED)
    if options.include_auto_accepted:
        accepted |= Q(status=Line.Status.AUTO_ACCEPTED, confidence__gte=options.min_confidence)
    # A line marked unclear holds a guess, which must not teach the model.
    lines = Line.objects.filter(accepted, collection=collection, unclear=False).exclude(
        text__regex=splits.BLANK_TEXT
    )
    if options.documents:
        lines = lines.filter(document__in=options.documents)
    return lines.order_by(*READING_ORDER)


def ground_truth_lines(collection: Collection, options: ExportOptions) -> QuerySet[Line]:
    last_reader = Correction.objects.filter(line=OuterRef("pk"), action__in=READING_ACTIONS)
    last_reader = last_reader.order_by("-created_at", "-id").values("user__username")[:1]
    return (
        _matching_lines(collection, options)
        .select_related("document", "page", "model_version")
        # Every line's row would carry its document's canvases, some 350 KB for a register of
        # a thousand imported from IIIF: an export of 200 of its lines took 79 s, not 5 s.
        .defer(*iiif_json_through("document"))
        .annotate(reviewer=Subquery(last_reader))
    )


def export_file(export: DatasetExport) -> str:
    """The export's zip by its name in storage (``storage.local_copy`` reads it)."""
    return export.path


def build_export(export: DatasetExport, on_progress: ProgressCallback) -> dict:
    """Write the export's zip to storage and return its counts; sets ``path``, ``checksum``,
    ``evaluation_split`` and the units it trains on."""
    options = ExportOptions.of(export)
    collection = export.collection
    matching = _matching_lines(collection, options)
    if not matching.exists():
        raise ExportError(
            "no ground-truth lines match these filters: review some lines first"
            + ("" if options.include_auto_accepted else " or include auto-accepted lines")
        )

    trained_before = splits.units_trained_on(collection.pk)

    # A first pass over the ids alone: the split of a document needs all of its lines.
    def assign(split: EvaluationSplit) -> splits.SplitAssignment:
        return splits.assign_splits(
            matching.only("id", "document_id", "page_id", "status").iterator(chunk_size=CHUNK),
            split,
            unit=options.unit,
            seed=options.seed,
            validation_fraction=options.validation_fraction,
            trained_before=trained_before,
        )

    with transaction.atomic():
        split = splits.freeze_evaluation_split(
            collection,
            unit=options.unit,
            seed=options.seed,
            fraction=options.test_fraction,
            user=export.created_by,
            export=export,
        )
        provisional = split.sealed_at is None
        if provisional:
            # Under the collection's lock the split grew by: the next export to grow it must
            # know which documents this one trains on.
            planned = assign(split)
            splits.record_trained(split, planned)
    if not provisional:
        planned = assign(split)
    export.evaluation_split = split
    export.train_documents = sorted(planned.train.documents)
    export.train_pages = sorted(planned.train.pages)
    assignment = _Assignment(planned.splits)
    with tempfile.TemporaryDirectory(prefix=f"export-{export.pk}-") as tmp:
        work = Path(tmp)
        local = work / "export.zip"
        with ZipWriter(local) as archive:
            writer = _ExportWriter(archive, work, options.formats, collection.licence)
            lines = ground_truth_lines(collection, options).iterator(chunk_size=CHUNK)
            for done, line in enumerate(lines, start=1):
                split_name = assignment.take(line.pk)
                # A line that became ground truth after the first pass waits for the next export.
                if split_name is not None:
                    writer.add(line, split_name)
                if done % 20 == 0:
                    on_progress(0.7 * min(1.0, done / len(assignment)))
            writer.close()
            on_progress(0.8)
            # How train and validation were drawn, and the evaluation split then, for the
            # export's page (split_sentences).
            counts: dict[str, Any] = {
                **writer.counts,
                "split": {
                    "unit": planned.unit,
                    "note": planned.note,
                    "evaluation_lines": splits.counted_lines(split),
                    "provisional": split.sealed_at is None,
                },
            }
            manifest = {
                "collection": clean_name(collection.name),
                "licence": collection.licence,
                "filters": options.filters(),
                "formats": options.formats,
                "evaluation_split": {
                    "frozen_at": split.frozen_at.isoformat(),
                    "unit": split.unit,
                    "sealed_at": split.sealed_at.isoformat() if split.sealed_at else None,
                },
                "counts": counts,
                "sources": writer.sources,
            }
            writer.write_manifest(manifest, assignment.taken())
        on_progress(0.9)
        checksum = _sha256(local)
        # Named by the claim too: a worker given up for dead, still writing, cannot replace
        # the zip of the worker that took over.
        export.path = storage.put_file(f"exports/{export.pk}-{export.claim.hex[:8]}.zip", local)
        export.checksum = checksum
    return counts


class _Assignment:
    """Each line's split in some ten bytes (a dict of them takes twenty times that): line ids
    in order in an array, the number of each one's split beside it, and whether the line was
    written."""

    NAMES = (*splits.SPLITS, splits.HELD_OUT)

    def __init__(self, assignment: dict[int, str]) -> None:
        ids = sorted(assignment)
        numbers = {name: number for number, name in enumerate(self.NAMES)}
        self._ids = array("q", ids)
        self._splits = bytes(numbers[assignment[pk]] for pk in ids)
        self._taken = bytearray(len(ids))

    def __len__(self) -> int:
        return len(self._ids)

    def take(self, pk: int) -> str | None:
        """The line's split, noting that it is written; None for a line not assigned."""
        index = bisect.bisect_left(self._ids, pk)
        if index == len(self._ids) or self._ids[index] != pk:
            return None
        self._taken[index] = 1
        return self.NAMES[self._splits[index]]

    def taken(self) -> Iterator[tuple[int, str]]:
        for pk, number, taken in zip(self._ids, self._splits, self._taken, strict=True):
            if taken:
                yield pk, self.NAMES[number]


def _source_of(document: Document) -> dict[str, str]:
    """The document's images' source, their rights (a licence or rights statement's URL) and
    the attribution their holder requires, as its IIIF manifest (or load_demo) gave them (""s
    for an upload).
    Read once a document: the lines' rows leave the manifest's JSON out."""
    descriptive = (
        Document.objects.filter(pk=document.pk).values_list("iiif_descriptive", flat=True).get()
    )
    return {
        "title": clean_name(document.title),
        "manifest": document.iiif_manifest,
        "rights": rights_of(descriptive),
        "attribution": attribution_of(descriptive),
    }


def line_image(line: Line, page_images: dict[int, PILImage.Image]) -> PILImage.Image:
    """The line cut from its page; ``page_images`` caches the page being read."""
    if line.page_id not in page_images:
        page_images.clear()  # lines come page by page; keep one decoded page in memory
        with line.page.image.open("rb") as handle:
            page_images[line.page_id] = open_image(handle.read())
    return _crop(line, page_images[line.page_id])


def _crop(line: Line, page_image: PILImage.Image) -> PILImage.Image:
    if len(line.polygon) >= 3:
        return crop_line(page_image, polygon=[tuple(p) for p in line.polygon])
    return crop_line(page_image, bbox=tuple(line.bbox))


class _ExportWriter:
    """Writes the formats of an export into its zip a line at a time, lines coming in reading
    order; its temporary files go under ``work``."""

    def __init__(self, archive: ZipWriter, work: Path, formats: list[str], licence: str) -> None:
        self.archive = archive
        self.work = work
        self.formats = formats
        self.licence = licence
        self.xml_formats = [name for name in ("page", "alto") if name in formats]
        self.line_images = "imagefolder" in formats or "hf" in formats
        self.counts: dict[str, int] = {name: 0 for name in (*splits.SPLITS, splits.HELD_OUT)}
        self.counts.update(lines=0, documents=0, pages=0, characters=0, reviewed=0)
        self._metadata: dict[str, IO[str]] = {}
        self._hf: dict[str, _HFSplit] = {}
        self._page: Page | None = None
        self._page_lines: list[Line] = []
        self._page_bytes: bytes | None = None
        self._page_image: PILImage.Image | None = None
        self._document_id: int | None = None
        self._document_text: list[str] = []
        # Where each document's images come from, and what their holder requires of a copy:
        # the line images are copies of them.
        self.sources: dict[int, dict[str, str]] = {}
        self._source: dict[str, str] = {}

    def add(self, line: Line, split_name: str) -> None:
        if line.document_id != self._document_id:
            self._end_page()
            self._end_document()
            self._document_id = line.document_id
            self.counts["documents"] += 1
            self._source = _source_of(line.document)
            if self._source["manifest"] or self._source["rights"] or self._source["attribution"]:
                self.sources[line.document_id] = self._source
        if self._page is None or line.page_id != self._page.pk:
            self._end_page()
            self._page = line.page
            self.counts["pages"] += 1
        self.counts[split_name] += 1
        self.counts["lines"] += 1
        self.counts["characters"] += len(line.text)
        self.counts["reviewed"] += line.status == Line.Status.REVIEWED
        if self.xml_formats:
            self._page_lines.append(line)
        if "text" in self.formats:
            self._document_text.append(line.text)
        if split_name != splits.HELD_OUT and self.line_images:
            self._add_line_image(line, split_name)

    def close(self) -> None:
        """Write what waits for the end: the last page and document, the metadata files and
        the Hugging Face dataset."""
        self._end_page()
        self._end_document()
        self.counts["auto_accepted"] = self.counts["lines"] - self.counts["reviewed"]
        for split_name, handle in self._metadata.items():
            handle.close()
            self._move(Path(handle.name), f"imagefolder/{split_name}/metadata.jsonl")
        if self._hf:
            self._finish_hf()

    def _add_line_image(self, line: Line, split_name: str) -> None:
        try:
            if self._page_image is None:
                self._page_image = open_image(self._read_page_image())
            image = _crop(line, self._page_image)
        except (ImageError, OSError) as exc:
            raise ExportError(f"line {line.pk} of {line.page}: {exc}") from exc
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
        file_name = f"line-{line.pk}.png"
        row = {
            "file_name": file_name,
            "text": line.text,
            "line_id": line.pk,
            "document_id": line.document_id,
            "document": clean_name(line.document.title),
            "page_id": line.page_id,
            "page": line.page.index,
            "model_version": line.model_version.name if line.model_version else "",
            "reviewer": line.reviewer or "",
            "status": line.status,
            "confidence": line.confidence,
            "licence": self.licence,
            "rights": self._source["rights"],
            "attribution": self._source["attribution"],
        }
        if "imagefolder" in self.formats:
            self._write(f"imagefolder/{split_name}/{file_name}", png)
            if split_name not in self._metadata:
                self._metadata[split_name] = (self.work / f"metadata-{split_name}.jsonl").open(
                    "w", encoding="utf-8"
                )
            self._metadata[split_name].write(json.dumps(row, ensure_ascii=False) + "\n")
        if "hf" in self.formats:
            if split_name not in self._hf:
                self._hf[split_name] = _HFSplit(self.work, split_name)
            # Bytes, not paths, so the saved dataset carries its images wherever it goes.
            self._hf[split_name].add({**row, "image": {"bytes": png, "path": file_name}})

    def _read_page_image(self) -> bytes:
        """The current page's image file, read once for its lines and its XML."""
        assert self._page is not None
        if self._page_bytes is None:
            with self._page.image.open("rb") as handle:
                self._page_bytes = handle.read()
        return self._page_bytes

    def _end_page(self) -> None:
        if self._page is not None and self._page_lines:
            self._write_xml(self._page, self._page_lines)
        self._page = None
        self._page_lines = []
        self._page_bytes = None
        self._page_image = None

    def _end_document(self) -> None:
        if self._document_text:
            text = "\n".join(self._document_text) + "\n"
            self._write(f"text/document-{self._document_id}.txt", text.encode("utf-8"))
        self._document_text = []

    def _write_xml(self, page: Page, page_lines: list[Line]) -> None:
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
                    status=line.status,
                )
                for line in page_lines
            ],
            number=page.index + 1,
        )
        image_bytes = self._read_page_image()
        for name in self.xml_formats:
            self._write(f"{name}/{image_name}", image_bytes)
            xml = page_xml(xml_page) if name == "page" else alto_xml(xml_page, f"p{page.pk}")
            self._write(f"{name}/{stem}.xml", xml)

    def _finish_hf(self) -> None:
        names = [name for name in splits.SPLITS if name in self._hf]
        for name in names:
            folder = self._hf[name].close()
            for path in sorted(folder.iterdir()):
                self._move(path, f"hf/{name}/{path.name}")
            self._move(self._hf[name].parquet, f"parquet/{name}.parquet")
        self._write("hf/dataset_dict.json", json.dumps({"splits": names}).encode())

    def write_manifest(self, manifest: dict, lines: Iterable[tuple[int, str]]) -> None:
        """export.json: the manifest and every line's split, written as the lines come."""
        path = self.work / "export.json"
        head = json.dumps({**manifest, "lines": {}}, ensure_ascii=False, indent=1)
        assert head.endswith("{}\n}")
        with path.open("w", encoding="utf-8") as out:
            out.write(head[: -len("}\n}")])
            separator = "\n"
            for pk, name in lines:
                out.write(f'{separator}  "{pk}": "{name}"')
                separator = ",\n"
            out.write("\n }\n}")
        self._move(path, "export.json")

    def _write(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data, compress=_compressed(name))

    def _move(self, path: Path, name: str) -> None:
        """Into the zip, and off the disk: the temporary folder holds one copy of a format."""
        self.archive.write(name, path, compress=_compressed(name))
        path.unlink()


def _compressed(name: str) -> bool:
    return not name.endswith(STORED_SUFFIXES)


# The Hugging Face dataset's columns, as datasets describes them in an Arrow schema's metadata
# and in dataset_info.json. Written out rather than taken from datasets.Features, whose import
# alone would add some 115 MB to every export worker; a test checks them against it.
HF_COLUMNS = {
    "image": {"_type": "Image"},
    "text": {"dtype": "string", "_type": "Value"},
    "line_id": {"dtype": "int64", "_type": "Value"},
    "document_id": {"dtype": "int64", "_type": "Value"},
    "document": {"dtype": "string", "_type": "Value"},
    "page_id": {"dtype": "int64", "_type": "Value"},
    "page": {"dtype": "int64", "_type": "Value"},
    "model_version": {"dtype": "string", "_type": "Value"},
    "reviewer": {"dtype": "string", "_type": "Value"},
    "status": {"dtype": "string", "_type": "Value"},
    "confidence": {"dtype": "float64", "_type": "Value"},
    "licence": {"dtype": "string", "_type": "Value"},
    "rights": {"dtype": "string", "_type": "Value"},
    "attribution": {"dtype": "string", "_type": "Value"},
}


def hf_schema():
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema(
        [
            (name, image if column["_type"] == "Image" else types[column["dtype"]])
            for name, column in HF_COLUMNS.items()
        ],
        metadata={"huggingface": json.dumps({"info": {"features": HF_COLUMNS}})},
    )


class _HFSplit:
    """One split of the Hugging Face dataset, written in batches as ``save_to_disk`` lays it
    out (an Arrow stream with the features in its schema, dataset_info.json, state.json) and as
    Parquet; datasets' own writers would hold a whole split, or map it into memory to save it."""

    def __init__(self, work: Path, split_name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = hf_schema()
        self.split_name = split_name
        self.folder = work / "hf" / split_name
        self.folder.mkdir(parents=True)
        self.parquet = work / "parquet" / f"{split_name}.parquet"
        self.parquet.parent.mkdir(exist_ok=True)
        self._sink = pa.OSFile(str(self.folder / HF_SHARD), "wb")
        self._arrow = pa.ipc.new_stream(self._sink, self.schema)
        self._parquet = pq.ParquetWriter(str(self.parquet), self.schema)
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= HF_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        self._arrow.write_table(table)
        self._parquet.write_table(table)
        self._rows = []

    def close(self) -> Path:
        self._flush()
        self._arrow.close()
        self._sink.close()
        self._parquet.close()
        info = {"citation": "", "description": "", "features": HF_COLUMNS, "homepage": ""}
        (self.folder / "dataset_info.json").write_text(json.dumps({**info, "license": ""}))
        state = {
            "_data_files": [{"filename": HF_SHARD}],
            # What Dataset.from_dict gives a new dataset: a random fingerprint.
            "_fingerprint": secrets.token_hex(8),
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": self.split_name,
        }
        (self.folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        return self.folder


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SplitSamples:
    """One split of an export as training reads it."""

    samples: list[tuple[Path, str]]  # (line image, text)
    machine_read: int = 0  # of the samples, auto-accepted lines: a model's readings
    left_out: int = 0  # auto-accepted lines not read (``reviewed_only``)


def read_split(
    export: DatasetExport, split_name: str, into: Path, *, reviewed_only: bool = False
) -> SplitSamples:
    """Unpack one split's line images from an export. ``reviewed_only`` leaves out the lines
    no person reviewed, which exports made before validation was kept to reviewed lines may
    hold there."""
    prefix = f"imagefolder/{split_name}/"
    read = SplitSamples([])
    with storage.local_copy(export.path) as local, zipfile.ZipFile(local) as archive:
        names = set(archive.namelist())
        if prefix + "metadata.jsonl" not in names:
            return read
        for raw in io.TextIOWrapper(archive.open(prefix + "metadata.jsonl"), encoding="utf-8"):
            row = json.loads(raw)
            machine_read = row.get("status") != Line.Status.REVIEWED
            if machine_read and reviewed_only:
                read.left_out += 1
                continue
            read.machine_read += machine_read
            target = into / split_name / row["file_name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(prefix + row["file_name"]) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            read.samples.append((target, row["text"]))
    return read
