"""From uploaded files to documents and pages: the one entry point that the web upload, the
API and `import_documents` share.

Every file succeeds or fails on its own. A file is decoded completely before anything is
written, and its document is written in one transaction, so a bad file leaves no trace
and never touches what is already stored; its error message goes back in its FileResult.
"""

import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pypdfium2 as pdfium
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageOps, ImageSequence

from ocrreview.corpus.models import Collection, Document, Page
from ocrreview.corpus.segmentation import (
    LineGeometry,
    imported_lines,
    store_lines,
    whole_image_lines,
)
from ocrreview.corpus.xmlimport import ImportedPage, XMLImportError, parse_layout_xml
from recognition.preprocess import MAX_PIXELS, ImageError, open_image, to_rgb

logger = logging.getLogger(__name__)

IMAGE_KINDS = {"jpeg", "png", "tiff"}
# An entry that expands more than this many times over its compressed size is a ZIP bomb,
# whatever the archive's total: real scans barely compress.
MAX_ZIP_RATIO = 100
MIN_RATIO_CHECKED = 1024 * 1024


# What zipfile raises for one entry it cannot read: among others zlib.error for a damaged
# deflate stream, RuntimeError for an encrypted entry, NotImplementedError for an unknown method.
ZIP_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)
ZIP_ENCRYPTED = 0x1  # general purpose flag bit 0 of the ZIP format


class IngestError(ValueError):
    """A file that cannot be ingested, with a message fit to show to the uploader."""


@dataclass
class Upload:
    name: str
    size: int
    reader: Callable[[], bytes] = field(repr=False)

    def read(self) -> bytes:
        return self.reader()

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> "Upload":
        return cls(name, len(data), lambda: data)

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> "Upload":
        return cls(name or path.name, path.stat().st_size, path.read_bytes)

    @classmethod
    def from_django(cls, uploaded) -> "Upload":
        def read() -> bytes:
            uploaded.seek(0)
            return uploaded.read()

        return cls(uploaded.name, uploaded.size, read)


@dataclass
class FileResult:
    name: str
    error: str = ""
    document: Document | None = None
    pages: int = 0
    lines: int = 0

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
        }


@dataclass
class _PageImage:
    content: bytes
    extension: str
    width: int
    height: int


@dataclass
class _Item:
    """One file to ingest, after archives are unpacked."""

    name: str
    data: bytes
    kind: str


def do_ingest(
    collection: Collection,
    uploads: Iterable[Upload],
    *,
    user=None,
    segmentation: str = Document.Segmentation.KRAKEN,
    import_text: bool = False,
) -> list[FileResult]:
    """Create a document per image, multi-page TIFF or PDF, and queue its segmentation.

    PAGE/ALTO files are matched to their image (same name, or the image the XML names);
    their lines replace segmentation, and with `import_text` their text becomes reviewed
    ground truth.
    """
    results: list[FileResult] = []
    items: list[_Item] = []
    for upload in uploads:
        try:
            items.extend(_unpack(upload, results))
        except IngestError as exc:
            results.append(FileResult(upload.name, error=str(exc)))

    layouts = _pair_layouts(items, results)
    for item in items:
        if item.kind == "xml":
            continue
        layout = layouts.get(item.name)
        try:
            results.append(_ingest_item(collection, item, layout, user, segmentation, import_text))
        except IngestError as exc:
            results.append(FileResult(item.name, error=str(exc)))
        except Exception as exc:  # a decoder's unforeseen failure must not sink the upload
            logger.exception("Ingesting %s failed", item.name)
            results.append(
                FileResult(item.name, error=f"the file could not be read ({type(exc).__name__})")
            )
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


def _unpack(upload: Upload, results: list[FileResult]) -> list[_Item]:
    if upload.size > _max_bytes():
        raise IngestError(
            f"the file is {upload.size / 1024 / 1024:.1f} MB; "
            f"the limit is {settings.OCRREVIEW_MAX_UPLOAD_MB} MB"
        )
    data = upload.read()
    kind = sniff(data)
    if kind != "zip":
        return [_Item(upload.name, data, kind)]
    items = []
    for name, entry in _zip_entries(upload.name, data, results):
        try:
            entry_kind = sniff(entry)
            if entry_kind == "zip":
                raise IngestError("ZIP archives inside ZIP archives are not unpacked")
            items.append(_Item(name, entry, entry_kind))
        except IngestError as exc:
            results.append(FileResult(name, error=str(exc)))
    return items


