"""From uploaded files to documents and pages: the one entry point that the web upload, the
API and `import_documents` share.

Every file succeeds or fails on its own. A file is opened, counted and checked before anything
is written; its pages' images are stored one by one as they are decoded (a long PDF is never
in memory whole), then its document is written in one transaction. A bad file leaves no trace,
the files stored for it deleted, and never touches what is already stored; its error message
goes back in its FileResult.

Files are read when their turn comes, one at a time: a ZIP's entries are unpacked one by one
into temporary files (never more of one than the limits allow), so an upload's memory is that
of its largest file, not the sum of them.
"""

import hashlib
import io
import logging
import lzma
import os
import re
import struct
import tempfile
import threading
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image, ImageOps

from ocrreview import storage
from ocrreview.corpus.line_text import nfc
from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.corpus.names import clean_name
from ocrreview.corpus.segmentation import (
    LineGeometry,
    imported_lines,
    store_lines,
    upright_layout,
    whole_image_lines,
)
from ocrreview.corpus.signals import lines_ready, texts_held_before
from ocrreview.corpus.xmlimport import (
    ImportedPage,
    XMLImportError,
    parse_document_title,
    parse_layout_xml,
    parse_mets,
)
from ocrreview.db_errors import connection_lost
from ocrreview.storage import StorageError
from recognition.preprocess import MAX_PIXELS, ImageError, open_image, to_rgb

logger = logging.getLogger(__name__)

IMAGE_KINDS = {"jpeg", "png", "tiff"}
# An entry that expands more than this many times over its compressed size is a ZIP bomb,
# whatever the archive's total: real scans barely compress.
MAX_ZIP_RATIO = 100
# The most a file's record in a ZIP archive's central directory is allowed on average: 46 bytes
# and its name, with room for long paths and extra fields.
DIRECTORY_RECORD_BYTES = 1024
MIN_RATIO_CHECKED = 1024 * 1024
# Enough of a file's start to tell its type, an XML declaration after a long blank run included.
SNIFF_BYTES = 64 * 1024
COPY_CHUNK = 1024 * 1024


# What zipfile raises for one entry it cannot read: among others zlib.error for a damaged
# deflate stream, lzma.LZMAError for a damaged LZMA one, RuntimeError for an encrypted entry,
# NotImplementedError for an unknown method.
ZIP_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
ZIP_ENCRYPTED = 0x1  # general purpose flag bit 0 of the ZIP format
ZIP_UTF8_NAME = 0x800  # bit 11


class IngestError(ValueError):
    """A file that cannot be ingested, with a message fit to show to the uploader."""


class AlreadyUploaded(IngestError):
    """The file is in the collection already, as `document`: a retried upload, or a folder
    sent twice, which the uploader may follow as the first one."""

    def __init__(self, message: str, document: Document):
        super().__init__(message)
        self.document = document


