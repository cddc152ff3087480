"""The recognition pipeline: queueing lines, claiming them on a worker, reading them with
the engine in batches drawn from many documents, and storing n-best lists.

Exactly once per model version: a (line, model version) pair has one RecognitionRequest;
a worker owns the requests it claimed under a claim token and writes their results only
while it still holds that token, in the same transaction that finishes the requests. A
worker that dies mid-batch loses its token when the lease expires, and whoever claims the
lines next writes them; the dead worker's half-finished batch never lands.
"""

import json
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Now
from django.utils import timezone

from ocrreview import storage
from ocrreview.corpus.audit import model_label, record_event
from ocrreview.corpus.calibration_guard import default_model_name, model_name
from ocrreview.corpus.models import (
    Collection,
    CollectionEvent,
    Document,
    DocumentAssignment,
    Line,
    ModelVersion,
    Page,
    iiif_json_through,
)
from ocrreview.corpus.signals import lines_being_corrected
from ocrreview.corpus.workflow import in_final_document
from ocrreview.db_clock import DatabaseNow, database_now, database_now_plus
from ocrreview.sweep import beating
from ocrreview.transcription.models import Hypothesis, ModelFallback, RecognitionRequest
from ocrreview.transcription.signals import marked_text_replaced

if TYPE_CHECKING:
    import torch

    from recognition.cutting import CutBatch

logger = logging.getLogger(__name__)

R = RecognitionRequest.Status
OUTSTANDING = (R.QUEUED, R.RUNNING)
# Lines a human set, or holds in an editor: a failed reading never replaces what they show.
HUMAN_STATUSES = (Line.Status.REVIEWED, Line.Status.IN_REVIEW)
STARTER_MODEL_NAME = "Starter model (shipped)"
# Documents whose lines are not all made yet.
WAITING = (Document.Status.UPLOADED, Document.Status.FETCHING, Document.Status.SEGMENTING)


def default_model_version() -> ModelVersion:
    """The version for settings.OCRREVIEW_MODEL, used where a collection names none."""
    version, _ = ModelVersion.objects.get_or_create(
        name=default_model_name(),
        defaults={
            "source": settings.OCRREVIEW_MODEL,
            "revision": settings.OCRREVIEW_MODEL_REVISION or "",
        },
    )
    return version


def is_default_version(version: ModelVersion) -> bool:
    """Made by default_model_version (under this or an earlier OCRREVIEW_MODEL), not
    chosen by an admin."""
    return version.name == model_name(version.source, version.revision)


def model_version_for(collection: Collection) -> ModelVersion:
    return collection.model_version or default_model_version()


def do_queue_recognition(
    lines: QuerySet[Line], model_version: ModelVersion | None = None, *, reread: bool = False
) -> int:
    """Queue lines for recognition by `model_version` (default: their collection's model);
    `reread`: an admin's re-read, which workers take after first readings (do_claim).

    Lines already read by that version are left alone; lines whose recognition failed, or
    that the starter read in its place, are queued again. A final document's lines are not
    queued: it was published as it is, and a reading would change the text of those nobody
    reviewed. Returns how many lines were queued.
    The database does the work: re-reading a collection of a million lines from a web request
    holds no row of it in Python.
    """
    chosen = lines.exclude(in_final_document()).order_by()
    collection_ids = list(chosen.values_list("collection_id", flat=True).distinct())
    if not collection_ids:
        return 0
    versions = {
        collection_id: model_version or model_version_for(Collection.objects.get(pk=collection_id))
        for collection_id in collection_ids
    }
    line_ids, line_params = chosen.values("id").query.sql_with_params()
    pairs = [value for pair in versions.items() for value in (pair[0], pair[1].pk)]
    with connection.cursor() as cursor:
        # A concurrent queueing of the same lines loses the race quietly.
        cursor.execute(
            f"""
            INSERT INTO {RecognitionRequest._meta.db_table}
                (line_id, document_id, model_version_id, status, attempts, worker, error,
                 created_at, queued_at, reread)
            SELECT l.id, l.document_id, v.version_id, %s, 0, '', '', statement_timestamp(),
                statement_timestamp(), %s
            FROM {Line._meta.db_table} l
            JOIN (VALUES {", ".join(["(%s::bigint, %s::bigint)"] * len(versions))})
                AS v (collection_id, version_id) ON v.collection_id = l.collection_id
            WHERE l.id IN ({line_ids})
            -- In one order, so that two overlapping queueings wait for each other, never
            -- for each other's rows crosswise (a deadlock). Locked now, not by the foreign
            -- key's check at commit: by then the documents below are locked too, and a
            -- worker storing these lines waits for their documents while holding the lines.
            ORDER BY l.id
            FOR KEY SHARE OF l
            ON CONFLICT (line_id, model_version_id) DO NOTHING
            """,
            [R.QUEUED, reread, *pairs, *line_params],
        )
        queued = cursor.rowcount
    # Failed requests are tried again, and so are done ones that left no reading of their
    # version: the starter stood in for a default model that could not be loaded.
    read_by_the_version = Hypothesis.objects.filter(
        line_id=OuterRef("line_id"), model_version_id=OuterRef("model_version_id")
    )
    retried = (
        RecognitionRequest.objects.filter(
            line_id__in=chosen.values("id"), model_version__in=set(versions.values())
        )
        .filter(Q(status=R.FAILED) | Q(status=R.DONE) & ~Exists(read_by_the_version))
        .update(
            status=R.QUEUED,
            attempts=0,
            error="",
            claim=None,
            lease_until=None,
            queued_at=Now(),
            reread=reread,
        )
    )
    Document.objects.filter(
        pk__in=RecognitionRequest.objects.filter(
            document_id__in=chosen.values("document_id"), status__in=OUTSTANDING
        ).values("document_id")
    ).exclude(status__in=WAITING).update(status=Document.Status.RECOGNIZING)
    # Robust: with the broker down the lines stay queued, and the recognition sweep reads them.
    transaction.on_commit(kick_recognition, robust=True)
    return queued + retried