def _zip_entries(archive: str, data: bytes, results: list[FileResult]):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise IngestError(f"not a readable ZIP archive ({exc})") from exc
    infos = [info for info in zf.infolist() if not info.is_dir()]
    if len(infos) > settings.OCRREVIEW_ZIP_MAX_FILES:
        raise IngestError(
            f"the archive holds {len(infos)} files; the limit is {settings.OCRREVIEW_ZIP_MAX_FILES}"
        )
    budget = settings.OCRREVIEW_ZIP_MAX_MB * 1024 * 1024
    declared = sum(info.file_size for info in infos)
    if declared > budget:
        raise IngestError(
            f"the archive would expand to {declared / 1024 / 1024:.0f} MB; "
            f"the limit is {settings.OCRREVIEW_ZIP_MAX_MB} MB"
        )
    for info in infos:
        name = f"{archive}/{info.filename}"
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.parts[:1] == ("__MACOSX",) or path.name.startswith("._"):
            continue
        if info.filename.startswith(("/", "\\")) or ":" in path.parts[0] or ".." in path.parts:
            results.append(FileResult(name, error="unsafe path in the archive; entry skipped"))
            continue
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
        try:
            entry = _read_capped(zf, info, min(budget, _max_bytes()))
        except IngestError as exc:
            results.append(FileResult(name, error=str(exc)))
            continue
        budget -= len(entry)
        yield name, entry


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # The sizes in the archive's directory may lie; never read more than they claim.
    cap = min(info.file_size, limit)
    try:
        with zf.open(info) as stream:
            entry = stream.read(cap + 1)
    except ZIP_ENTRY_ERRORS as exc:
        raise IngestError(f"the entry cannot be unpacked ({exc})") from exc
    if len(entry) > cap:
        raise IngestError("the entry is larger than the archive says or than the size limit")
    return entry


def _pair_layouts(items: list[_Item], results: list[FileResult]) -> dict[str, ImportedPage]:
    images = [item for item in items if item.kind != "xml"]
    by_stem = {_stem(item.name): item for item in images}
    by_basename = {PurePosixPath(item.name).name: item for item in images}
    layouts: dict[str, ImportedPage] = {}
    for item in items:
        if item.kind != "xml":
            continue
        try:
            layout = parse_layout_xml(item.data, item.name)
        except XMLImportError as exc:
            results.append(FileResult(item.name, error=str(exc)))
            continue
        image = by_stem.get(_stem(item.name)) or by_basename.get(layout.image_name)
        if image is None:
            results.append(
                FileResult(
                    item.name,
                    error=f"the XML refers to the image {layout.image_name!r}, "
                    "which is not part of this upload",
                )
            )
        elif image.name in layouts:
            results.append(
                FileResult(item.name, error=f"another XML file already describes {image.name}")
            )
        elif image.kind == "pdf":
            results.append(
                FileResult(item.name, error="PAGE/ALTO lines can only go with an image file")
            )
        else:
            layouts[image.name] = layout
            results.append(FileResult(item.name, lines=len(layout.lines)))
    return layouts


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_suffix(""))


def _ingest_item(
    collection: Collection,
    item: _Item,
    layout: ImportedPage | None,
    user,
    segmentation: str,
    import_text: bool,
) -> FileResult:
    if layout is None and segmentation == Document.Segmentation.IMPORTED:
        raise IngestError("no PAGE XML or ALTO file for this image was uploaded beside it")
    pages = _render_pdf(item.data) if item.kind == "pdf" else _decode_image(item)
    if layout is not None and len(pages) != 1:
        raise IngestError("a PAGE/ALTO file can only describe a single-page image")
    method = Document.Segmentation.IMPORTED if layout else segmentation
    keep_source = item.kind in ("pdf", "tiff")
    saved: list[str] = []
    try:
        with transaction.atomic():
            document = Document.objects.create(
                collection=collection,
                title=PurePosixPath(item.name).stem[:300],
                uploaded_by=user if user is not None and user.is_authenticated else None,
                segmentation=method,
            )
            if keep_source:
                document.source_file.save(
                    PurePosixPath(item.name).name, ContentFile(item.data), save=True
                )
                saved.append(document.source_file.name)
            line_count = 0
            for index, page_image in enumerate(pages):
                page = Page(
                    document=document,
                    index=index,
                    width=page_image.width,
                    height=page_image.height,
                )
                page.image.save(
                    f"{document.pk}-{index + 1}.{page_image.extension}",
                    ContentFile(page_image.content),
                    save=False,
                )
                saved.append(page.image.name)
                page.save()
                geometries: list[LineGeometry] | None = None
                if layout is not None:
                    geometries = imported_lines(layout, page.width, page.height)
                elif method == Document.Segmentation.WHOLE_IMAGE:
                    geometries = whole_image_lines(page.width, page.height)
                if geometries is not None:
                    line_count += store_lines(page, geometries, import_text=import_text, user=user)
            start_processing(document)
    except Exception:
        for name in saved:
            default_storage.delete(name)
        raise
    return FileResult(item.name, document=document, pages=len(pages), lines=line_count)