@dataclass
class Upload:
    name: str
    size: int
    opener: Callable[[], AbstractContextManager[BinaryIO]] = field(repr=False)
    # The folder it was found in on disk (import_documents): its images make a document as a
    # ZIP archive's folder's do. None for a file uploaded on its own.
    folder: str | None = None

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        if self.folder is not None:
            self.folder = clean_name(self.folder)

    def open(self) -> AbstractContextManager[BinaryIO]:
        """The file to read, seekable (a ZIP is read from its end)."""
        return self.opener()

    def read(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> "Upload":
        return cls(name, len(data), lambda: io.BytesIO(data))

    @classmethod
    def from_path(cls, path: Path, name: str | None = None, folder: str | None = None) -> "Upload":
        return cls(name or path.name, path.stat().st_size, lambda: path.open("rb"), folder)

    @classmethod
    def from_django(cls, uploaded) -> "Upload":
        @contextmanager
        def opened() -> Iterator[BinaryIO]:
            # Left open: Django closes it, and removes its temporary file, after the request.
            uploaded.seek(0)
            yield uploaded

        return cls(uploaded.name, uploaded.size, opened)


@dataclass
class FileResult:
    name: str
    error: str = ""
    document: Document | None = None
    pages: int = 0
    lines: int = 0
    # Refused as already in the collection: `document` is the one it is already.
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict:
        return {
            "file": self.name,
            "document": self.document.pk if self.document else None,
            "pages": self.pages,
            "lines": self.lines,
            "error": self.error,
            "duplicate": self.duplicate,
        }


@dataclass
class _PageImage:
    content: bytes
    extension: str
    width: int
    height: int


@dataclass
class _Item:
    """One file to ingest, after archives are unpacked; its bytes are read when its turn
    comes."""

    name: str
    kind: str
    size: int
    read: Callable[[], bytes] = field(repr=False)
    path: Path | None = None  # an unpacked ZIP entry's temporary file
    # The folder that holds it: a ZIP archive's ("scans.zip/vol1"; at the archive's root, the
    # archive's name), or the one on disk it was found in; None for a file uploaded on its own.
    folder: str | None = None
    at_root: bool = False
    # Which ZIP archive of the upload it came from, counted from 1; 0 for a file uploaded on
    # its own. Two archives of one name in an upload give their entries the same names.
    archive: int = 0
    # Which file of the upload it is or came in, counted from 1: files uploaded on their own
    # may share a name (two volumes' 0001.jpg, added to the form one folder after the other).
    number: int = 0

    @property
    def base_name(self) -> str:
        return PurePosixPath(self.name.replace("\\", "/")).name

    @property
    def key(self) -> tuple[int, str]:
        """What tells it from every other file of the upload."""
        return self.number, self.name

    @property
    def folder_key(self) -> tuple[int, str | None]:
        return self.archive, self.folder


@dataclass
class _Source:
    """What becomes one document: a file, or a ZIP archive's folder of images."""

    name: str
    title: str
    items: list[_Item]
    is_folder: bool = False


def do_ingest(
    collection: Collection,
    uploads: Iterable[Upload],
    *,
    user=None,
    segmentation: str = Document.Segmentation.KRAKEN,
    import_text: bool = False,
    folders: bool = False,
) -> list[FileResult]:
    """Create a document per image, multi-page TIFF or PDF, and queue its segmentation; a
    Transkribus document's folder in a ZIP archive (or on disk, for import_documents) is one
    document, and with `folders` any folder of images is (see _sources).

    PAGE/ALTO files are matched to their image (same name, or the image the XML names);
    their lines replace segmentation, and with `import_text` their text becomes reviewed
    ground truth, but for lines the file marks as a model's reading (see store_lines).
    """
    results: list[FileResult] = []
    with tempfile.TemporaryDirectory(prefix="ocrreview-upload-") as tmp:
        items: list[_Item] = []
        # Every archive is unpacked before any file is ingested: one budget for them all.
        unpacked = _Unpacked()
        for number, upload in enumerate(uploads, start=1):
            try:
                items.extend(_unpack(upload, number, results, Path(tmp), unpacked))
            except IngestError as exc:
                results.append(FileResult(upload.name, error=str(exc)))

        sidecars = [item for item in items if _is_sidecar(item)]
        items = [item for item in items if not _is_sidecar(item)]
        layouts = _pair_layouts(items, results)
        for source in _sources(items, sidecars, folders, results):
            try:
                results.append(
                    _ingest_source(collection, source, layouts, user, segmentation, import_text)
                )
            except AlreadyUploaded as exc:
                results.append(
                    FileResult(source.name, error=str(exc), document=exc.document, duplicate=True)
                )
            except (IngestError, StorageError) as exc:
                results.append(FileResult(source.name, error=str(exc)))
            except Exception as exc:  # a decoder's unforeseen failure must not sink the upload
                if connection_lost(exc):
                    raise  # not the file's fault: middleware.DatabaseUnavailable answers
                logger.exception("Ingesting %s failed", source.name)
                results.append(
                    FileResult(
                        source.name, error=f"the file could not be read ({type(exc).__name__})"
                    )
                )
            for item in source.items:
                if item.path is not None:
                    item.path.unlink()  # done with: the disk holds what is still to come
    return results


def sniff(data: bytes) -> str:
    """The file's type from its first bytes; the name is never trusted."""
    if not data:
        raise IngestError("the file is empty")
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        return "xml"
    raise IngestError("unsupported file type (accepted: JPEG, PNG, TIFF, PDF, ZIP, PAGE XML, ALTO)")


def _max_bytes() -> int:
    return settings.OCRREVIEW_MAX_UPLOAD_MB * 1024 * 1024


@dataclass
class _Unpacked:
    """What an upload's archives have unpacked to disk so far."""

    bytes: int = 0

    @property
    def left(self) -> int:
        return settings.OCRREVIEW_ZIP_MAX_MB * 1024 * 1024 - self.bytes


def _unpack(
    upload: Upload, number: int, results: list[FileResult], work: Path, unpacked: _Unpacked
) -> list[_Item]:
    """The upload's files: itself, or a ZIP archive's entries, which are its `number`th."""
    if upload.size > _max_bytes():
        raise IngestError(
            f"the file is {upload.size / 1024 / 1024:.1f} MB; "
            f"the limit is {settings.OCRREVIEW_MAX_UPLOAD_MB} MB"
        )
    with upload.open() as handle:
        kind = sniff(handle.read(SNIFF_BYTES))
        if kind != "zip":
            return [
                _Item(
                    upload.name, kind, upload.size, upload.read, folder=upload.folder, number=number
                )
            ]
        items = []
        said = len(results)
        for name, inside, path in _zip_entries(upload.name, handle, results, work, unpacked):
            try:
                with path.open("rb") as entry:
                    entry_kind = sniff(entry.read(SNIFF_BYTES))
                if entry_kind == "zip":
                    raise IngestError("ZIP archives inside ZIP archives are not unpacked")
                at_root = len(inside.parts) == 1
                folder = upload.name if at_root else f"{upload.name}/{inside.parent}"
                size = path.stat().st_size
                items.append(
                    _Item(
                        name,
                        entry_kind,
                        size,
                        path.read_bytes,
                        path,
                        folder,
                        at_root,
                        number,
                        number,
                    )
                )
            except IngestError as exc:
                path.unlink()
                results.append(FileResult(name, error=str(exc)))
        if not items and len(results) == said:
            # Else the upload answered nothing about it, as if it had not been sent.
            raise IngestError(
                "the archive holds no files to import (only folders, or macOS's __MACOSX and "
                "._ files, which are not read)"
            )
        return items


def _central_directory(handle: BinaryIO) -> tuple[int, int]:
    """How many records the archive's central directory lists, and its size in bytes, from its
    end record. ZipFile builds an object for every record before anyone can count them: a
    200 MB archive of four million records pointing at one file would take gigabytes of
    memory first. Folders have records too, hence the caller's twice the files allowed."""
    # zipfile's own reader of that record (ZIP64 included), which its public API does not
    # offer apart from building the whole directory.
    end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
    if end is None:
        raise zipfile.BadZipFile("File is not a zip file")
    return end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]


