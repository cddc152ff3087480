"""Push line images through upload -> recognition on a real worker and say how much of the
time the model did not account for.

Model time is what the worker spent inside `recognition.inference.recognize` (recorded per
line in RecognitionRequest.model_seconds); total time runs from the upload call until the
last line is stored. The model is loaded and warmed up by one line before the clock starts.

What is neither model nor waiting: the upload service (type sniffing, decoding, writing
page files, a transaction per document), the kick through Redis, claiming chunks, decoding
and cropping page images, and per batch the writes (n-best rows, line routing, request and
document states, lease renewal). Ingestion overlaps recognition: every document is queued
when its transaction commits. Preparing the crops for the model (its image processor) is
outside the model's time.

With --null-model the model is a stand-in (settings.OCRREVIEW_NULL_MODEL) that answers a
fixed n-best at once, so what is measured is everything else: pages of many lines each
(drawn text, saved as JPEG scans) are queued for recognition, and this process drains the
queue as a worker does, timing each stage (claims, page decoding and cropping, the model's
preprocessing, writes, lease renewals), from the queueing until the last line is stored. The
stand-in takes a GPU's place, so the pipeline runs as docker-compose's GPU worker's does:
batches of OCRREVIEW_CUDA_BATCH_SIZE, claims of --chunk lines, torch on one CPU thread, and
OCRREVIEW_PREPARE_PROCESSES as set.
Decoding, cropping and preprocessing run in the pipeline's prepare thread, a batch ahead of
the model, and the model reads a batch in a thread of its own while the batch before it is
written, so the stages add up to more than the total.
It runs on a throwaway database (<name>_bench, created and dropped here), since like a
worker it reads whatever is queued. It
prints milliseconds per line by stage, the CPU time a line cost in every process that worked
on it (this one, the preparing processes, and the PostgreSQL backend where the server runs on
this machine), the rate those CPU costs allow on this machine's cores, and lines_per_s last.
"""

import io
import os
import time
from collections import defaultdict

import psutil
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.test import override_settings
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.management.bench_database import bench_database
from ocrreview.corpus.models import Collection, Document, Line, Page
from ocrreview.transcription import services
from ocrreview.transcription.management.bench_workers import (
    bench_collection,
    celery_workers,
    delete_collection,
    model_report,
)
from ocrreview.transcription.models import RecognitionRequest

R = RecognitionRequest.Status
# CPU seconds by (role, process id).
CpuTimes = dict[tuple[str, int], float]
LINES_PER_PAGE = 40
LINE_HEIGHT = 56
PAGE_WIDTH = 1600
STAGES = (
    "claim",
    "read page files",
    "decode+crop",
    "preprocess",
    "model",
    "waiting for the model",
    "write",
    "lease",
)
# The stages that run in a thread of their own, beside the main thread's.
BESIDE = {"decode+crop": "prepare", "preprocess": "prepare", "model": "model"}
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
    # Texts repeat every 85 lines; the number keeps each file one of its own, since a
    # collection takes the same file once.
    number = PngInfo()
    number.add_text("line", str(index))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=number)
    return buffer.getvalue()


def line_text(index: int) -> str:
    return " ".join(WORDS[(index * 7 + k) % len(WORDS)] for k in range(4 + index % 5))


