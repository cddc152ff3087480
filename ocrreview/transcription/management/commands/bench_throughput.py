"""Real pages through upload, kraken segmentation and recognition on real workers: how many
pages an hour the pipeline reads, and where a page's time goes.

    python manage.py bench_throughput [--copies 20] [--pages 3] [--model M]

The pages are the demo collection's scans (demo/lathrop/, the first --pages of them) and
--copies more copies of them, taken in turn. A copy is the scan's JPEG with a comment segment
of its own: another file, the same pixels. They go through the upload service as one upload
(do_ingest, kraken segmentation) into a collection of the command's own, and are read by two
solo Celery workers that the command starts: one on the queue the app routes segmentation to,
one on recognition's (`gpu`). Before the clock starts, a piece of a demo page goes the same
way, so that both workers have loaded their models. The clock runs from the upload call until
the last line is stored; a page that fails, or pages not ready within --timeout seconds, fail
the run. The collection is deleted after, as after a failed run: its pages are copies of the
demo's, and what the run measured is in its output.

A page's time, from the upload call until it is ready, is cut into five stages by timestamps the
database holds, the workers' clocks being this machine's:
- upload: until its document is created (Document.uploaded_at): the files before it in the
  upload, then reading and decoding its own;
- waiting for segmentation: until the segmentation worker turns to it. That worker segments one
  document at a time, so this is when the worker finished the document before it, or when it
  was queued, whichever is later; storing its page file and committing (milliseconds) count
  here too;
- segmentation: until its lines are queued for recognition (RecognitionRequest.created_at), which
  the segmentation task does right after kraken and storing the lines: the whole task, reading
  the page included;
- waiting for recognition: until the recognition worker turns to it: when that worker stored the
  batch before the page's first (RecognitionRequest.finished_at), or when its lines were queued,
  whichever is later;
- recognition: until its last line is stored, its document becoming ready in the same
  transaction: claims, cropping, the model and the writes of its batches. A batch with the last
  lines of one page and the first of the next counts for both.
Each stage is printed as seconds per page (the mean) and its share of a page's time; the five add
up to it. The two workers work side by side on different pages, so `busy` says for how much of
the run each worker was at work: the busier one sets the pace.

Prints pages, lines, the total time, lines_per_s, the stages, and pages_per_hour last.
"""

import io
import itertools
import subprocess
import time
from bisect import bisect_left
from collections import defaultdict
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image

from ocrreview.celery import app
from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.management.commands.load_demo import DEMO_DIR
from ocrreview.corpus.models import Collection, Document
from ocrreview.corpus.tasks import segment_document
from ocrreview.transcription.management.bench_workers import (
    bench_collection,
    celery_workers,
    delete_collection,
    model_report,
)
from ocrreview.transcription.models import RecognitionRequest
from ocrreview.transcription.tasks import recognize_pending

R = RecognitionRequest.Status
DEMO_PAGES = sorted(DEMO_DIR.glob("*.jpg"))
STAGES = (
    "upload",
    "waiting for segmentation",
    "segmentation (kraken)",
    "waiting for recognition",
    "recognition",
)
# The warm-up: the left of the first demo page's paragraphs, a few lines for kraken and the
# model. Narrow, because blla scales a page to a fixed height: its time goes with the width.
WARMUP_CROP = (0, 300, 350, 1200)