def _zip_entries(
    archive: str, handle: BinaryIO, results: list[FileResult], work: Path, unpacked: _Unpacked
) -> Iterator[tuple[str, PurePosixPath, Path]]:
    """Each entry unpacked into a temporary file of its own under `work`, one at a time: its
    name in the upload, its path in the archive, and the file."""
    try:
        handle.seek(0)
        listed, directory_bytes = _central_directory(handle)
        if listed > 2 * settings.OCRREVIEW_ZIP_MAX_FILES:
            raise IngestError(
                f"the archive holds {listed} entries; the limit is "
                f"{settings.OCRREVIEW_ZIP_MAX_FILES} files"
            )
        if directory_bytes > 2 * settings.OCRREVIEW_ZIP_MAX_FILES * DIRECTORY_RECORD_BYTES:
            # zipfile reads records until it has read this many bytes, whatever the count.
            raise IngestError(
                f"the archive's directory takes {directory_bytes / 1024 / 1024:.1f} MB, more "
                f"than {settings.OCRREVIEW_ZIP_MAX_FILES} files need"
            )
        handle.seek(0)
        zf = zipfile.ZipFile(handle)
    except IngestError:
        raise
    except ZIP_ENTRY_ERRORS as exc:  # the central directory fails as an entry can
        raise IngestError(f"not a readable ZIP archive ({exc})") from exc
    # Not is_dir(): it fails on an empty name (a NUL byte is where zipfile cuts a name). Old
    # Windows tools (.NET's before 4.6.1) end a folder's name with a backslash.
    infos = [info for info in zf.infolist() if not info.filename.endswith(("/", "\\"))]
    if len(infos) > settings.OCRREVIEW_ZIP_MAX_FILES:
        raise IngestError(
            f"the archive holds {len(infos)} files; the limit is {settings.OCRREVIEW_ZIP_MAX_FILES}"
        )
    declared = sum(info.file_size for info in infos)
    if declared > unpacked.left:
        raise IngestError(
            f"the archive would expand to {declared / 1024 / 1024:.0f} MB; "
            f"the limit is {settings.OCRREVIEW_ZIP_MAX_MB} MB"
            + (
                f" for the archives of one upload, whose others take "
                f"{unpacked.bytes / 1024 / 1024:.0f} MB: upload it on its own"
                if unpacked.bytes
                else ""
            )
        )
    read_before: set[PurePosixPath] = set()
    for info in infos:
        # Cleaned before it is judged: a control character dropped may make it unsafe. Old
        # Windows tools part a path with backslashes: as slashes, its XML files find their
        # images by their paths, and its folders are folders.
        filename = clean_name(_entry_name(info)).replace("\\", "/")
        name = f"{archive}/{filename}"
        path = PurePosixPath(filename)
        if path.parts[:1] == ("__MACOSX",) or path.name.startswith("._"):
            continue
        if not path.parts or filename.startswith("/") or ":" in path.parts[0] or ".." in path.parts:
            results.append(FileResult(name, error="unsafe path in the archive; entry skipped"))
            continue
        if path in read_before:
            # Unpacked, the one would overwrite the other; here both would be pages, the same
            # page twice when the archive was added to, and an XML naming it would pick one.
            results.append(
                FileResult(
                    name,
                    error="another file of this name comes before it in the archive, and only "
                    "the first of a name is read; rename one of them to upload both",
                )
            )
            continue
        read_before.add(path)
        if info.flag_bits & ZIP_ENCRYPTED:
            results.append(
                FileResult(name, error="the entry is encrypted; zip it again without a password")
            )
            continue
        if info.file_size > MIN_RATIO_CHECKED and info.file_size > MAX_ZIP_RATIO * max(
            info.compress_size, 1
        ):
            results.append(
                FileResult(name, error="the entry expands too much (a ZIP bomb?); skipped")
            )
            continue
        # A name of its own: the entry's is the uploader's and stays out of paths.
        fd, tmp = tempfile.mkstemp(dir=work, prefix="entry-")
        target = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _extract_capped(zf, info, min(unpacked.left, _max_bytes()), out)
        except IngestError as exc:
            target.unlink()
            results.append(FileResult(name, error=str(exc)))
            continue
        unpacked.bytes += size
        yield name, path, target


def _entry_name(info: zipfile.ZipInfo) -> str:
    """Without the UTF-8 flag the format says cp437, but the zip tools of Linux and macOS
    write UTF-8 without setting it: a name that is valid UTF-8 is read as UTF-8, as unzip and
    libarchive read it, so that "été.jpg" keeps its name and an XML naming it finds it."""
    if info.flag_bits & ZIP_UTF8_NAME:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _extract_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, out: BinaryIO) -> int:
    """Copy the entry to `out` a chunk at a time; returns its size."""
    # The sizes in the archive's directory may lie; never write more than they claim.
    cap = min(info.file_size, limit)
    copied = 0
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(min(COPY_CHUNK, cap + 1 - copied)):
                copied += len(chunk)
                if copied > cap:
                    break
                out.write(chunk)
    except ZIP_ENTRY_ERRORS as exc:
        raise IngestError(f"the entry cannot be unpacked ({exc})") from exc
    if copied > cap:
        raise IngestError("the entry is larger than the archive says or than the size limit")
    return copied