def page_jpeg(first: int, count: int) -> bytes:
    """A scanned page of `count` lines of text, one every LINE_HEIGHT pixels."""
    image = Image.new("L", (PAGE_WIDTH, 2 * LINE_HEIGHT + count * LINE_HEIGHT), 238)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=30)
    for k in range(count):
        draw.text((70, LINE_HEIGHT + k * LINE_HEIGHT + 8), line_text(first + k), fill=30, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class Command(BaseCommand):
    help = (
        "Benchmark upload -> recognition with a real worker; prints overhead last. "
        "With --null-model, the pipeline around a stand-in model; prints lines_per_s last."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--lines", type=int, help="lines to read (default: 200, with --null-model 2000)"
        )
        parser.add_argument(
            "--null-model",
            action="store_true",
            help="a stand-in that answers at once instead of the model (its image processor "
            "still prepares every line)",
        )
        parser.add_argument(
            "--model",
            help="model directory or hub id (default: OCRREVIEW_MODEL, else the starter model)",
        )
        parser.add_argument(
            "--nbest", type=int, default=5, help="n-best size (beam width) of the collection"
        )
        parser.add_argument(
            "--chunk",
            type=int,
            default=256,
            help="--null-model: lines claimed at a time (default: 256, docker-compose's GPU "
            "worker's OCRREVIEW_RECOGNITION_CHUNK)",
        )
        parser.add_argument("--timeout", type=float, default=1800)

    def handle(
        self,
        *args,
        lines: int | None,
        null_model: bool,
        model: str | None,
        nbest: int,
        chunk: int,
        timeout: float,
        **options,
    ):
        if null_model:
            # The stand-in writes a made-up reading for whatever is queued, so it runs on a
            # database of its own: on the real one it read the users' queued lines too. It
            # replaces a GPU, so the pipeline runs as a GPU worker's does.
            with (
                bench_database(self.stdout.write),
                override_settings(
                    OCRREVIEW_NULL_MODEL=True,
                    OCRREVIEW_BATCH_SIZE=settings.OCRREVIEW_CUDA_BATCH_SIZE,
                    OCRREVIEW_RECOGNITION_CHUNK=chunk,
                ),
            ):
                self._null_model(bench_collection(model, nbest_size=nbest), lines or 2000)
            return
        collection = bench_collection(model, nbest_size=nbest)
        try:
            lines = lines or 200
            with celery_workers("gpu"):
                self.stdout.write("warming up (model load, first batch)...")
                warmup = Upload.from_bytes("warmup.png", line_png(lines))
                self._run(collection, [warmup], timeout)
                uploads = [
                    Upload.from_bytes(f"line-{i:04d}.png", line_png(i)) for i in range(lines)
                ]
                started = time.perf_counter()
                requests = self._run(collection, uploads, timeout, started)
                total = time.perf_counter() - started
            self._report(requests, lines, total)
        finally:
            delete_collection(collection)

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
        self.stdout.write(f"lines: {lines}")
        for line in model_report(requests):
            self.stdout.write(line)
        self.stdout.write(f"upload (ingest service): {self.ingest_seconds:.2f} s")
        self.stdout.write(f"model time: {model:.2f} s ({1000 * model / lines:.1f} ms/line)")
        self.stdout.write(f"total time: {total:.2f} s")
        outside = total - model
        self.stdout.write(
            f"outside the model: {outside:.2f} s ({1000 * outside / lines:.1f} ms/line)"
        )
        self.stdout.write(f"overhead: {(total - model) / model:.2f}")

    def _null_model(self, collection: Collection, lines: int) -> None:
        self.stdout.write("warming up (model load, first batch)...")
        warmup = self._page(collection, 0, min(lines, LINES_PER_PAGE))
        self._drain(Line.objects.filter(document=warmup))
        documents = [
            self._page(collection, first, min(LINES_PER_PAGE, lines - first))
            for first in range(0, lines, LINES_PER_PAGE)
        ]
        cpu_before = _cpu_seconds(_working_processes())
        started = time.perf_counter()
        stages = self._drain(Line.objects.filter(document__in=documents))
        total = time.perf_counter() - started
        cpu_after = _cpu_seconds(_working_processes())
        requests = RecognitionRequest.objects.filter(document__in=documents)
        unfinished = requests.exclude(status=R.DONE).first()
        if unfinished is not None:
            raise CommandError(
                f"Recognition did not finish: {unfinished.status} {unfinished.error}"
            )
        used = Line.objects.filter(document__in=documents)[0].model_version
        self.stdout.write(f"lines: {lines} ({len(documents)} pages of up to {LINES_PER_PAGE})")
        self.stdout.write(f"image processor: {used.name}; the model: a stand-in (fixed n-best)")
        batch_size = services.batch_size_for(services.load_engine(used))
        self.stdout.write(
            f"batch size: {batch_size}, claims of {settings.OCRREVIEW_RECOGNITION_CHUNK} lines"
        )
        self.stdout.write("ms/line by stage:")
        for stage in ("queue", *STAGES):
            label = "model (stand-in)" if stage == "model" else stage
            if stage in BESIDE:
                label += f" (in the {BESIDE[stage]} thread, beside the others)"
            self.stdout.write(f"  {label}: {1000 * stages[stage] / lines:.3f}")
        main = sum(v for k, v in stages.items() if k not in BESIDE)
        waiting = total - main
        self.stdout.write(f"  waiting for the prepare thread, other: {1000 * waiting / lines:.3f}")
        self.stdout.write(f"total: {total:.2f} s ({1000 * total / lines:.3f} ms/line)")
        self._report_cpu(cpu_before, cpu_after, lines)
        self.stdout.write(f"lines_per_s: {lines / total:.0f}")

    def _report_cpu(self, before: CpuTimes, after: CpuTimes, lines: int) -> None:
        """What the run cost in CPU time, and so the most lines/s this machine's cores can give
        at that cost, however the work were spread over them."""
        cpu: defaultdict[str, float] = defaultdict(float)
        for (role, pid), seconds in after.items():
            cpu[role] += seconds - before.get((role, pid), 0.0)
        spent = sum(cpu.values())
        parts = ", ".join(f"{role} {1000 * seconds / lines:.3f}" for role, seconds in cpu.items())
        self.stdout.write(f"CPU time: {1000 * spent / lines:.3f} ms/line ({parts})")
        cores = len(os.sched_getaffinity(0))
        self.stdout.write(
            f"most lines/s this CPU time allows on {cores} cores: {cores * lines / spent:.0f}"
        )

    def _page(self, collection: Collection, first: int, count: int) -> Document:
        document = Document.objects.create(
            collection=collection, title=f"page {first}", status=Document.Status.RECOGNIZING
        )
        data = page_jpeg(first, count)
        image = Image.open(io.BytesIO(data))
        page = Page(document=document, index=0, width=image.width, height=image.height)
        page.image.save(f"page-{first:06d}.jpg", ContentFile(data), save=False)
        page.save()
        Line.objects.bulk_create(
            Line(
                page=page,
                document=document,
                collection=collection,
                order=k,
                bbox=[50, (k + 1) * LINE_HEIGHT, PAGE_WIDTH - 50, (k + 2) * LINE_HEIGHT],
            )
            for k in range(count)
        )
        return document

    def _drain(self, lines) -> defaultdict[str, float]:
        """Queue the lines and read everything queued, as a worker does."""
        stages: defaultdict[str, float] = defaultdict(float)
        started = time.perf_counter()
        with transaction.atomic():
            services.do_queue_recognition(lines)
        stages["queue"] += time.perf_counter() - started
        while services.do_recognize_pending(f"bench-{os.getpid()}", stages):
            pass
        return stages


def _working_processes() -> dict[str, list[psutil.Process]]:
    """The processes that do a worker's work here, by role. The PostgreSQL backend counts when
    the server runs on this machine (it does the writes' work: parsing, triggers, indexes)."""
    me = psutil.Process()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()
    roles = {"this process": [me], "preparing processes": me.children(recursive=True)}
    try:
        backend = psutil.Process(backend_pid)
        if "postgres" in backend.name():
            roles["PostgreSQL"] = [backend]
    except psutil.Error:  # a server on another host: its work is not counted
        pass
    return roles


def _cpu_seconds(roles: dict[str, list[psutil.Process]]) -> CpuTimes:
    seconds: CpuTimes = {}
    for role, processes in roles.items():
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:  # ended since
                continue
            seconds[(role, process.pid)] = times.user + times.system
    return seconds