def copy_of(scan: bytes, number: int) -> bytes:
    """The JPEG with a comment segment (COM) after its start marker."""
    comment = f"ocrreview bench_throughput copy {number}".encode()
    return scan[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + scan[2:]


def warmup_upload() -> Upload:
    with Image.open(DEMO_PAGES[0]) as scan:
        buffer = io.BytesIO()
        scan.crop(WARMUP_CROP).save(buffer, format="JPEG", quality=90)
    return Upload.from_bytes("warmup.jpg", buffer.getvalue())


def queue_of(task) -> str:
    return app.amqp.router.route({}, task.name)["queue"].name


def seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def union_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    """The time covered by the intervals, overlaps counted once."""
    covered, reached = 0.0, None
    for start, end in sorted(intervals):
        if reached is not None:
            start = max(start, reached)
        if end > start:
            covered += seconds(end, start)
            reached = end
    return covered


class Command(BaseCommand):
    help = (
        "Benchmark real pages through upload, kraken and recognition on real workers; prints "
        "lines_per_s, where a page's time goes, and pages_per_hour last."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--copies", type=int, default=20, help="copies of the demo pages, taken in turn"
        )
        parser.add_argument(
            "--pages",
            type=int,
            default=len(DEMO_PAGES),
            help=f"demo pages to start from (1 to {len(DEMO_PAGES)})",
        )
        parser.add_argument(
            "--model",
            help="model directory or hub id (default: OCRREVIEW_MODEL, else the starter model)",
        )
        parser.add_argument(
            "--timeout", type=float, default=3600, help="seconds the pages may take"
        )

    def handle(self, *args, copies: int, pages: int, model: str | None, timeout: float, **options):
        if not 1 <= pages <= len(DEMO_PAGES):
            raise CommandError(f"--pages must be 1 to {len(DEMO_PAGES)} (demo/lathrop/*.jpg).")
        if copies < 0:
            raise CommandError("--copies must not be negative.")
        scans = [(path.name, path.read_bytes()) for path in DEMO_PAGES[:pages]]
        uploads = [Upload.from_bytes(name, data) for name, data in scans]
        for number, (name, data) in zip(range(1, copies + 1), itertools.cycle(scans)):
            uploads.append(Upload.from_bytes(f"copy-{number:03d}-{name}", copy_of(data, number)))

        collection = bench_collection(model)
        try:
            queues = queue_of(segment_document), queue_of(recognize_pending)
            with celery_workers(*queues) as workers:
                self.stdout.write("warming up (both workers load their models)...")
                self._process(collection, [warmup_upload()], workers, timeout)
                started = timezone.now()
                documents = self._process(collection, uploads, workers, timeout)
            self.stdout.write(f"pages: {len(uploads)} ({pages} of demo/lathrop/, {copies} copies)")
            self._report(collection, documents, started)
        finally:
            delete_collection(collection)

    def _process(
        self,
        collection: Collection,
        uploads: list[Upload],
        workers: list[subprocess.Popen],
        timeout: float,
    ) -> QuerySet[Document]:
        """Upload the pages and wait until each is ready or failed."""
        results = do_ingest(collection, uploads, segmentation=Document.Segmentation.KRAKEN)
        errors = [f"{r.name}: {r.error}" for r in results if r.error]
        if errors:
            raise CommandError(f"Upload failed: {errors[:3]}")
        documents = Document.objects.filter(pk__in=[r.document.pk for r in results])
        deadline = time.monotonic() + timeout
        while documents.exclude(
            status__in=[Document.Status.READY, Document.Status.FAILED]
        ).exists():
            if any(worker.poll() is not None for worker in workers):
                raise CommandError("A benchmark worker died.")
            if time.monotonic() > deadline:
                raise CommandError(f"The pages were not ready within {timeout:g} s.")
            time.sleep(0.5)
        failed = [f"{d.title}: {d.error}" for d in documents.filter(status=Document.Status.FAILED)]
        if failed:
            raise CommandError(f"Segmentation failed: {failed[:3]}")
        unread = RecognitionRequest.objects.filter(document__in=documents, status=R.FAILED)
        if unread.exists():
            raise CommandError(f"Recognition failed: {unread.first().error}")
        blank = documents.filter(lines__isnull=True).first()
        if blank is not None:
            raise CommandError(f"kraken found no lines on {blank.title}")
        return documents

    def _report(
        self, collection: Collection, documents: QuerySet[Document], started: datetime
    ) -> None:
        requests = RecognitionRequest.objects.filter(document__in=documents)
        # Per document: when its lines were queued, and when the first and the last was stored.
        segmented_at: dict[int, datetime] = {}
        stored_between: dict[int, tuple[datetime, datetime]] = {}
        for document, created, finished in requests.values_list(
            "document_id", "created_at", "finished_at"
        ):
            segmented_at[document] = min(segmented_at.get(document, created), created)
            first, last = stored_between.get(document, (finished, finished))
            stored_between[document] = (min(first, finished), max(last, finished))
        # Every batch the recognition worker stored in this collection, the warm-up's included.
        stored = sorted(
            RecognitionRequest.objects.filter(document__collection=collection)
            .values_list("finished_at", flat=True)
            .distinct()
        )

        stages: defaultdict[str, float] = defaultdict(float)
        segmenting: list[tuple[datetime, datetime]] = []
        recognizing: list[tuple[datetime, datetime]] = []
        # Both workers are idle when the upload starts: the warm-up is done.
        previous_segmented = started
        uploaded = dict(documents.values_list("pk", "uploaded_at"))
        for document in sorted(uploaded, key=segmented_at.__getitem__):
            segmented, (first_stored, ready) = segmented_at[document], stored_between[document]
            segmenting_from = max(uploaded[document], previous_segmented)
            before = bisect_left(stored, first_stored)
            recognizing_from = max(segmented, stored[before - 1] if before else started)
            stages["upload"] += seconds(uploaded[document], started)
            stages["waiting for segmentation"] += seconds(segmenting_from, uploaded[document])
            stages["segmentation (kraken)"] += seconds(segmented, segmenting_from)
            stages["waiting for recognition"] += seconds(recognizing_from, segmented)
            stages["recognition"] += seconds(ready, recognizing_from)
            segmenting.append((segmenting_from, segmented))
            recognizing.append((recognizing_from, ready))
            previous_segmented = segmented

        pages, lines = len(uploaded), requests.count()
        total = seconds(max(ready for _, ready in stored_between.values()), started)
        page_time = sum(stages.values())
        self.stdout.write(f"lines: {lines}")
        for line in model_report(requests):
            self.stdout.write(line)
        self.stdout.write(f"total: {total:.1f} s (from the upload until the last line is stored)")
        self.stdout.write(f"lines_per_s: {lines / total:.2f}")
        self.stdout.write("a page's time from upload to ready, by stage (s/page, share):")
        for stage in STAGES:
            self.stdout.write(
                f"  {stage}: {stages[stage] / pages:.1f} ({100 * stages[stage] / page_time:.1f}%)"
            )
        self.stdout.write(
            f"busy: segmentation worker {100 * union_seconds(segmenting) / total:.0f}% of the "
            f"total, recognition worker {100 * union_seconds(recognizing) / total:.0f}%"
        )
        self.stdout.write(f"pages_per_hour: {pages * 3600 / total:.0f}")