def _pair_layouts(
    items: list[_Item], results: list[FileResult]
) -> dict[tuple[int, str], ImportedPage]:
    """The layouts by their image's key. An XML file pairs by its path with an image of its
    own archive (or, uploaded on its own, with one uploaded on its own), by the name it gives
    with the one image of the upload so named. Where several images could be the one, none
    is: the lines of one volume's 0001.jpg would otherwise go to another's."""
    images = [item for item in items if item.kind != "xml"]
    by_stem: dict[tuple[int, str], list[_Item]] = {}
    by_path: dict[tuple[int, str], list[_Item]] = {}
    by_basename: dict[str, list[_Item]] = {}
    for image in images:
        by_stem.setdefault((image.archive, _stem(image.name)), []).append(image)
        by_path.setdefault((image.archive, image.name), []).append(image)
        by_basename.setdefault(PurePosixPath(image.name).name, []).append(image)
    layouts: dict[tuple[int, str], ImportedPage] = {}
    for item in items:
        if item.kind != "xml":
            continue
        if item.size > MAX_LAYOUT_MB * 1024 * 1024:
            results.append(
                FileResult(
                    item.name,
                    error=f"the file is {item.size / 1024 / 1024:.1f} MB, over the "
                    f"{MAX_LAYOUT_MB} MB that a PAGE or ALTO file is read up to, and is not read",
                )
            )
            continue
        try:
            layout = parse_layout_xml(item.read(), item.name)
        except XMLImportError as exc:
            results.append(FileResult(item.name, error=str(exc)))
            continue
        # An XML file naming its image with a character that the image's name lost in
        # cleaning still pairs with it.
        image_name = clean_name(layout.image_name)
        named = by_basename.get(image_name, [])
        same_stem = by_stem.get((item.archive, _stem(item.name)), [])
        image = _only(same_stem) or _named_image(item, image_name, by_path, named)
        if image is None and (len(named) > 1 or len(same_stem) > 1):
            results.append(
                FileResult(
                    item.name,
                    error=f"several images of this upload are named {image_name!r}; "
                    "put the XML beside its image, or in a folder inside the image's "
                    "(a ZIP archive keeps folders), or upload them one at a time",
                )
            )
        elif image is None:
            results.append(
                FileResult(
                    item.name,
                    error=f"the XML refers to the image {image_name!r}, "
                    "which is not part of this upload",
                )
            )
        elif image.key in layouts:
            results.append(
                FileResult(item.name, error=f"another XML file already describes {image.name}")
            )
        elif image.kind == "pdf":
            results.append(
                FileResult(item.name, error="PAGE/ALTO lines can only go with an image file")
            )
        else:
            layouts[image.key] = layout
            results.append(FileResult(item.name, lines=len(layout.lines)))
    return layouts


def _named_image(
    xml: _Item, image_name: str, by_path: dict[tuple[int, str], list[_Item]], named: list[_Item]
) -> _Item | None:
    """The image the XML names: beside it, or one folder up (PAGE in a page/ folder, as
    Transkribus exports it), else the one image of the upload with that name. Two volumes
    both holding 0001.jpg would otherwise give one volume's lines to the other's page."""
    folder = PurePosixPath(xml.name).parent
    for candidate in (folder / image_name, folder.parent / image_name):
        if (images := by_path.get((xml.archive, str(candidate)))) is not None:
            return _only(images)
    return _only(named)


def _only(images: list[_Item]) -> _Item | None:
    return images[0] if len(images) == 1 else None


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_suffix(""))


# Transkribus writes these beside each document's images: the METS file orders the pages,
# the others hold its metadata. They are no page's layout.
SIDECARS = frozenset({"mets.xml", "doc.xml", "metadata.xml"})
METS = "mets.xml"
# Transkribus's METS file takes under 1 kB a page: this is over ten thousand pages'. Its tree
# is held whole, at many times the file's size, which a file of the upload's limit would
# make gigabytes.
MAX_SIDECAR_MB = 10
# A PAGE or ALTO file of a dense newspaper page, every word's box in it, takes a few MB. Its
# tree and kraken's lines take many times that, and time: one of 5.7 MB (24,000 lines) took
# 17 s and 100 MB more to read here, so a file of the upload's limit would take gigabytes
# and many minutes.
MAX_LAYOUT_MB = 20


def _is_sidecar(item: _Item) -> bool:
    return item.kind == "xml" and item.base_name.casefold() in SIDECARS


