"""Line datasets back in as ground truth: an image folder with ``metadata.jsonl`` (flat or with
one folder per split, as exports write it, and as TrOCR recipes and published HTR sets ship it)
or a Hugging Face dataset saved with ``save_to_disk``. PAGE XML and ALTO with text come in
through the upload form, which keeps their text as ground truth.

Each line image becomes a page of its own holding one reviewed line; rows are grouped into
documents by their ``document`` or ``page`` column. Every image is decoded before anything is
stored, so a bad file fails the whole import with its name and nothing half-imported remains.

Images are read one at a time, when they are checked and again when they are stored: a zip is
unpacked entry by entry into a temporary folder, and a row holds where its image is, not its
bytes, so an import's memory does not grow with the size of the dataset's images.
"""

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from ocrreview import storage
from ocrreview.corpus.ingestion import ZIP_ENCRYPTED, ZIP_ENTRY_ERRORS, own_lines
from ocrreview.corpus.json_text import unstorable
from ocrreview.corpus.line_text import imported_line_text
from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.corpus.names import entered_name
from ocrreview.review.models import Correction
from ocrreview.training import splits
from ocrreview.training.models import EvaluationSplit
from recognition.preprocess import ImageError, open_image

GROUP_COLUMNS = ("document", "page")
# An archive may unpack to at most this many times the upload limit: line PNGs barely
# compress, so a larger ratio means a zip bomb, not a dataset.
MAX_UNPACK_RATIO = 4
MAX_MEMBERS = 200_000


class DatasetImportError(ValueError):
    """The dataset cannot be imported; the message names the file or row at fault."""


@dataclass
class Row:
    name: str
    read_image: Callable[[], bytes] = field(repr=False)
    text: str = ""
    group: str = ""
    split: str = ""
    line_id: int | None = None  # the line it was exported from, when it is one of our exports
    # An export's auto-accepted line: a model's reading, which is not ground truth.
    machine_read: bool = False
    # The document it was exported from: two documents of one title stay two.
    document_id: int | None = None


@dataclass
class ImportResult:
    documents: list[Document] = field(default_factory=list)
    lines_by_split: dict[str, list[Line]] = field(default_factory=dict)
    machine_read_left_out: int = 0
    # Test lines held out of training: the collection's frozen split was not made of them.
    test_held_out: int = 0

    @property
    def lines(self) -> list[Line]:
        return [line for lines in self.lines_by_split.values() for line in lines]

    def summary(self) -> str:
        said = (
            f"Imported {len(self.lines)} lines in {len(self.documents)} documents as reviewed "
            "ground truth ("
            + ", ".join(
                f"{name or 'no split'}: {len(v)}" for name, v in self.lines_by_split.items()
            )
            + ")."
        )
        if self.test_held_out:
            said += (
                f" Its {self.test_held_out} test lines are held out of training and validation "
                "for good: a published test split stays unseen."
            )
        if self.machine_read_left_out:
            said += (
                f" {self.machine_read_left_out} auto-accepted lines (a model's readings, not "
                "ground truth) were left out."
            )
        return said


def read_dataset(path: Path, *, text_column: str = "text") -> list[Row]:
    path = Path(path)
    if not path.is_dir():
        raise DatasetImportError(f"{path} is not a directory")
    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
        return _read_hf(path, text_column)
    folders = [path] if (path / "metadata.jsonl").exists() else []
    folders += sorted(p.parent for p in path.glob("*/metadata.jsonl"))
    if not folders:
        raise DatasetImportError(
            f"{path} holds neither a metadata.jsonl (image folder) nor a saved Hugging Face dataset"
        )
    rows: list[Row] = []
    for folder in folders:
        default_split = folder.name if folder != path else ""
        rows += _read_imagefolder(folder, text_column, default_split)
    return rows


