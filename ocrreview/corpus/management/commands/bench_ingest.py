"""Upload a short and a long PDF of scanned pages and say how far each upload raised this
process's resident memory at its peak, the file itself (in memory before) not counted. A PDF's
or TIFF's pages are stored one by one as they are rendered, so that peak should not grow with
the page count: the ratio of the long PDF's to the short one's is printed last, and 1.0 means
flat.

The peak is Linux's VmHWM, reset before each upload through /proc/self/clear_refs: it counts
every allocation, pdfium's bitmaps and Pillow's buffers included. The uploads are kraken
documents, deleted with their files at the end; a segment worker running meanwhile may start
on them and find them gone.
"""

import io
import os
import re
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection

SCAN = settings.BASE_DIR / "demo" / "lathrop" / "SC0033B_s4_b01_f14_i080.jpg"
# Archives scan at 300 dpi, and a scanned page renders at its scan's resolution: the demo's
# 150 dpi scan, doubled, makes a page of 7.7 by 10 inches at 300 dpi.
SCAN_DPI = 300
MB = 1024 * 1024


class Command(BaseCommand):
    help = "Peak memory an upload takes beyond its file, for a short and a long PDF."

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=100, help="pages of the long PDF")

    def handle(self, *args, pages: int, **options):
        if pages < 2:
            raise CommandError("--pages must be at least 2: the short PDF has one page.")
        collection = Collection.objects.create(name=f"bench-ingest-{os.getpid()}-{time.time()}")
        try:
            # The first upload also imports and caches what every later one uses.
            warm_up = _scanned_pdf(1, title="warm-up")  # a file of its own: not a duplicate
            do_ingest(collection, [Upload.from_bytes("warm-up.pdf", warm_up)])
            short = self._peak(collection, 1)
            long = self._peak(collection, pages)
        finally:
            _delete(collection)
        self.stdout.write(f"peak_ratio: {long / short:.2f}")

    def _peak(self, collection: Collection, pages: int) -> float:
        data = _scanned_pdf(pages)
        before = _reset_peak()
        (result,) = do_ingest(collection, [Upload.from_bytes(f"{pages}.pdf", data)])
        peak = _status_kb("VmHWM") - before
        if not result.ok:
            raise CommandError(f"the {pages}-page PDF was refused: {result.error}")
        self.stdout.write(
            f"{pages} page{'s' if pages > 1 else ''} ({len(data) / MB:.1f} MB of PDF): "
            f"peak {peak * 1024 / MB:.1f} MB above the memory before"
        )
        return peak


def _reset_peak() -> int:
    """Make VmHWM the memory in use now, and return it (kB)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:
        raise CommandError(
            f"cannot reset the peak memory here ({exc}); the bench needs Linux"
        ) from exc
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[1])


def _scanned_pdf(pages: int, title: str = "") -> bytes:
    with Image.open(SCAN) as scan:
        page = scan.convert("RGB").resize(
            (scan.width * 2, scan.height * 2), Image.Resampling.BICUBIC
        )
    buffer = io.BytesIO()
    page.save(
        buffer,
        format="PDF",
        save_all=True,
        append_images=[page] * (pages - 1),
        resolution=SCAN_DPI,
        title=title,
    )
    return buffer.getvalue()


def _delete(collection: Collection) -> None:
    for document in collection.documents.all():
        for page in document.pages.all():
            page.image.delete(save=False)
        document.source_file.delete(save=False)
        document.delete()
    collection.delete()