def _sources(
    items: list[_Item], sidecars: list[_Item], folders: bool, results: list[FileResult]
) -> list[_Source]:
    """The documents the files make: each file its own, but for the images of a folder (a
    ZIP archive's, or one on disk for import_documents) that holds a METS file, which are one
    document, its pages in the METS file's order (Transkribus exports a folder a document,
    with its METS). With `folders`, any folder of images is one document, its pages in name
    order, as eScriptorium and Transkribus users zip them; without, such images stay a
    document each, as they always were: a training export holds many documents' pages in one
    folder. Images at an archive's root are never one document but by their METS file. A PDF
    is a document of its own wherever it is."""
    # By folder and archive: two archives of one name hold folders of the same names.
    beside: dict[tuple[int, str | None], dict[str, _Item]] = {}
    for sidecar in sidecars:
        beside.setdefault(sidecar.folder_key, {})[sidecar.base_name.casefold()] = sidecar
    sources: list[_Source] = []
    grouped: dict[tuple[int, str | None], _Source] = {}
    for item in items:
        if item.kind == "xml":
            continue
        folder = item.folder_key
        if (
            item.folder is None
            or item.kind not in IMAGE_KINDS
            or not (METS in beside.get(folder, {}) or (folders and not item.at_root))
        ):
            sources.append(_Source(item.name, PurePosixPath(item.name).stem[:300], [item]))
        elif folder in grouped:
            grouped[folder].items.append(item)
        else:
            grouped[folder] = _Source(item.folder, "", [item], is_folder=True)
            sources.append(grouped[folder])
    for folder, source in grouped.items():
        _order_folder(source, beside.pop(folder, {}), source.items[0].at_root, results)
    for unused in beside.values():
        for sidecar in unused.values():
            results.append(
                FileResult(
                    sidecar.name,
                    error="not used: a METS, doc.xml or metadata.xml file orders and titles the "
                    "images of its folder in a ZIP archive when they make one document (beside "
                    "a mets.xml, or with each folder a document), which none beside it do",
                )
            )
    return sources


def _order_folder(
    source: _Source, sidecars: dict[str, _Item], at_root: bool, results: list[FileResult]
) -> None:
    """The folder's pages in its METS file's order (images it does not list after them), or
    in the natural order of their names (2.jpg before 10.jpg); its title the METS file's, or
    Transkribus's doc.xml's or metadata.xml's, else the folder's name."""
    order: list[str] = []
    titles: list[str] = []
    for name in (METS, "doc.xml", "metadata.xml"):
        if (sidecar := sidecars.get(name)) is None:
            continue
        after = "; the folder's pages are in the order of their file names" if name == METS else ""
        if sidecar.size > MAX_SIDECAR_MB * 1024 * 1024:
            results.append(
                FileResult(
                    sidecar.name,
                    error=f"the file is {sidecar.size / 1024 / 1024:.1f} MB, over the "
                    f"{MAX_SIDECAR_MB} MB that {name} is read up to, and is not read{after}",
                )
            )
            continue
        try:
            if name == METS:
                mets = parse_mets(sidecar.read())
                order, title = mets.images, mets.title
            else:
                title = parse_document_title(sidecar.read())
        except XMLImportError as exc:
            results.append(FileResult(sidecar.name, error=f"{exc}{after}"))
            continue
        titles.append(title)
    position: dict[str, int] = {}
    for index, image in enumerate(order):
        position.setdefault(clean_name(PurePosixPath(image).name), index)
    source.items.sort(
        key=lambda item: (position.get(item.base_name, len(order)), _natural(item.base_name))
    )
    folder = PurePosixPath(source.name)
    fallback = folder.stem if at_root else folder.name
    source.title = next((title for title in titles if title), fallback)[:300]