def read_document_lines(sender: type[Document], document: Document, **kwargs: Any) -> None:
    """corpus's `lines_ready`: a document's lines are made, so they are queued; a document
    without lines is ready at once."""
    do_queue_recognition(document.lines.all())
    finish_documents({document.pk})


def do_rerecognize(documents: QuerySet[Document], model_version: ModelVersion) -> int:
    """Read the documents' lines again with another model version. Old hypotheses stay;
    reviewed lines keep their text."""
    with transaction.atomic():
        return do_queue_recognition(
            Line.objects.filter(document__in=documents), model_version=model_version, reread=True
        )


def do_reread(
    collection: Collection,
    model_version: ModelVersion,
    *,
    document: Document | None = None,
    actor,
) -> int:
    """An admin's re-read of the collection's lines, or of one document's, with another model
    version (do_rerecognize), recorded in the collection's events."""
    documents = collection.documents.all()
    if document is not None:
        documents = documents.filter(pk=document.pk)
    with transaction.atomic():
        queued = do_rerecognize(documents, model_version)
        record_event(
            collection,
            CollectionEvent.Type.LINES_REREAD,
            actor=actor,
            document=document,
            model=model_label(model_version),
            lines=queued,
            unreviewed_only=False,
        )
    return queued


def kick_recognition() -> None:
    from ocrreview.transcription.tasks import kick

    kick()


@dataclass
class Claimed:
    token: uuid.UUID
    requests: list[RecognitionRequest]


def lease_end() -> ExpressionWrapper:
    return database_now_plus(settings.OCRREVIEW_RECOGNITION_LEASE_SECONDS)


def do_claim(limit: int, worker: str) -> Claimed:
    """Take up to `limit` queued requests, or requests whose worker's lease ran out, in
    one transaction; SKIP LOCKED lets concurrent workers claim disjoint sets."""
    token = uuid.uuid4()
    with transaction.atomic():
        _fail_exhausted()
        claimable = (
            RecognitionRequest.objects.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        # A status each, so each is a walk of the (status, id) index: the two in one OR make
        # the database walk or sort the millions of done requests before a re-read's.
        ids = list(claimable.filter(status=R.RUNNING, lease_until__lt=DatabaseNow())[:limit])
        # First readings before re-reads, each a walk of the (status, reread, id) index.
        for reread in (False, True):
            if len(ids) < limit:
                ids += claimable.filter(status=R.QUEUED, reread=reread)[: limit - len(ids)]
        RecognitionRequest.objects.filter(id__in=ids).update(
            status=R.RUNNING,
            claim=token,
            lease_until=lease_end(),
            attempts=F("attempts") + 1,
            worker=worker[:200],
        )
    requests = list(
        RecognitionRequest.objects.filter(claim=token, status=R.RUNNING)
        .select_related("line__page", "line__collection", "model_version")
        .order_by("line__page_id", "line__order")
    )
    return Claimed(token, requests)


def _fail_exhausted() -> None:
    """Requests whose worker died with them `MAX_ATTEMPTS` times are not tried again."""
    dead = RecognitionRequest.objects.filter(
        status=R.RUNNING,
        lease_until__lt=DatabaseNow(),
        attempts__gte=settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS,
    )
    line_ids = list(dead.values_list("line_id", flat=True))
    if not line_ids:
        return
    _lock_lines(line_ids)
    exhausted = list(dead.select_for_update(skip_locked=True))
    if not exhausted:
        return
    message = (
        f"recognition did not finish in {settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS} "
        "attempts (the worker crashed or timed out each time)"
    )
    _finish_failed(exhausted, {r.id: message for r in exhausted})


def _lock_lines(line_ids: Iterable[int]) -> None:
    """Lock lines before their requests, the order in which merging or deleting a line takes
    them (the line, then its requests as they are deleted with it): the other order
    deadlocks with a reviewer merging a line a worker is writing to."""
    list(Line.objects.select_for_update().filter(id__in=line_ids).values_list("id", flat=True))


def _finish_failed(requests: list[RecognitionRequest], errors: dict[int, str]) -> None:
    _update_from_values(
        RecognitionRequest,
        "status = %s, error = v.error, claim = NULL, lease_until = NULL, finished_at = %s",
        [R.FAILED, timezone.now()],
        [("error", "text")],
        [(r.id, errors[r.id]) for r in requests],
    )
    # A line that two versions failed to read in one go takes the last error, as one change.
    line_errors = {r.line_id: errors[r.id] for r in requests}
    _update_from_values(
        Line,
        "status = %s, error = v.error, version = t.version + 1",
        [Line.Status.FAILED],
        [("error", "text")],
        list(line_errors.items()),
        # A line a human set, one holding a person's words, or one that a model did read
        # keeps what it shows.
        where=f"t.status <> ALL(%s) AND NOT t.human_text AND NOT EXISTS "
        f"(SELECT 1 FROM {Hypothesis._meta.db_table} h WHERE h.line_id = t.id)",
        where_params=[[str(status) for status in HUMAN_STATUSES]],
    )
    finish_documents({r.document_id for r in requests})


def _update_from_values(
    model: type[Model],
    assignments: str,
    params: Sequence[Any],
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple],
    *,
    where: str = "",
    where_params: Sequence[Any] = (),
) -> None:
    """Update many rows, each to values of its own, in one statement: `rows` are (pk,
    *values) joined as `v`, whose `columns` are (name, SQL type), to the table as `t`.
    bulk_update would build a CASE with a branch per row for every column, which the
    server walks for every row: quadratic in the batch. The values travel as one array a
    column, so the statement's text is the same for every batch and psycopg converts it
    once: 64 rows of a line's text, confidence and status took 3.5 to 4.1 ms so, 5.1 to 7.7
    ms as a VALUES list of a row each (on a loaded 2-core machine)."""
    if not rows:
        return
    arrays = ", ".join(["%s::bigint[]", *(f"%s::{kind}[]" for _, kind in columns)])
    names = ", ".join(["id", *(name for name, _ in columns)])
    sql = (
        f"UPDATE {model._meta.db_table} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({names}) WHERE t.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} AND {where}" if where else sql,
            [*params, *(list(column) for column in zip(*rows, strict=True)), *where_params],
        )


