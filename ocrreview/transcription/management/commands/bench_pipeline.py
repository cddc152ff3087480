"""Push line images through upload -> recognition on a real worker and say how much of the
time the model did not account for.

Model time is what the worker spent inside `recognition.inference.recognize` (recorded per
line in RecognitionRequest.model_seconds); total time runs from the upload call until the
last line is stored. The model is loaded and warmed up by one line before the clock starts.

What is neither model nor waiting: the upload service (type sniffing, decoding, writing
page files, a transaction per document), the kick through Redis, claiming chunks, decoding
and cropping page images, and per batch the writes (n-best rows, line routing, request and
document states, lease renewal). Ingestion overlaps recognition: every document is queued
when its transaction commits.
"""

import io
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min, Sum
from PIL import Image, ImageDraw

from ocrreview.celery import app
from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection, Document
from ocrreview.training.models import ModelVersion
from ocrreview.transcription.models import RecognitionRequest

R = RecognitionRequest.Status
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "Dear",
    "Sir",
    "received",
    "your",
    "letter",
    "of",
    "3rd",
    "inst",
]


def line_png(index: int) -> bytes:
    words = [WORDS[(index * 7 + k) % len(WORDS)] for k in range(4 + index % 5)]
    image = Image.new("L", (40 + 9 * len(" ".join(words)), 48), 255)
    ImageDraw.Draw(image).text((12, 16), " ".join(words), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Benchmark upload -> recognition with a real worker; prints overhead last."

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=200)
        parser.add_argument(
            "--model",
            help="model directory or hub id (default: OCRREVIEW_MODEL, else the starter model)",
        )
        parser.add_argument(
            "--nbest", type=int, default=5, help="n-best size (beam width) of the collection"
        )
        parser.add_argument("--timeout", type=float, default=1800)

    def handle(self, *args, lines: int, model: str | None, nbest: int, timeout: float, **options):
        if not settings.CELERY_BROKER_URL.startswith("redis://"):
            raise CommandError("The benchmark needs a real broker: set REDIS_URL.")
        collection = Collection.objects.create(
            name=f"bench-{os.getpid()}-{time.time():.0f}", nbest_size=nbest
        )
        if model:
            collection.model_version, _ = ModelVersion.objects.get_or_create(
                name=f"bench: {model}", defaults={"source": model}
            )
            collection.save()
        worker = self._start_worker(dict(os.environ))
        try:
            self.stdout.write("warming up (model load, first batch)...")
            self._run(collection, [Upload.from_bytes("warmup.png", line_png(0))], timeout)
            uploads = [Upload.from_bytes(f"line-{i:04d}.png", line_png(i)) for i in range(lines)]
            started = time.perf_counter()
            requests = self._run(collection, uploads, timeout, started)
            total = time.perf_counter() - started
            self._report(requests, lines, total)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            self._clean(collection)

    def _start_worker(self, env: dict) -> subprocess.Popen:
        hostname = f"bench-{os.getpid()}@localhost"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ocrreview", "worker", "-Q", "gpu"]
            + ["--pool", "solo", "--hostname", hostname, "--loglevel", "WARNING"]
            + ["--without-gossip", "--without-mingle"],
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not app.control.ping(destination=[hostname], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError("The benchmark worker did not start.")
        return process

    def _run(self, collection, uploads, timeout, started=None):
        ingest_started = time.perf_counter()
        results = do_ingest(collection, uploads, segmentation=Document.Segmentation.WHOLE_IMAGE)
        self.ingest_seconds = time.perf_counter() - ingest_started
        errors = [r.error for r in results if r.error]
        if errors:
            raise CommandError(f"Upload failed: {errors[:3]}")
        ids = [r.document.pk for r in results]
        requests = RecognitionRequest.objects.filter(document_id__in=ids)
        deadline = time.monotonic() + timeout
        while requests.filter(status__in=[R.QUEUED, R.RUNNING]).exists():
            if time.monotonic() > deadline:
                raise CommandError("Recognition did not finish in time.")
            time.sleep(0.02)
        failed = requests.filter(status=R.FAILED).first()
        if failed:
            raise CommandError(f"Recognition failed: {failed.error}")
        return requests

    def _report(self, requests, lines: int, total: float) -> None:
        stats = requests.aggregate(
            model=Sum("model_seconds"), first=Min("finished_at"), last=Max("finished_at")
        )
        model = stats["model"]
        first = requests.select_related("model_version", "line__model_version").first()
        ran, asked = first.line.model_version, first.model_version
        self.stdout.write(f"lines: {lines}")
        self.stdout.write(f"model: {ran.name} ({ran.source})")
        if ran != asked:
            self.stdout.write(f"  ({asked.name} could not be loaded; the starter model ran)")
        self.stdout.write(f"upload (ingest service): {self.ingest_seconds:.2f} s")
        self.stdout.write(f"model time: {model:.2f} s ({1000 * model / lines:.1f} ms/line)")
        self.stdout.write(f"total time: {total:.2f} s")
        outside = total - model
        self.stdout.write(
            f"outside the model: {outside:.2f} s ({1000 * outside / lines:.1f} ms/line)"
        )
        self.stdout.write(f"overhead: {(total - model) / model:.2f}")

    def _clean(self, collection: Collection) -> None:
        for document in collection.documents.all():
            for page in document.pages.all():
                page.image.delete(save=False)
            document.delete()
        collection.delete()