def _natural(name: str) -> list:
    """A name's key in natural order: its numbers compared as numbers."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def _ingest_source(
    collection: Collection,
    source: _Source,
    layouts: dict[tuple[int, str], ImportedPage],
    user,
    segmentation: str,
    import_text: bool,
) -> FileResult:
    described = [(item, layouts.get(item.key)) for item in source.items]
    undescribed = [item.base_name for item, layout in described if layout is None]
    if undescribed and segmentation == Document.Segmentation.IMPORTED:
        if not source.is_folder:
            raise IngestError("no PAGE XML or ALTO file for this image was uploaded beside it")
        raise IngestError(
            f"no PAGE XML or ALTO file was uploaded for {len(undescribed)} of its images "
            f"(such as {undescribed[0]})"
        )
    if import_text:
        for _, layout in described:
            if layout is not None:
                _refuse_exported_lines(collection, layout)
    if len(source.items) > settings.OCRREVIEW_MAX_PAGES:
        raise _too_many_pages("folder", len(source.items))
    # A file is read once, a folder's images twice: their checksums first, to refuse a folder
    # already uploaded before any is stored.
    data = None if source.is_folder else source.items[0].read()
    digest = _digest(source, data)
    _refuse_if_uploaded_before(collection, digest, "folder" if source.is_folder else "file")
    document = Document(
        collection=collection,
        title=source.title,
        uploaded_by=user if user is not None and user.is_authenticated else None,
        segmentation=segmentation if undescribed else Document.Segmentation.IMPORTED,
        source_sha256=digest,
    )
    saved: list[str] = []
    page_rows: list[tuple[Page, ImportedPage | None]] = []
    # The files are stored before the document's transaction: rendering a long PDF takes
    # minutes, which a transaction would hold a database connection and old row versions for.
    with _deleted_on_failure(saved):
        for item, layout in described:
            try:
                stored, layout = _store_item(document, item, layout, len(page_rows), saved, data)
            except IngestError as exc:
                if not source.is_folder:
                    raise
                raise IngestError(f"{item.base_name}: {exc}") from exc
            page_rows.extend((page, layout) for page in stored)
            # A folder's PDFs and TIFFs are each held to the limit; together, too.
            if len(page_rows) > settings.OCRREVIEW_MAX_PAGES:
                raise _too_many_pages("folder", f"more than {settings.OCRREVIEW_MAX_PAGES}")
    # The files go with a failed commit too (a foreign key checked then), but once it commits
    # they are the document's, even when what runs after the commit (queueing its segmentation)
    # fails: the first thing the commit runs forgets them.
    with _deleted_on_failure(saved), transaction.atomic():
        transaction.on_commit(saved.clear)
        try:
            with transaction.atomic():
                document.save()
        except IntegrityError:
            # The same file in an upload that committed while this one rendered.
            _refuse_if_uploaded_before(collection, digest, "folder" if source.is_folder else "file")
            raise
        line_count = 0
        for page, layout in page_rows:
            page.document = document
            page.save()
            geometries: list[LineGeometry] | None = None
            if layout is not None:
                geometries = imported_lines(layout, page.width, page.height)
            elif document.segmentation == Document.Segmentation.WHOLE_IMAGE:
                geometries = whole_image_lines(page.width, page.height)
            if geometries is not None:
                line_count += store_lines(page, geometries, import_text=import_text, user=user)
        start_processing(document)
    return FileResult(source.name, document=document, pages=len(page_rows), lines=line_count)


def _digest(source: _Source, data: bytes | None) -> str:
    """A file's SHA-256 (of `data`, its bytes); a folder's, that of its images' SHA-256s in
    its order: the same images in the same order are the same document, whatever the folder
    is named."""
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    pages = "\n".join(_file_digest(item) for item in source.items)
    return hashlib.sha256(f"folder\n{pages}".encode()).hexdigest()


def _file_digest(item: _Item) -> str:
    if item.path is None:
        return hashlib.sha256(item.read()).hexdigest()
    with item.path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _store_item(
    document: Document,
    item: _Item,
    layout: ImportedPage | None,
    start: int,
    saved: list[str],
    data: bytes | None,
) -> tuple[list[Page], ImportedPage | None]:
    """The item's pages' images stored, numbered from `start`, and its layout in the frame of
    the image stored; with `data`, the bytes of a file that is a document of its own, the file
    itself too when it is a PDF or TIFF."""
    content = item.read() if data is None else data
    pages = _open_pages(content, item.kind)
    with closing(pages):
        if layout is not None and pages.count != 1:
            raise IngestError("a PAGE/ALTO file can only describe a single-page image")
        if item.kind in ("pdf", "tiff") and data is not None:
            saved.append(
                storage.save_field_file(
                    document.source_file,
                    storage.name_of_its_own(item.name),
                    ContentFile(data),
                    save=False,
                )
            )
        stored = _store_page_files(
            pages.images,
            saved,
            lambda number, extension: source_name(
                item.name, item.kind, pages.count, number, extension
            ),
            start,
        )
    if layout is not None:
        (page,) = stored
        layout = upright_layout(layout, _orientation(content), page.width, page.height)
    return stored, layout


def _refuse_if_uploaded_before(collection: Collection, digest: str, what: str) -> None:
    earlier = collection.documents.filter(source_sha256=digest).first()
    if earlier is not None:
        raise AlreadyUploaded(
            f"this {what} is already in the collection, as “{earlier.title}”, and is not "
            "added twice (delete that document to upload it again)",
            earlier,
        )


def _refuse_exported_lines(collection: Collection, layout: ImportedPage) -> None:
    """An export's PAGE or ALTO uploaded into its own collection would copy its lines as new
    ground truth, its frozen test lines into the next training set among them, and the gate
    would score a model on lines it trained on. The checksum of the file does not tell: the
    page images of a PDF, a TIFF, a IIIF manifest or a rotated photo are not the upload."""
    exported = {
        line.exported_from: line.text
        for line in layout.lines
        if line.exported_from is not None and line.text
    }
    own = own_lines(collection, exported)
    if own:
        raise IngestError(
            f"{len(own)} lines of its PAGE/ALTO file (such as line {min(own)}) are this "
            "collection's own lines, exported from it; an export imports into another collection"
        )


def own_lines(collection: Collection, texts: dict[int, str]) -> set[int]:
    """The line ids among `texts` (line id: text) that name a line of this collection which
    holds or held that text: lines an export of it brought back. Another site's ids may
    collide with ours; their texts will not."""
    current = list(
        Line.objects.filter(collection=collection, pk__in=texts).values_list("pk", "text")
    )
    earlier = [
        pair
        for _, answer in texts_held_before.send(None, line_ids=[pk for pk, _ in current])
        for pair in answer
    ]
    # Lines imported before texts were kept in NFC may hold another spelling.
    held = {(pk, nfc(text)) for pk, text in [*current, *earlier]}
    return {pk for pk, text in texts.items() if (pk, text) in held}


def _store_page_files(
    images: Iterator[_PageImage],
    saved: list[str],
    named: Callable[[int, str], str],
    start: int = 0,
) -> list[Page]:
    """Each page's image stored as soon as it is rendered, so that one page at a time is in
    memory; the pages' rows, still without their document, indexed from `start`. `named`
    gives a page's source name from its number in its file and its image's extension."""
    # Named before the document has a key to name them by.
    prefix = uuid.uuid4().hex
    rows = []
    for number, image in enumerate(images, start=1):
        index = start + number - 1
        page = Page(
            index=index,
            width=image.width,
            height=image.height,
            source_name=named(number, image.extension),
        )
        saved.append(
            storage.save_field_file(
                page.image,
                f"{prefix}-{index + 1}.{image.extension}",
                ContentFile(image.content),
                save=False,
            )
        )
        rows.append(page)
    return rows


SOURCE_NAME_LENGTH = 255  # Page.source_name's max_length, a file system's longest name


def source_name(file_name: str, kind: str, count: int, number: int, extension: str) -> str:
    """What page `number` of the uploaded file is called where the uploader keeps the scans,
    for the PAGE, ALTO and TEI files to name: an image's own name (a ZIP entry's without its
    folders), which an upload of those files beside the images pairs them by. A PDF's pages,
    and a multi-page TIFF's, have no file of their own; they are named as poppler's pdftoppm
    names the images it cuts the file into (page 3 of 12 of letter.pdf: letter-03.jpg), the
    usual way to get images out of a PDF for Transkribus or eScriptorium."""
    base = PurePosixPath(file_name.replace("\\", "/")).name
    if kind != "pdf" and count == 1:
        name = base
    else:
        name = f"{PurePosixPath(base).stem}-{number:0{len(str(count))}d}.{extension}"
    if len(name) <= SOURCE_NAME_LENGTH:
        return name
    suffix = PurePosixPath(name).suffix[:16]
    return name[: SOURCE_NAME_LENGTH - len(suffix)] + suffix


IMAGE_FILE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jp2", ".jpx", ".png", ".tif", ".tiff"})


def remote_source_name(service: str, image: str) -> str:
    """What a IIIF canvas's image is called, for transcripts to name as an upload's file
    name: the Image API identifier's last part when it names a file (…/iiif/ms12%2F0001.jp2:
    0001.jp2), else a static image's file name (…/scans/0001.jpg); nothing when neither
    names one (an identifier such as f12, or an Image API request's default.jpg), and the
    page is named after its document."""
    candidates = [service] if service else [image]
    for url in candidates:
        # An escaped control character (%00) is cleaned as an upload's is.
        name = clean_name(PurePosixPath(unquote(urlsplit(url).path.rstrip("/"))).name)
        if PurePosixPath(name).suffix.lower() in IMAGE_FILE_SUFFIXES:
            return name[:SOURCE_NAME_LENGTH]
    return ""


@contextmanager
def _deleted_on_failure(names: list[str]) -> Iterator[None]:
    try:
        yield
    except BaseException:  # Ctrl-C in import_documents too
        for name in names:
            try:
                default_storage.delete(name)
            except Exception:
                # One file that cannot be deleted (the storage is down) keeps no other.
                logger.exception("Could not delete %s after a failed upload", name)
        raise


def start_processing(document: Document) -> None:
    # Imported here: the tasks module imports iiif, which imports this one.
    from ocrreview.corpus.tasks import segment_document

    if document.segmentation == Document.Segmentation.KRAKEN:
        # Robust: with the broker down the upload stands, and the segmentation sweep queues it.
        transaction.on_commit(lambda: segment_document.delay(document.pk), robust=True)
        return
    document.status = Document.Status.RECOGNIZING
    document.save(update_fields=["status"])
    lines_ready.send(Document, document=document)


def decode_image_file(name: str, data: bytes) -> _PageImage:
    """One image file as a page, checked as an uploaded image is (a TIFF's first frame)."""
    kind = sniff(data)
    if kind not in IMAGE_KINDS:
        raise IngestError("not an image (JPEG, PNG or TIFF)")
    pages = _open_pages(data, kind)
    with closing(pages):
        return next(pages.images)


@dataclass
class _Pages:
    """A file's pages: counted and checked when the file is opened, each rendered or decoded
    only when `images` reaches it, so that a long PDF or TIFF is never in memory whole."""

    count: int
    images: Iterator[_PageImage]
    close: Callable[[], None]


def _open_pages(data: bytes, kind: str) -> _Pages:
    if kind == "pdf":
        return _open_pdf(data)
    if kind == "tiff":
        return _open_tiff(data)
    return _Pages(1, iter([_decode_image(data, kind)]), lambda: None)


def _decode_image(data: bytes, kind: str) -> _PageImage:
    try:
        image = open_image(data)
    except ImageError as exc:
        raise IngestError(str(exc)) from exc
    if _orientation(data) == 1:
        # The upload is already upright: keep its bytes rather than re-encode them.
        extension = "jpg" if kind == "jpeg" else "png"
        return _PageImage(data, extension, image.width, image.height)
    return _encode(image, "jpg" if kind == "jpeg" else "png")


def _open_tiff(data: bytes) -> _Pages:
    """Every frame of a TIFF is a page."""
    with _tiff_errors():
        tiff = Image.open(io.BytesIO(data))
    try:
        count = _tiff_page_count(tiff)
    except BaseException:
        tiff.close()
        raise
    frames = _tiff_frames(tiff, count)

    def close() -> None:
        frames.close()
        tiff.close()

    return _Pages(count, frames, close)


def _tiff_page_count(tiff: Image.Image) -> int:
    # Pillow's n_frames walks every frame's header, slower with each: a file of millions of
    # tiny frames would take minutes. Seeking frame by frame stops one past the limit.
    limit = settings.OCRREVIEW_MAX_PAGES
    count = 1
    with _tiff_errors():
        while count <= limit:
            try:
                tiff.seek(count)
            except EOFError:
                break
            count += 1
        tiff.seek(0)
    if count > limit:
        raise _too_many_pages("TIFF", f"more than {limit}")
    return count


def _tiff_frames(tiff: Image.Image, count: int) -> Iterator[_PageImage]:
    for index in range(count):
        with _tiff_errors():
            tiff.seek(index)
            if tiff.width * tiff.height > MAX_PIXELS:
                raise ImageError(
                    f"page {index + 1} is too large to process ({tiff.width}x{tiff.height} pixels)"
                )
            tiff.load()
            # As PDF pages are (the TIFF itself is kept as the source): a colour or grey scan
            # took 5 to 20 times its JPEG's size as PNG. Black and white stays lossless.
            extension = "png" if tiff.mode == "1" else "jpg"
            page = _encode(to_rgb(ImageOps.exif_transpose(tiff.copy())), extension)
        yield page


@contextmanager
def _tiff_errors() -> Iterator[None]:
    try:
        yield
    except ImageError as exc:
        raise IngestError(str(exc)) from exc
    except Image.DecompressionBombError as exc:
        raise IngestError(f"the image is too large to process ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, struct.error) as exc:
        # TypeError: a frame without its dimensions; struct.error: a header cut short.
        raise IngestError(f"the TIFF is corrupt or truncated ({exc})") from exc


def _too_many_pages(kind: str, count: int | str) -> IngestError:
    limit = settings.OCRREVIEW_MAX_PAGES
    return IngestError(
        f"the {kind} has {count} pages; the limit is {limit} (OCRREVIEW_MAX_PAGES): "
        "upload it in parts"
    )


# PDFium may not be entered by two threads at once, even for two documents (pypdfium2's
# "Incompatibility with Threading"), and the web server runs threads: two PDF uploads at
# once would corrupt the process. Pages of concurrent uploads take turns.
_PDFIUM = threading.Lock()


def _open_pdf(data: bytes) -> _Pages:
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower() or "security" in str(exc).lower():
                raise IngestError("the PDF is encrypted; upload it without a password") from exc
            raise IngestError(f"the PDF cannot be read ({exc})") from exc
        count = len(pdf)
        try:
            if count == 0:
                raise IngestError("the PDF has no pages")
            if count > settings.OCRREVIEW_MAX_PAGES:
                raise _too_many_pages("PDF", count)
        except IngestError:
            pdf.close()
            raise
    rendered = _rendered_pages(pdf, count)

    def close() -> None:
        rendered.close()
        with _PDFIUM:
            pdf.close()

    return _Pages(count, rendered, close)


def _rendered_pages(pdf: pdfium.PdfDocument, count: int) -> Iterator[_PageImage]:
    for index in range(count):
        with _PDFIUM:
            page = bitmap = None
            try:
                page = pdf[index]
                dpi = _page_dpi(page)
                # A billionth less: the page is rendered to the ceiling of its size times the
                # scale, and 432 pt (6 in) at 150/72 is 900.0000000000001 pixels.
                scale = dpi / 72 * (1 - 1e-9)
                width, height = page.get_size()
                if width * scale * height * scale > MAX_PIXELS:
                    raise IngestError(f"page {index + 1} is too large to render at {dpi:.0f} dpi")
                bitmap = page.render(scale=scale)
                encoded = _encode(to_rgb(bitmap.to_pil()), "jpg")
            except pdfium.PdfiumError as exc:
                raise IngestError(f"the PDF cannot be rendered ({exc})") from exc
            finally:
                # Freed now, under the lock, not by the garbage collector on any thread.
                for resource in (bitmap, page):
                    if resource is not None:
                        resource.close()
        yield encoded


# A scanned page is rendered at its scan's resolution, not finer: a 150 dpi scan rendered at
# 300 took four times the pixels, the storage and the segmentation time, and showed nothing
# more. Below this, a scan is rendered finer all the same: kraken and the model need the
# pixels a line of handwriting has at 150 dpi.
MIN_SCAN_DPI = 150
# Enough to tell a scan from a page of text; a page of more objects is rendered as text is.
MAX_OBJECTS_LOOKED_AT = 10_000


def _page_dpi(page: pdfium.PdfPage) -> float:
    """The resolution to render a PDF page at: a scanned page's (one image, and nothing else
    to see but an OCR layer's invisible text) its image's own, between MIN_SCAN_DPI and
    OCRREVIEW_PDF_DPI; any other page's OCRREVIEW_PDF_DPI, which keeps vector text sharp."""
    most = settings.OCRREVIEW_PDF_DPI
    images = []
    for number, item in enumerate(page.get_objects()):
        if number == MAX_OBJECTS_LOOKED_AT:
            return most
        if item.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            images.append(item)
        elif item.type == pdfium_c.FPDF_PAGEOBJ_TEXT:
            if (
                pdfium_c.FPDFTextObj_GetTextRenderMode(item.raw)
                != pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
            ):
                return most
        elif item.type != pdfium_c.FPDF_PAGEOBJ_FORM:  # a form's objects come after it
            return most
        if len(images) > 1:
            return most
    if not images:
        return most
    (image,) = images
    left, bottom, right, top = image.get_bounds()
    extent = max(right - left, top - bottom) / 72  # inches; a scan may be placed turned
    if extent <= 0:
        return most
    native = max(image.get_px_size()) / extent
    return max(min(native, most), min(MIN_SCAN_DPI, most))


def _encode(image: Image.Image, extension: str) -> _PageImage:
    buffer = io.BytesIO()
    if extension == "jpg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return _PageImage(buffer.getvalue(), extension, image.width, image.height)


def _orientation(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(0x0112, 1) or 1)
    except (OSError, SyntaxError, ValueError):
        return 1