def renew_lease(token: uuid.UUID) -> None:
    RecognitionRequest.objects.filter(claim=token, status=R.RUNNING).update(lease_until=lease_end())


def release(
    token: uuid.UUID, error: str, requests: list[RecognitionRequest], *, charged: bool = True
) -> None:
    """Give back what is left of these requests of a claim after an error: queued again, or
    failed once they have had their attempts. An error that is not the lines' (`charged`
    False) does not count as an attempt."""
    with transaction.atomic():
        _lock_lines(r.line_id for r in requests)
        left = list(
            RecognitionRequest.objects.select_for_update().filter(
                claim=token, status=R.RUNNING, id__in=[r.id for r in requests]
            )
        )
        limit = settings.OCRREVIEW_RECOGNITION_MAX_ATTEMPTS
        exhausted = [r for r in left if charged and r.attempts >= limit]
        if exhausted:
            _finish_failed(exhausted, {r.id: error for r in exhausted})
        RecognitionRequest.objects.filter(id__in=[r.id for r in left if r not in exhausted]).update(
            status=R.QUEUED,
            claim=None,
            lease_until=None,
            error=error,
            attempts=F("attempts") - (0 if charged else 1),
        )


@dataclass
class Engine:
    """A loaded model and the version its hypotheses are recorded under."""

    loaded: object
    version: ModelVersion


def load_options() -> dict[str, Any]:
    """The device this worker reads on, and whether to quantise: on a CPU only, so one
    setting serves a fleet of CPU and GPU workers."""
    from recognition.loading import resolve_device

    auto = settings.OCRREVIEW_DEVICE == "auto"
    device = resolve_device(None if auto else settings.OCRREVIEW_DEVICE).type
    return {"device": device, "quantize": settings.OCRREVIEW_QUANTIZE and device == "cpu"}


def load_engine(version: ModelVersion, worker: str = "") -> Engine:
    """The model for a version, once per worker process. A default version falls back to
    the starter model shipped with the engine (its lines then record the starter) where
    OCRREVIEW_MODEL_FALLBACK allows, and the fallback is recorded for admins' pages until a
    worker loads the version; a version an admin chose fails loudly instead of being
    silently replaced."""
    from recognition.loading import STARTER_MODEL_DIR, ModelLoadError, get_model

    options = load_options()
    if not is_default_version(version) or not settings.OCRREVIEW_MODEL_FALLBACK:
        try:
            source = storage.resolve_model_source(version.source)
        except Exception as exc:
            # A version kept in S3 is fetched (its checksums at least) before it loads: a store
            # that is down is no more the lines' fault here than when it withholds their pages.
            if storage.store_is_down(exc):
                raise StorageUnavailable(
                    f"the storage cannot be reached to load {version} ({exc})"
                ) from exc
            raise
        loaded = get_model(source, revision=version.revision or None, **options)
        return Engine(loaded, version)
    starter_source = str(STARTER_MODEL_DIR)
    fallback = _fallen_back.get(version.pk)
    if fallback is None or time.monotonic() - fallback.tried > FALLBACK_RETRY_SECONDS:
        # The version itself is tried again: the hub may be back.
        try:
            loaded = get_model(version.source, revision=version.revision or None, **options)
        except ModelLoadError as exc:
            logger.warning(
                "Model %s could not be loaded; recognising with the starter model: %s",
                version.source,
                exc,
            )
            fallback = _Fallback(tried=time.monotonic(), reason=str(exc), failed_at=timezone.now())
            _fallen_back[version.pk] = fallback
            _loaded_here.discard(version.pk)
            _record_fallback(version, _starter_version(starter_source), fallback, worker)
        else:
            if version.pk not in _loaded_here:
                # Once per process, not per chunk: a worker that never fell back clears what
                # another recorded when it starts, and then leaves the record to the workers
                # whose loads fail, which still read with the starter.
                ModelFallback.objects.filter(model_version=version).delete()
                _loaded_here.add(version.pk)
            _fallen_back.pop(version.pk, None)
            return Engine(loaded, version)
    else:
        # Another worker that loads the version may have cleared the record since: as long as
        # this one reads with the starter in its place, admins must still be told.
        _record_fallback(version, _starter_version(starter_source), fallback, worker, latest=False)
    loaded = get_model(starter_source, **options)
    return Engine(loaded, _starter_version(starter_source))