def start_processing(document: Document) -> None:
    # Imported: circular at module level (transcription builds on corpus).
    from ocrreview.corpus.tasks import segment_document
    from ocrreview.transcription.services import do_queue_recognition, finish_documents

    if document.segmentation == Document.Segmentation.KRAKEN:
        transaction.on_commit(lambda: segment_document.delay(document.pk))
        return
    document.status = Document.Status.RECOGNIZING
    document.save(update_fields=["status"])
    do_queue_recognition(document.lines.all())
    finish_documents({document.pk})


def decode_image_file(name: str, data: bytes) -> _PageImage:
    """One image file as a page, checked as an uploaded image is (a TIFF's first frame)."""
    kind = sniff(data)
    if kind not in IMAGE_KINDS:
        raise IngestError("not an image (JPEG, PNG or TIFF)")
    return _decode_image(_Item(name, data, kind))[0]


def _decode_image(item: _Item) -> list[_PageImage]:
    if item.kind == "tiff":
        return _decode_frames(item.data)
    try:
        image = open_image(item.data)
    except ImageError as exc:
        raise IngestError(str(exc)) from exc
    if _orientation(item.data) == 1:
        # The upload is already upright: keep its bytes rather than re-encode them.
        extension = "jpg" if item.kind == "jpeg" else "png"
        return [_PageImage(item.data, extension, image.width, image.height)]
    return [_encode(image, "jpg" if item.kind == "jpeg" else "png")]


def _decode_frames(data: bytes) -> list[_PageImage]:
    """Every frame of a TIFF is a page."""
    pages = []
    try:
        with Image.open(io.BytesIO(data)) as tiff:
            for frame in ImageSequence.Iterator(tiff):
                if frame.width * frame.height > MAX_PIXELS:
                    raise ImageError(
                        f"page {len(pages) + 1} is too large to process "
                        f"({frame.width}x{frame.height} pixels)"
                    )
                frame.load()
                pages.append(_encode(to_rgb(ImageOps.exif_transpose(frame.copy())), "png"))
    except ImageError as exc:
        raise IngestError(str(exc)) from exc
    except Image.DecompressionBombError as exc:
        raise IngestError(f"the image is too large to process ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise IngestError(f"the TIFF is corrupt or truncated ({exc})") from exc
    if not pages:
        raise IngestError("the TIFF holds no pages")
    return pages


def _render_pdf(data: bytes) -> list[_PageImage]:
    scale = settings.OCRREVIEW_PDF_DPI / 72
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower() or "security" in str(exc).lower():
            raise IngestError("the PDF is encrypted; upload it without a password") from exc
        raise IngestError(f"the PDF cannot be read ({exc})") from exc
    try:
        if len(pdf) == 0:
            raise IngestError("the PDF has no pages")
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            width, height = page.get_size()
            if width * scale * height * scale > MAX_PIXELS:
                raise IngestError(
                    f"page {index + 1} is too large to render at {settings.OCRREVIEW_PDF_DPI} dpi"
                )
            image = page.render(scale=scale).to_pil()
            pages.append(_encode(to_rgb(image), "jpg"))
        return pages
    except pdfium.PdfiumError as exc:
        raise IngestError(f"the PDF cannot be rendered ({exc})") from exc
    finally:
        pdf.close()


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
