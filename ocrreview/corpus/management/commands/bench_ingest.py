"""Upload a short and a long PDF of scanned pages and say how much memory each upload
allocated at its peak, the file itself (in memory before) not counted. A PDF's or TIFF's pages
are stored one by one as they are rendered, so that peak should not grow with the page count:
the ratio of the long PDF's to the short one's is printed last, and 1.0 means flat.

tracemalloc counts what is allocated through Python: the encoded pages, the rows, copies of
the file, and pixels where their library allocates them so. Pillow's own buffers are not
counted; they hold the page being rendered and are freed with it. The uploads are kraken documents, deleted with their files at the end; a segment
worker running meanwhile may start on them and find them gone.
"""

import io
import os
import time
import tracemalloc

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection

SCAN = settings.BASE_DIR / "demo" / "lathrop" / "SC0033B_s4_b01_f14_i080.jpg"
# The scan's pixels make a page of 7.7 by 10 inches, rendered at OCRREVIEW_PDF_DPI.
SCAN_DPI = 150


class Command(BaseCommand):
    help = "Peak memory an upload allocates beyond its file, for a short and a long PDF."

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=100, help="pages of the long PDF")

    def handle(self, *args, pages: int, **options):
        if pages < 2:
            raise CommandError("--pages must be at least 2: the short PDF has one page.")
        collection = Collection.objects.create(name=f"bench-ingest-{os.getpid()}-{time.time()}")
        try:
            # The first upload also imports and caches what every later one uses.
            do_ingest(collection, [Upload.from_bytes("warm-up.pdf", _scanned_pdf(1))])
            short = self._peak(collection, 1)
            long = self._peak(collection, pages)
        finally:
            _delete(collection)
        self.stdout.write(f"peak_ratio: {long / short:.2f}")

    def _peak(self, collection: Collection, pages: int) -> float:
        data = _scanned_pdf(pages)
        tracemalloc.start()
        try:
            (result,) = do_ingest(collection, [Upload.from_bytes(f"{pages}.pdf", data)])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if not result.ok:
            raise CommandError(f"the {pages}-page PDF was refused: {result.error}")
        mb = 1024 * 1024
        self.stdout.write(
            f"{pages} page{'s' if pages > 1 else ''} ({len(data) / mb:.1f} MB of PDF): "
            f"peak {peak / mb:.1f} MB allocated while it was stored"
        )
        return peak / mb


def _scanned_pdf(pages: int) -> bytes:
    with Image.open(SCAN) as scan:
        page = scan.convert("RGB")
    buffer = io.BytesIO()
    page.save(
        buffer, format="PDF", save_all=True, append_images=[page] * (pages - 1), resolution=SCAN_DPI
    )
    return buffer.getvalue()


def _delete(collection: Collection) -> None:
    for document in collection.documents.all():
        for page in document.pages.all():
            page.image.delete(save=False)
        document.source_file.delete(save=False)
        document.delete()
    collection.delete()