def _starter_version(source: str) -> ModelVersion:
    """The starter's version, with the calibration shipped beside its weights: its raw
    confidences overstate how often it is right, and a new collection's threshold would
    accept its wrong readings unseen. A site upgraded to a new stage of the starter takes
    that stage's fit, as the old stage's no longer matches the weights that read; a fit made
    here on reviewers' answers (manage.py calibrate_model) is the site's decision and is kept."""
    from recognition.loading import starter_calibration

    shipped = starter_calibration()
    starter, created = ModelVersion.objects.get_or_create(
        name=STARTER_MODEL_NAME, defaults={"source": source, "calibration": shipped}
    )
    stored = starter.calibration
    if created or shipped is None or stored == shipped or starter.calibrated_on_reviews:
        return starter
    # Conditional on the fit read, so that a calibrate_model in between is not overwritten.
    unchanged = Q(calibration__isnull=True) if stored is None else Q(calibration=stored)
    ModelVersion.objects.filter(unchanged, pk=starter.pk).update(calibration=shipped)
    starter.refresh_from_db(fields=["calibration"])
    return starter


@dataclass(frozen=True)
class _Fallback:
    """This process's latest failed load of a default version."""

    tried: float  # time.monotonic()
    reason: str
    failed_at: datetime


def _record_fallback(
    version: ModelVersion,
    stand_in: ModelVersion,
    fallback: _Fallback,
    worker: str,
    *,
    latest: bool = True,
):
    """Record that `stand_in` reads for `version`; `latest=False` only restores a record
    that is gone, leaving one with a later failure as it is."""
    fields = {
        "stand_in": stand_in,
        "reason": fallback.reason,
        "failed_at": fallback.failed_at,
        "worker": worker,
    }
    first = {**fields, "since": fallback.failed_at}
    if latest:
        ModelFallback.objects.update_or_create(
            model_version=version, defaults=fields, create_defaults=first
        )
    else:
        ModelFallback.objects.get_or_create(model_version=version, defaults=first)


def model_fallbacks(collection: Collection | None = None) -> list[ModelFallback]:
    """The default versions the starter reads for now: all of them, or the collection's. Its
    default version is found by name, not made, as a page that reads this writes nothing."""
    fallbacks = ModelFallback.objects.select_related("model_version", "stand_in")
    if collection is not None:
        if collection.model_version_id is not None:
            fallbacks = fallbacks.filter(model_version_id=collection.model_version_id)
        else:
            fallbacks = fallbacks.filter(model_version__name=default_model_name())
    return list(fallbacks.order_by("model_version__name"))


STOPPED = "the worker stopped before reading it"
# The longest a model's load keeps its claim's lines: trocr-large's 2.2 GB over a slow link.
MODEL_LOAD_SECONDS = 1800

# Default versions that could not be loaded, and since when, for this process: a failed load
# is not retried for every chunk (online, that would ask the hub each time), but is after a
# while, so that a hub that was down for a moment is not given up on for the worker's life.
_fallen_back: dict[int, _Fallback] = {}
FALLBACK_RETRY_SECONDS = 600
# Default versions this process has loaded since it last fell back from them.
_loaded_here: set[int] = set()


