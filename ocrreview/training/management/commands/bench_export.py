"""Benchmark dataset exports: speed and the worker's peak memory as the collection grows.

    python manage.py bench_export [--lines 100000] [--also 25000]

Seeds a throwaway PostgreSQL database (<name>_bench, created and dropped here) with one
collection per size: documents of 50 pages (ten documents at least), 30 reviewed lines a page,
each with the correction that names its reviewer, made in SQL (generate_series). The pages share
the three scans of the demo collection at half size, stored through the storage layer as
uploads are. Each export is built by the function the Celery task calls (actions.run_export),
with every format, in a forked child process as a prefork worker runs it. It is the
collection's first export, so it also freezes the evaluation split; the child does that first,
to tell the two apart, and reports its peak resident set size for the whole and for each.
Prints, for --also and then for --lines, the time, `lines_per_s`, `peak_rss_mb` and the size of
the zip, and last the --lines figure alone: `peak_rss_mb: N`.
"""

import multiprocessing
import resource
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from PIL import Image

from ocrreview import storage
from ocrreview.corpus.management.bench_database import bench_database
from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.review.models import Correction
from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import DatasetExport

DEMO_PAGES = sorted((Path(__file__).resolve().parents[4] / "demo" / "lathrop").glob("*.jpg"))
LINES_PER_PAGE = 30
PAGES_PER_DOCUMENT = 50
SCALE = 0.5  # a line crop of about 520x24 pixels, some 20 KB as PNG


class Command(BaseCommand):
    help = __doc__.splitlines()[0]
    # The system checks import every view, and kraken and torch with them: the forked child
    # would start with them in its resident set, and the figure would not be the export's.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=100_000)
        parser.add_argument(
            "--also", type=int, default=25_000, help="a smaller size exported first (0: none)"
        )

    def handle(self, *args, lines: int, also: int, **options):
        if lines < 1 or also < 0:
            raise CommandError("--lines must be positive and --also not negative.")
        if not DEMO_PAGES:
            raise CommandError("the demo page images (demo/lathrop/*.jpg) are missing")
        with bench_database(self.stdout.write):
            stored = store_page_images()
            try:
                peak = 0
                for size in [s for s in (also, lines) if s]:
                    peak = self.measure(size, stored)
            finally:
                for name, _, _ in stored:
                    default_storage.delete(name)
        self.stdout.write(f"peak_rss_mb: {peak}")

    def measure(self, lines: int, stored: list[tuple[str, int, int]]) -> int:
        started = time.perf_counter()
        export = seed(lines, stored)
        self.stdout.write(f"seeded {lines} lines in {time.perf_counter() - started:.1f} s")
        base_mb = round(_status_kb("VmRSS") / 1024)
        measured = build_in_child(export.pk)
        export.refresh_from_db()
        if export.status != DatasetExport.Status.DONE:
            raise CommandError(f"the export of {lines} lines failed: {export.error}")
        if export.counts["lines"] != lines:
            raise CommandError(f"the export holds {export.counts['lines']} lines, not {lines}")
        try:
            if storage.is_local():
                # Its directory, which a streamed zip writes last, lists every line image.
                with storage.local_copy(export.path) as local, zipfile.ZipFile(local) as archive:
                    images = sum(
                        name.startswith("imagefolder/") and name.endswith(".png")
                        for name in archive.namelist()
                    )
                if images != lines - export.counts["held_out"]:
                    raise CommandError(f"the zip holds {images} line images for {lines} lines")
            zip_mb = default_storage.size(export.path) / 1024 / 1024
        finally:
            default_storage.delete(export.path)
        peak = round(measured.peak_kb / 1024)
        parts = f"freezing the split {round(measured.freeze_kb / 1024)}"
        if measured.export_kb is not None:
            parts += f", the export after it {round(measured.export_kb / 1024)}"
        self.stdout.write(
            f"export of {lines} lines: {measured.seconds:.1f} s, "
            f"lines_per_s: {lines / measured.seconds:.1f}, peak_rss_mb: {peak} ({parts}; "
            f"{base_mb} at the fork), zip_mb: {zip_mb:.0f}"
        )
        return peak


def store_page_images() -> list[tuple[str, int, int]]:
    """The demo scans at bench size in storage: (name, width, height) of each."""
    stored = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for number, source in enumerate(DEMO_PAGES):
            with Image.open(source) as image:
                page = image.convert("RGB").resize(
                    (round(image.width * SCALE), round(image.height * SCALE))
                )
            local = Path(tmp) / f"page-{number}.jpg"
            page.save(local, format="JPEG", quality=90)
            stored.append(
                (storage.put_file(f"bench/page-{number}.jpg", local), page.width, page.height)
            )
    return stored