def _read_imagefolder(folder: Path, text_column: str, default_split: str) -> list[Row]:
    try:
        # utf-8-sig: Windows Notepad saves UTF-8 with a byte order mark, which JSON refuses.
        lines = (folder / "metadata.jsonl").read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as exc:
        raise DatasetImportError(
            f"{folder / 'metadata.jsonl'} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    rows = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{folder / 'metadata.jsonl'} line {number}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DatasetImportError(f"{where} is not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or "file_name" not in record:
            raise DatasetImportError(f"{where} has no file_name")
        try:
            image_path = (folder / str(record["file_name"])).resolve()
        except ValueError as exc:  # a NUL in the name
            raise DatasetImportError(f"{where} names no possible file ({exc})") from exc
        if folder.resolve() not in image_path.parents:
            raise DatasetImportError(f"{where} names a file outside the folder")
        try:
            with image_path.open("rb"):
                pass  # read when its turn comes; here only whether it can be
        except OSError as exc:
            message = f"{where}: cannot read {record['file_name']} ({exc.strerror})"
            raise DatasetImportError(message) from exc
        rows.append(
            _row(
                record, str(record["file_name"]), image_path.read_bytes, text_column, default_split
            )
        )
    return rows


def _read_hf(path: Path, text_column: str) -> list[Row]:
    import pyarrow.compute as pc
    from datasets import DatasetDict, load_from_disk

    _refuse_files_outside(path)
    try:
        loaded = load_from_disk(str(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # datasets reads the state files' keys as it finds them, without checking them first.
        raise DatasetImportError(f"{path} is not a readable saved dataset ({exc!r})") from exc
    parts = loaded.items() if isinstance(loaded, DatasetDict) else [("", loaded)]
    rows = []
    for split_name, part in parts:
        if "image" not in part.column_names:
            raise DatasetImportError(f"the {split_name or 'dataset'} split has no image column")
        raw = part.cast_column("image", _raw_image())
        # The other columns row by row; an image only when it is read (the table is mapped
        # from its file, not loaded).
        paths = pc.struct_field(raw.data.column("image"), "path").to_pylist()
        for index, record in enumerate(raw.remove_columns("image")):
            name = paths[index] or f"{split_name}-{index}"
            rows.append(_row(record, name, _hf_image(raw, index), text_column, split_name))
    return rows


def _refuse_files_outside(path: Path) -> None:
    """load_from_disk joins the split names of dataset_dict.json and the file names in each
    split's state.json onto the folder as they are: an absolute or ../ name in an uploaded
    zip would load any Arrow file on the server as this collection's ground truth."""

    def within(name: Any, where: str) -> str:
        parts = PurePosixPath(name).parts if isinstance(name, str) and name else ("..",)
        if parts[0] == "/" or ".." in parts or "\\" in name:
            raise DatasetImportError(f"{where} names {name!r}, which is not in the dataset")
        return name

    # The top folder too: a state.json there is loaded before any dataset_dict.json.
    folders = [path]
    if (path / "dataset_dict.json").exists():
        split_names = _json_list(path / "dataset_dict.json", "splits")
        folders += [path / within(split, "dataset_dict.json") for split in split_names]
    for folder in folders:
        if (folder / "state.json").exists():
            where = (folder / "state.json").relative_to(path).as_posix()
            for entry in _json_list(folder / "state.json", "_data_files"):
                within(entry.get("filename") if isinstance(entry, dict) else None, where)


def _json_list(path: Path, key: str) -> list:
    value = _json_object(path).get(key, [])
    if not isinstance(value, list):
        raise DatasetImportError(f"{path.name}: {key} is not a list")
    return value


def _json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetImportError(f"{path.name} is not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise DatasetImportError(f"{path.name} is not a JSON object")
    return value


def _hf_image(dataset, index: int) -> Callable[[], bytes]:
    return lambda: (dataset[index]["image"] or {}).get("bytes") or b""


def _raw_image():
    from datasets import Image

    return Image(decode=False)


def _row(
    record: dict, name: str, read_image: Callable[[], bytes], text_column: str, split: str
) -> Row:
    text = record.get(text_column)
    if not isinstance(text, str):
        raise DatasetImportError(f"{name}: no {text_column!r} text")
    group = next((str(record[c]) for c in GROUP_COLUMNS if record.get(c) not in (None, "")), "")
    row = Row(
        name,
        read_image,
        text.strip(),
        group,
        str(record.get("split") or split),
        _whole_number(record.get("line_id")),
        record.get("status") == Line.Status.AUTO_ACCEPTED,
        _whole_number(record.get("document_id")),
    )
    if problem := unstorable([row.text, row.group, row.split]):
        raise DatasetImportError(f"{name}: the text or group holds {problem}")
    try:
        row.text = imported_line_text(row.text)
    except ValueError as exc:
        raise DatasetImportError(f"{name}: {exc}") from None
    return row


def _whole_number(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def do_import_ground_truth(
    collection: Collection, rows: list[Row], *, user, title: str, freeze_test: bool = False
) -> ImportResult:
    """Store the rows as reviewed lines. ``freeze_test``: the rows of the dataset's own test
    split become the collection's frozen evaluation split (a published split stays intact);
    otherwise their documents are held out of training and validation."""
    with_text = [row for row in rows if row.text]
    rows = [row for row in with_text if not row.machine_read]
    if not rows:
        raise DatasetImportError(
            "every line of the dataset is a model's auto-accepted reading, not ground truth"
            if with_text
            else "the dataset has no line with text"
        )
    _refuse_own_lines(collection, rows)
    sizes, fingerprints = zip(*(_size_and_fingerprint(row) for row in rows), strict=True)
    # A document holds the lines of one split: freezing the test split freezes whole
    # documents, which would otherwise hold training lines out for good.
    groups: dict[tuple[int | None, str, str], list[tuple[Row, tuple[int, int], str]]] = {}
    for row, size, fingerprint in zip(rows, sizes, fingerprints, strict=True):
        key = (row.document_id, row.group, row.split)
        groups.setdefault(key, []).append((row, size, fingerprint))
    digests = {key: _digest(members) for key, members in groups.items()}
    _refuse_repeated_groups(digests)
    _refuse_imported_before(collection, digests.values())
    result = ImportResult(machine_read_left_out=len(with_text) - len(rows))
    saved: list[str] = []
    try:
        with transaction.atomic():
            for key, members in groups.items():
                _, group, split = key
                document = Document.objects.create(
                    collection=collection,
                    # A group named only by characters names drop is no name either.
                    title=(entered_name(group) or (f"{title} ({split})" if split else title))[:300],
                    uploaded_by=user,
                    segmentation=Document.Segmentation.WHOLE_IMAGE,
                    status=Document.Status.READY,
                    source_sha256=digests[key],
                )
                result.documents.append(document)
                for index, (row, (width, height), _) in enumerate(members):
                    line = _store_line(document, index, row, width, height, user, saved)
                    result.lines_by_split.setdefault(row.split, []).append(line)
            test_lines = result.lines_by_split.get(splits.TEST, [])
            if freeze_test:
                splits.freeze_evaluation_lines(
                    collection, test_lines, unit=EvaluationSplit.Unit.DOCUMENT, user=user
                )
            elif test_lines:
                # Trained on, the published test split would measure nothing of the model,
                # here or against the results others report on it.
                splits.hold_out_documents(
                    {line.document_id for line in test_lines}, f"the test split of “{title}”"[:300]
                )
                result.test_held_out = len(test_lines)
    except IntegrityError:
        for name in saved:
            default_storage.delete(name)
        # The same lines in an import that committed meanwhile.
        _refuse_imported_before(collection, digests.values())
        raise
    except Exception:
        for name in saved:
            default_storage.delete(name)
        raise
    return result


def _size_and_fingerprint(row: Row) -> tuple[tuple[int, int], str]:
    """An image read at a time: a large dataset's images are never all in memory."""
    data = row.read_image()
    try:
        size = open_image(data).size
    except ImageError as exc:
        raise DatasetImportError(f"{row.name}: {exc}") from exc
    return size, hashlib.sha256(data).hexdigest() + "\0" + row.text


def _digest(members: list[tuple[Row, tuple[int, int], str]]) -> str:
    """What a document of imported lines holds: each line's image and text, in order."""
    return hashlib.sha256("\n".join(m[2] for m in members).encode()).hexdigest()


def _refuse_imported_before(collection: Collection, digests) -> None:
    """The same dataset imported again (a second try, with the test split frozen the first
    time and not the second) would copy the frozen evaluation lines into training, and the
    gate would score a model on lines it trained on."""
    earlier = collection.documents.filter(source_sha256__in=list(digests)).first()
    if earlier is not None:
        raise DatasetImportError(
            f"these lines are already in the collection, as “{earlier.title}”; a dataset "
            "is imported once (delete those documents to import it again)"
        )


def _refuse_repeated_groups(digests: dict[tuple[int | None, str, str], str]) -> None:
    """Two groups of the very same lines (a published set whose validation split is a copy of
    its test split): the gate would score a model on lines its checkpoint was chosen by, and
    a collection holds one document of given lines."""
    seen: dict[str, tuple[int | None, str, str]] = {}
    for key, digest in digests.items():
        if digest in seen:
            raise DatasetImportError(
                f"{_group_named(seen[digest])} and {_group_named(key)} hold the very same "
                "lines; remove the copy and import again"
            )
        seen[digest] = key


def _group_named(key: tuple[int | None, str, str]) -> str:
    document_id, group, split = key
    name = f"“{group}”" if group else f"document {document_id}" if document_id else "the lines"
    return f"{name} of the {split} split" if split else name


def _refuse_own_lines(collection: Collection, rows: list[Row]) -> None:
    """An export of this collection imported back into it would copy its lines, the frozen
    test lines into the next training set among them, and the gate would score a model on
    lines it trained on (see ``own_lines``)."""
    exported = {row.line_id: row for row in rows if row.line_id is not None}
    own_ids = own_lines(collection, {line_id: row.text for line_id, row in exported.items()})
    own = [row for line_id, row in exported.items() if line_id in own_ids]
    if own:
        raise DatasetImportError(
            f"{len(own)} rows (such as {own[0].name}) are this collection's own lines "
            f"(line {own[0].line_id}); an export imports into another collection"
        )


def _store_line(
    document: Document, index: int, row: Row, width: int, height: int, user, saved: list[str]
) -> Line:
    page = Page(
        document=document, index=index, width=width, height=height, status=Page.Status.SEGMENTED
    )
    page.image.save(storage.name_of_its_own(row.name), ContentFile(row.read_image()), save=False)
    saved.append(page.image.name)
    page.save()
    line = Line.objects.create(
        collection=document.collection,
        document=document,
        page=page,
        order=0,
        bbox=[0, 0, width, height],
        text=row.text,
        status=Line.Status.REVIEWED,
    )
    Correction.objects.create(
        line=line,
        user=user,
        action=Correction.Action.IMPORT,
        text_after=row.text,
        line_version=line.version,
    )
    return line


def do_import_zip(
    collection: Collection,
    archive: BinaryIO,
    *,
    user,
    title: str,
    text_column: str = "text",
    freeze_test: bool = False,
) -> ImportResult:
    """Import an uploaded zip: one of our exports, or an image folder zipped as it is."""
    with tempfile.TemporaryDirectory(prefix="ocrreview-import-") as tmp:
        root = Path(tmp)
        _unpack(archive, root)
        rows = read_dataset(_dataset_root(root), text_column=text_column)
        return do_import_ground_truth(
            collection, rows, user=user, title=title, freeze_test=freeze_test
        )


def _unpack(archive: BinaryIO, into: Path) -> None:
    limit = settings.OCRREVIEW_MAX_UPLOAD_MB * 1024 * 1024 * MAX_UNPACK_RATIO
    try:
        zf = zipfile.ZipFile(archive)
    except ZIP_ENTRY_ERRORS as exc:  # the central directory fails as an entry can
        raise DatasetImportError(f"the file is not a readable zip archive ({exc})") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise DatasetImportError(f"the zip holds more than {MAX_MEMBERS} files")
        if sum(m.file_size for m in members) > limit:
            raise DatasetImportError("the zip unpacks to more than the upload limit allows")
        for member in members:
            path = PurePosixPath(member.filename)
            if path.is_absolute() or ".." in path.parts:
                raise DatasetImportError(f"the zip entry {member.filename!r} leaves the archive")
            target = into.joinpath(*path.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # an entry named as a folder another entry is in
                raise DatasetImportError(
                    f"the zip entry {member.filename!r} cannot be unpacked ({exc.strerror})"
                ) from exc
            _copy_member(zf, member, target)


def _copy_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    if member.flag_bits & ZIP_ENCRYPTED:
        raise DatasetImportError(
            f"the zip entry {member.filename!r} is encrypted; zip it again without a password"
        )
    copied = 0
    try:
        with zf.open(member) as source, target.open("wb") as out:
            # The sizes in the directory can lie; count what really comes out.
            while chunk := source.read(1 << 20):
                copied += len(chunk)
                if copied > member.file_size:
                    break  # refused below: raised here, it would be taken for a zipfile error
                out.write(chunk)
    except ZIP_ENTRY_ERRORS as exc:
        raise DatasetImportError(
            f"the zip entry {member.filename!r} cannot be unpacked ({exc})"
        ) from exc
    if copied > member.file_size:
        raise DatasetImportError(f"{member.filename} is larger than declared")


def _dataset_root(root: Path) -> Path:
    """Our exports keep the image folder under imagefolder/ and the saved dataset under hf/
    (an export may hold either); a zipped folder may add one level."""
    for kept in ("imagefolder", "hf"):
        if (root / kept).is_dir():
            return root / kept
    entries = [p for p in root.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return root