def do_recognize_pending(
    worker: str,
    stages: defaultdict[str, float] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Claim one chunk of lines, read them and store the results; returns how many lines
    were claimed (0: nothing to do). `stages` collects the seconds each stage took. Once
    `should_stop` says so (the worker is shutting down), the batch in the model is stored and
    the rest of the chunk goes back to the queue, uncharged, rather than waiting out its
    lease after the worker is killed."""
    stages = defaultdict(float) if stages is None else stages
    with _timed(stages, "claim"):
        claimed = do_claim(settings.OCRREVIEW_RECOGNITION_CHUNK, worker)
    if not claimed.requests:
        return 0
    import torch

    from recognition.inference import OutOfMemory

    groups: dict[tuple[int, int], list[RecognitionRequest]] = defaultdict(list)
    for request in claimed.requests:
        groups[(request.model_version_id, request.line.collection.nbest_size)].append(request)
    failure: Exception | None = None
    for (_, nbest), requests in groups.items():
        if should_stop():
            release(claimed.token, STOPPED, requests, charged=False)
            continue
        try:
            # A cold worker's first load (a hub download, a version fetched from S3) may take
            # longer than the lease; the lines are not given to another worker meanwhile,
            # unless the load hangs.
            with beating(
                partial(renew_lease, claimed.token),
                settings.OCRREVIEW_RECOGNITION_LEASE_SECONDS / 4,
                f"claim-{claimed.token}",
                at_most=MODEL_LOAD_SECONDS,
            ):
                engine = load_engine(requests[0].model_version, worker)
            _recognize_group(claimed.token, engine, requests, nbest, stages, should_stop)
        except (OutOfMemory, torch.OutOfMemoryError) as exc:
            # The device is busy (loading the model onto it can meet this too): the lines wait
            # in the queue until memory is free, tried again by the task's retries and sweeps.
            release(claimed.token, f"waiting for device memory: {exc}", requests, charged=False)
            failure = failure or exc
        except StorageUnavailable as exc:
            # Nor is the store's outage the lines' doing; the task's retries back off.
            release(claimed.token, str(exc), requests, charged=False)
            failure = failure or exc
        except Exception as exc:
            # One model that cannot load (a collection's, gone from storage) must not fail the
            # lines of the other collections that share the claim: they are read all the same.
            logger.exception("Recognition of %d lines failed", len(requests))
            release(claimed.token, f"{type(exc).__name__}: {exc}", requests)
            failure = failure or exc
    if failure is not None:
        raise failure
    return len(claimed.requests)


@contextmanager
def _timed(stages: defaultdict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[stage] += time.perf_counter() - started


def _recognize_group(
    token: uuid.UUID,
    engine: Engine,
    requests: list[RecognitionRequest],
    nbest: int,
    stages: defaultdict[str, float] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Read a claim's lines of one model version in batches, as a pipeline: while the model
    reads a batch (in a thread of its own: torch leaves the GIL while it computes), this thread
    writes the batch before it, and the next batches are cut and prepared beside both. Only
    this thread uses the database, so the writes see what its connection sees (a caller's
    transaction included)."""
    stages = defaultdict(float) if stages is None else stages
    _one_thread_unless_the_model_is_on_the_cpu(engine)
    batch_size = batch_size_for(engine)
    batches = [requests[i : i + batch_size] for i in range(0, len(requests), batch_size)]
    page_files = _PageFiles()
    read = partial(_read, engine, nbest)
    with (
        _cutting(engine) as (cut, ahead),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as model,
    ):
        upcoming: deque[Future] = deque()
        in_model: tuple[list[RecognitionRequest], CutBatch, Future] | None = None
        for index, batch in enumerate(batches):
            if should_stop():
                release(
                    token, STOPPED, [r for left in batches[index:] for r in left], charged=False
                )
                break
            while len(upcoming) < ahead and index + len(upcoming) < len(batches):
                following = batches[index + len(upcoming)]
                with _timed(stages, "read page files"):
                    pages = page_files.of(following)
                upcoming.append(cut(pages, [_line_cut(request.line) for request in following]))
            done = upcoming.popleft().result()
            for stage, seconds in done.seconds.items():
                stages[stage] += seconds
            reading = (batch, done, model.submit(read, done, len(batch)))
            if in_model is not None:
                _store(token, engine, *in_model, stages, page_files.unavailable)
            in_model = reading
        if in_model is not None:
            _store(token, engine, *in_model, stages, page_files.unavailable)


@contextmanager
def _cutting(engine: Engine) -> Iterator[tuple[Callable[..., Future], int]]:
    """How the next batches are cut out of their pages and prepared for the model while this
    one is in the model and being stored: a function that starts that work for a batch, and
    how many batches to keep started. By default a thread (PIL, numpy and torch release the
    GIL for their work); with OCRREVIEW_PREPARE_PROCESSES, a pool of that many processes, so
    that a GPU worker's preparation scales with its cores."""
    from recognition.cutting import PageCutter, cut_in_process

    processes = settings.OCRREVIEW_PREPARE_PROCESSES
    if not processes:
        cutter = PageCutter()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as thread:
            yield partial(thread.submit, cutter.cut_and_prepare, engine.loaded.image_processor), 1
        return
    pool = _cutting_pool(engine.loaded.image_processor, processes)
    try:
        yield partial(pool.submit, cut_in_process), processes + 1
    except BrokenProcessPool:
        # A process died (killed for its memory, say): the claim is given back, and the next
        # one starts a new pool.
        _cutting_pools.pop(id(engine.loaded.image_processor), None)
        raise


# Pools of processes that cut and prepare lines, by the image processor they were started
# with: started once per worker process.
_cutting_pools: dict[int, ProcessPoolExecutor] = {}


def _cutting_pool(image_processor: Any, processes: int) -> ProcessPoolExecutor:
    from recognition.cutting import start_cutting_process
    from recognition.forkserver import forkserver

    key = id(image_processor)
    if key not in _cutting_pools:
        for stale in _cutting_pools.values():
            stale.shutdown(wait=False, cancel_futures=True)
        _cutting_pools.clear()
        # From a forkserver, not forked from the worker; a pool started again after a process
        # died is ready at once.
        _cutting_pools[key] = ProcessPoolExecutor(
            processes,
            mp_context=forkserver(),
            initializer=start_cutting_process,
            initargs=(image_processor,),
        )
    return _cutting_pools[key]


def _line_cut(line: Line):
    from recognition.cutting import LineCut

    return LineCut(page=line.page_id, bbox=line.bbox, polygon=line.polygon or None)


def batch_size_for(engine: Engine) -> int:
    """Lines per batch on the engine's device: OCRREVIEW_BATCH_SIZE on a CPU,
    OCRREVIEW_CUDA_BATCH_SIZE on a GPU."""
    return batch_size_on(getattr(engine.loaded, "device", None))


def batch_size_on(device: "torch.device | None") -> int:
    """batch_size_for a model loaded on `device` (the training gate's readings too)."""
    return settings.OCRREVIEW_CUDA_BATCH_SIZE if _is_gpu(device) else settings.OCRREVIEW_BATCH_SIZE


def _on_gpu(engine: Engine) -> bool:
    return _is_gpu(getattr(engine.loaded, "device", None))


def _is_gpu(device: "torch.device | None") -> bool:
    return device is not None and device.type == "cuda"


def _one_thread_unless_the_model_is_on_the_cpu(engine: Engine) -> None:
    """Where the model does not run on this CPU (a GPU worker, or the null model), torch does
    nothing here but the image processor's small operations, and a pool of a thread per core
    slows them down as soon as other processes want the cores: bench_pipeline --null-model
    beside a training run read 16 lines/s with two threads, 60 with one."""
    import torch

    if (settings.OCRREVIEW_NULL_MODEL or _on_gpu(engine)) and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _read(engine: Engine, nbest: int, cut: "CutBatch", batch_size: int) -> tuple[list, float]:
    """The model's readings of a prepared batch, and the seconds they took."""
    from recognition.inference import fixed_readings, recognize_prepared

    started = time.perf_counter()
    if settings.OCRREVIEW_NULL_MODEL:
        results = fixed_readings(cut.prepared, nbest=nbest)
    else:
        results = recognize_prepared(
            engine.loaded,
            cut.prepared,
            nbest=nbest,
            batch_size=batch_size,
            max_new_tokens=settings.OCRREVIEW_MAX_NEW_TOKENS,
            calibration=engine.version.calibration,
        )
    return results, time.perf_counter() - started


def _store(
    token: uuid.UUID,
    engine: Engine,
    batch: list[RecognitionRequest],
    cut: "CutBatch",
    reading: Future,
    stages: defaultdict[str, float],
    unavailable: dict[int, str],
) -> None:
    """Write a batch's readings once the model has them, and renew the claim's lease. Lines of
    pages the storage would not give (`unavailable`) go back to the queue, charged an attempt."""
    with _timed(stages, "waiting for the model"):
        results, model = reading.result()
    stages["model"] += model
    by_request = iter(results)
    outcome = {
        request.id: cut.errors[position] if position in cut.errors else next(by_request)
        for position, request in enumerate(batch)
    }
    waiting: dict[int, list[RecognitionRequest]] = defaultdict(list)
    for request in batch:
        if request.line.page_id in unavailable:
            waiting[request.line.page_id].append(request)
    for page_id, requests in waiting.items():
        release(token, unavailable[page_id], requests)
    stored = [r for r in batch if r.line.page_id not in unavailable]
    with _timed(stages, "write"):
        do_store_results(token, engine.version, stored, outcome, model / max(1, len(results)))
    with _timed(stages, "lease"):
        renew_lease(token)


class StorageUnavailable(Exception):
    """The store holding the pages, or the model version a collection reads with, does not
    answer, or answers no one: no line can be read."""


class _PageFiles:
    """The files of a claim's pages, each read once (from S3, a request): to each its bytes,
    or why it cannot be read. A file that is not there fails its lines. One the store refuses
    to give (an object archived to Glacier, or denied: botocore's errors, not OSErrors) puts
    its own lines back, charged, without failing the rest of the claim: those pages are
    `unavailable`. A store that is down (no connection, 5xx, expired keys, a shared disk's
    server gone) is no page's fault: StorageUnavailable ends the claim, uncharged, and the
    task backs off."""

    def __init__(self) -> None:
        self._files: dict[int, bytes | str] = {}
        self.unavailable: dict[int, str] = {}

    def of(self, batch: list[RecognitionRequest]) -> dict[int, bytes | str]:
        # A claim comes sorted by page, so no later batch needs a page this one does not:
        # a re-read of scattered lines (one per page) would otherwise hold a chunk's worth of
        # large scans at once.
        needed = {request.line.page_id for request in batch}
        for page_id in self._files.keys() - needed:
            del self._files[page_id]
        for request in batch:
            page = request.line.page
            if page.pk not in self._files:
                try:
                    with page.image.open("rb") as stream:
                        self._files[page.pk] = stream.read()
                except Exception as exc:
                    if storage.store_is_down(exc):
                        raise StorageUnavailable(f"the storage cannot be reached ({exc})") from exc
                    if isinstance(exc, OSError):  # a missing file: its lines fail
                        self._files[page.pk] = str(exc)
                    else:
                        reason = f"the page image cannot be fetched from storage ({exc})"
                        self._files[page.pk] = self.unavailable[page.pk] = reason
        return {request.line.page_id: self._files[request.line.page_id] for request in batch}


def do_store_results(
    token: uuid.UUID,
    version: ModelVersion,
    batch: list[RecognitionRequest],
    outcome: dict,
    model_seconds: float,
) -> None:
    """Write a batch's n-best lists and route its lines, for the requests this claim still
    holds. `outcome` maps a request id to its LineResult or to an error message. A line whose
    box a reviewer changed after the claim (moved, split, merged) was read as it no longer is:
    its request goes back to the queue, to be read as it now is. Lines marked unclear whose
    text a reading replaced are told to review (marked_text_replaced), which takes off a mark
    that was about the text gone."""
    claimed_geometry = {r.id: _geometry(r.line) for r in batch}
    with transaction.atomic():
        # A reviewer's lease on a line is compared by the clock that wrote it.
        now = database_now()
        # The lines are routed by their collections' thresholds: a threshold an admin applies
        # meanwhile waits for this batch, or this batch for it, and is read after it commits.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM corpus_collection WHERE id IN "
                "(SELECT collection_id FROM corpus_line WHERE id = ANY(%s)) ORDER BY id FOR SHARE",
                [[r.line_id for r in batch]],
            )
        # The lines before their requests (_lock_lines says why), read here as well.
        lines = {
            line.id: line
            # Lock the lines only: the collection and document rows are read, and admins may
            # edit them.
            for line in Line.objects.select_for_update(of=("self",))
            .select_related("collection", "document")
            .defer(*iiif_json_through("document"))
            .filter(id__in=[r.line_id for r in batch])
        }
        mine = {
            r.id: r
            for r in RecognitionRequest.objects.select_for_update().filter(
                id__in=[r.id for r in batch], claim=token, status=R.RUNNING
            )
        }
        if not mine:
            return
        already = set(
            Hypothesis.objects.filter(line_id__in=lines, model_version=version).values_list(
                "line_id", flat=True
            )
        )
        corrected = lines_being_corrected(list(lines))
        # A line already read under a request asked for after this one (a re-read with a newer
        # model while this claim was out, read first by a faster worker) keeps that reading;
        # this one's n-best is stored beside it.
        newest_read: dict[int, tuple] = {}
        for line_id, *asked in RecognitionRequest.objects.filter(
            line_id__in=lines, status=R.DONE
        ).values_list("line_id", "queued_at", "id"):
            newest_read[line_id] = max(tuple(asked), newest_read.get(line_id, tuple(asked)))
        hypotheses: list[tuple] = []
        routed: list[Line] = []
        # Lines marked unclear whose text the reading replaced: the text each had.
        marked_replaced: dict[int, str] = {}
        failed: dict[int, str] = {}
        reshaped: list[int] = []
        for request in mine.values():
            line = lines[request.line_id]
            if _geometry(line) != claimed_geometry[request.id]:
                reshaped.append(request.id)
                continue
            result = outcome[request.id]
            error = result if isinstance(result, str) else result.error
            if isinstance(result, str) or error or not result.hypotheses:
                failed[request.id] = error or "the model returned no reading"
                continue
            if line.id in already:
                continue  # read by this version under another request (starter fallback)
            hypotheses.extend(_hypothesis_rows(line, version, result, now))
            # Queued before its document was made final: the reading is one of the line's
            # alternatives, and its text stays as published.
            if line.document.is_final:
                continue
            read = newest_read.get(line.id)
            if read is not None and read > (request.queued_at, request.id):
                continue
            before = line.text
            if _route(line, result.hypotheses[0], now, line.id in corrected):
                routed.append(line)
                if line.unclear and line.text != before:
                    marked_replaced[line.id] = before
        _copy_hypotheses(hypotheses)
        _update_from_values(
            Line,
            "text = v.text, confidence = v.confidence, model_version_id = %s, "
            "status = v.status, error = '', version = t.version + 1, updated_at = %s, "
            # A lease ends with the status that made it (a lapsed one the routing let go).
            "claimed_by_id = CASE WHEN v.status = %s THEN t.claimed_by_id END, "
            "claimed_until = CASE WHEN v.status = %s THEN t.claimed_until END",
            [version.pk, now, Line.Status.IN_REVIEW, Line.Status.IN_REVIEW],
            [("text", "text"), ("confidence", "double precision"), ("status", "text")],
            [(line.id, line.text, line.confidence, line.status) for line in routed],
        )
        if marked_replaced:
            marked_text_replaced.send(Line, texts_before=marked_replaced)
        # Not an attempt that failed, so it does not count towards the limit.
        RecognitionRequest.objects.filter(id__in=reshaped).update(
            status=R.QUEUED, claim=None, lease_until=None, attempts=F("attempts") - 1
        )
        RecognitionRequest.objects.filter(
            id__in=[r.id for r in mine.values() if r.id not in failed and r.id not in reshaped]
        ).update(
            status=R.DONE,
            claim=None,
            lease_until=None,
            error="",
            finished_at=now,
            model_seconds=model_seconds,
        )
        if failed:
            _finish_failed([mine[i] for i in failed], failed)
        finish_documents({r.document_id for r in mine.values()})