def seed(lines: int, stored: list[tuple[str, int, int]]) -> DatasetExport:
    user, _ = get_user_model().objects.get_or_create(username="bench")
    collection = Collection.objects.create(name=f"Bench {lines}")
    pages = (lines - 1) // LINES_PER_PAGE + 1
    # Ten documents at least, so that a small run has a test split of whole documents too.
    per_document = max(1, min(PAGES_PER_DOCUMENT, pages // 10))
    documents = Document.objects.bulk_create(
        Document(collection=collection, title=f"Bench {number}", status=Document.Status.READY)
        for number in range((pages - 1) // per_document + 1)
    )
    # By the ORM, so that columns added to pages later get their defaults.
    Page.objects.bulk_create(
        Page(
            document=documents[index // per_document],
            index=index % per_document,
            image=stored[index % len(stored)][0],
            width=stored[index % len(stored)][1],
            height=stored[index % len(stored)][2],
            status=Page.Status.SEGMENTED,
        )
        for index in range(pages)
    )
    width = min(w for _, w, _ in stored)
    height = min(h for _, _, h in stored)
    band = (height - 60) // LINES_PER_PAGE
    with connection.cursor() as cursor:
        # Page number n // 30 of the collection holds line n, in bands down the page.
        cursor.execute(
            f"""
            WITH numbered AS (
                SELECT p.id, p.document_id,
                    row_number() OVER (ORDER BY p.document_id, p.index) - 1 AS number
                FROM {Page._meta.db_table} p
                JOIN {Document._meta.db_table} d ON d.id = p.document_id
                WHERE d.collection_id = %(collection)s
            )
            INSERT INTO {Line._meta.db_table} (collection_id, document_id, page_id, "order",
                bbox, polygon, baseline, status, text, human_text, confidence, version, error,
                updated_at)
            SELECT %(collection)s, p.document_id, p.id, k,
                jsonb_build_array(20, 30 + k * %(band)s, %(width)s - 20, 34 + (k + 1) * %(band)s),
                '[]', '[]', 'reviewed',
                concat_ws(' ', substr(md5(n::text), 1, 7), substr(md5(n::text), 9, 4),
                    'the', substr(md5(n::text), 14, 9), 'of', substr(md5(n::text), 24, 6)),
                false, 0.5, 2, '', now()
            FROM generate_series(0, %(lines)s - 1) AS n
            CROSS JOIN LATERAL (SELECT n %% %(per_page)s AS k) AS o
            JOIN numbered p ON p.number = n / %(per_page)s
            """,
            {
                "collection": collection.pk,
                "lines": lines,
                "per_page": LINES_PER_PAGE,
                "band": band,
                "width": width,
            },
        )
        cursor.execute(
            f"""
            INSERT INTO {Correction._meta.db_table} (line_id, user_id, action, created_at,
                text_before, text_after, line_version, time_spent_ms)
            SELECT id, %(user)s, 'accept', now(), text, text, 2, 1000
            FROM {Line._meta.db_table} WHERE collection_id = %(collection)s
            """,
            {"user": user.pk, "collection": collection.pk},
        )
        cursor.execute(f"ANALYZE {Line._meta.db_table}, {Correction._meta.db_table}")
    options = ExportOptions()
    return DatasetExport.objects.create(
        collection=collection, created_by=user, filters=options.filters(), formats=options.formats
    )


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


@dataclass
class Measured:
    seconds: float
    peak_kb: int  # the whole task's
    freeze_kb: int  # while the collection's evaluation split was frozen, first
    export_kb: int | None  # after it; None where the high-water mark cannot be reset


def build_in_child(export_id: int) -> Measured:
    """Run the export in a forked process, which reports its time and peak RSS."""
    # The child opens its own connection: a socket shared across fork would mix replies.
    connections.close_all()
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_build, args=(export_id, send))
    child.start()
    send.close()
    try:
        measured = receive.recv()
    except EOFError:
        child.join()
        raise CommandError(f"the export process died (exit code {child.exitcode})") from None
    child.join()
    return measured


def _build(export_id: int, send) -> None:
    from ocrreview.training import actions, splits

    started = time.perf_counter()
    # What build_export does first, done here first to tell its memory from the export's: it
    # then finds the split frozen.
    export = DatasetExport.objects.select_related("collection", "created_by").get(pk=export_id)
    options = ExportOptions.of(export)
    splits.freeze_evaluation_split(
        export.collection,
        unit=options.unit,
        seed=options.seed,
        fraction=options.test_fraction,
        user=export.created_by,
        export=export,
    )
    # A forked child's high-water mark starts at its own size at the fork, not its parent's.
    freeze_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    export_kb = None
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the high-water mark back to the present size (Linux)
    except OSError:
        pass
    else:
        export_kb = 0
    actions.run_export(export_id)
    seconds = time.perf_counter() - started
    connections.close_all()
    if export_kb is not None:
        export_kb = _status_kb("VmHWM")
    peak_kb = max(freeze_kb, export_kb or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    send.send(Measured(seconds, peak_kb, freeze_kb, export_kb))
    send.close()