def _geometry(line: Line) -> tuple:
    return line.bbox, line.polygon


# The columns _hypothesis_rows fills, in its order.
HYPOTHESIS_COLUMNS = (
    "line_id",
    "model_version_id",
    "rank",
    "text",
    "logprob",
    "confidence",
    "calibrated_confidence",
    "share",
    "tokens",
    "created_at",
)


def _hypothesis_rows(line: Line, version: ModelVersion, result, now: datetime) -> Iterable[tuple]:
    for hypothesis in result.hypotheses:
        tokens = [
            # jsonb has no NaN, which fp16 inference can give: one would fail the batch.
            {"start": t.start, "end": t.end, "prob": unit_interval(t.prob), "token": t.token}
            for t in hypothesis.tokens
        ]
        yield (
            line.id,
            version.pk,
            hypothesis.rank - 1,  # the engine counts from 1, the database from 0
            hypothesis.text,
            hypothesis.logprob,
            unit_interval(hypothesis.raw_confidence),
            unit_interval(hypothesis.confidence),
            unit_interval(hypothesis.share),
            json.dumps(tokens),
            now,
        )


def _copy_hypotheses(rows: list[tuple]) -> None:
    """COPY rather than bulk_create: a batch's n-best lists are hundreds of rows with their
    token lists, and an INSERT of them took several times as long (see bench_pipeline)."""
    if not rows:
        return
    table = Hypothesis._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(HYPOTHESIS_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _route(line: Line, best, now: datetime, being_corrected: bool = False) -> bool:
    """Show the best reading on the line and send it to review or accept it; lines a human
    has set keep their text, and a line someone is correcting is not accepted. A line a reviewer holds shows the reading too, and stays theirs:
    its new version makes their save a conflict that keeps what they typed, where keeping
    the old text would leave the line with no reading of the model it names, for good.
    Returns whether the line changed (the model version, version and time are set where it
    is written)."""
    if line.status == Line.Status.REVIEWED or line.human_text:
        return False
    line.text = best.text
    # A reading cut off by the token limit is missing its end: the chance that it is the
    # line is nil, whatever the product of its tokens says (the end-of-line token, the least
    # sure of a long line, never entered it). So it goes to a human at any threshold but 0,
    # now and when an admin applies another, and comes first in the least-sure order.
    line.confidence = 0.0 if best.truncated else unit_interval(best.confidence)
    if line.status == Line.Status.IN_REVIEW and line.claimed_until and line.claimed_until > now:
        return True
    line.status = (
        Line.Status.AUTO_ACCEPTED
        if line.confidence >= line.collection.confidence_threshold and not being_corrected
        else Line.Status.NEEDS_REVIEW
    )
    return True


def unit_interval(value: float) -> float:
    """A score as it is stored: within [0, 1], one that is not a number (fp16 overflow) 0."""
    return min(1.0, max(0.0, float(value)))


def finish_documents(document_ids: set[int]) -> None:
    """Documents with no line left to read are ready (a blank page has none to begin
    with). The rows are locked first, in a statement of their own, so that two workers
    finishing a document's last lines at once cannot both miss it: the one that waited
    for the lock looks for outstanding lines after the other committed."""
    locked = list(
        Document.objects.select_for_update()
        .filter(pk__in=document_ids, status=Document.Status.RECOGNIZING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not locked:
        return
    outstanding = RecognitionRequest.objects.filter(
        document_id=OuterRef("pk"), status__in=OUTSTANDING
    )
    Document.objects.filter(pk__in=locked).exclude(Exists(outstanding)).update(
        status=Document.Status.READY
    )


def unattended_work_exists() -> bool:
    """Whether lines wait with no live worker reading them: claims whose lease ran out (their
    worker died), or queued lines while no worker holds a claim (the kick that would have
    drained them may have died with a worker)."""
    running = RecognitionRequest.objects.filter(status=R.RUNNING)
    if running.filter(lease_until__lt=DatabaseNow()).exists():
        return True
    return not running.exists() and RecognitionRequest.objects.filter(status=R.QUEUED).exists()


# A document whose lines left to read are all reviewed: its text is settled, and the model's
# readings are kept beside it to measure and calibrate the model.
READING_FOR_EVALUATION = "Reading for evaluation"


def document_progress(documents: QuerySet[Document]) -> dict[int, dict]:
    """Per document: its state, pages (of those a IIIF import is fetching), lines done and
    total, and the model versions that ran."""
    # Without the lines' default ordering, which would join their pages, sort them all, and
    # make the model names below distinct per line rather than per document.
    lines = Line.objects.filter(document__in=documents).order_by()
    pages = dict(
        Page.objects.filter(document__in=documents)
        .values("document_id")
        .annotate(n=Count("id"))
        .values_list("document_id", "n")
    )
    canvases = dict(
        documents.annotate(
            n=Func(F("iiif_canvases"), function="jsonb_array_length", output_field=IntegerField())
        ).values_list("pk", "n")
    )
    totals = dict(
        lines.values("document_id").annotate(n=Count("id")).values_list("document_id", "n")
    )
    # Lines, not requests: a line queued for two models at once (a re-run before the first
    # finished) is one line to go.
    outstanding = dict(
        RecognitionRequest.objects.filter(document__in=documents, status__in=OUTSTANDING)
        .values("document_id")
        .annotate(n=Count("line_id", distinct=True))
        .values_list("document_id", "n")
    )
    # Lines reviewed already (imported ground truth) are read too, for a model to be measured
    # and calibrated on; a document waiting for those alone changes no text.
    outstanding_reviewed = dict(
        RecognitionRequest.objects.filter(
            document__in=documents, status__in=OUTSTANDING, line__status=Line.Status.REVIEWED
        )
        .values("document_id")
        .annotate(n=Count("line_id", distinct=True))
        .values_list("document_id", "n")
    )
    failed = dict(
        lines.filter(status=Line.Status.FAILED)
        .values("document_id")
        .annotate(n=Count("id"))
        .values_list("document_id", "n")
    )
    models: dict[int, list[str]] = defaultdict(list)
    for document_id, name in (
        lines.filter(model_version__isnull=False)
        .values_list("document_id", "model_version__name")
        .distinct()
    ):
        models[document_id].append(name)
    assignees = defaultdict(list)
    for document_id, user_id, username in (
        DocumentAssignment.objects.filter(document__in=documents)
        .order_by("user__username")
        .values_list("document_id", "user_id", "user__username")
    ):
        assignees[document_id].append({"id": user_id, "username": username})
    progress = {}
    for document in documents.without_iiif_json():
        total = totals.get(document.pk, 0)
        waiting = document.status in WAITING
        left = outstanding.get(document.pk, 0)
        done = 0 if waiting else total - left
        for_evaluation = (
            document.status == Document.Status.RECOGNIZING
            and left > 0
            and outstanding_reviewed.get(document.pk, 0) == left
        )
        progress[document.pk] = {
            "id": document.pk,
            "title": document.title,
            "status": document.status,
            "status_display": READING_FOR_EVALUATION
            if for_evaluation
            else document.get_status_display(),
            "reading_for_evaluation": for_evaluation,
            "error": document.error,
            "pages": pages.get(document.pk, 0),
            "pages_expected": canvases.get(document.pk) or pages.get(document.pk, 0),
            "lines_total": total,
            "lines_done": done,
            "lines_failed": failed.get(document.pk, 0),
            "percent": round(100 * done / total) if total else 0,
            "models": sorted(models[document.pk]),
            "finished": document.status in (Document.Status.READY, Document.Status.FAILED),
            "review_state": document.review_state,
            "assignees": assignees[document.pk],
        }
    return progress
