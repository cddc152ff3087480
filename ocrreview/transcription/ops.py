"""What an admin needs to see whether recognition is moving: broker queue lengths and the
workers that answer."""

from django.core.cache import cache
from django.db.models import Count
from kombu.exceptions import ChannelError, OperationalError

from ocrreview.celery import app
from ocrreview.db_clock import DatabaseNow
from ocrreview.transcription.models import RecognitionRequest

# Every queue the app routes to, so a new one shows without being listed twice.
QUEUES = tuple(queue.name for queue in app.conf.task_queues)

# Pages that poll every second or two ask which queues have a worker; a broadcast waits its
# whole timeout for answers, so one answer serves them all this long.
LISTENING_CACHE_S = 5
LISTENING_KEY = "ops:listening-queues"


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What the broker's transport raises when it cannot be reached (a Connection object
    connects only when used)."""
    return (OperationalError, *app.connection_for_read().connection_errors)


def _not_found(exc: ChannelError) -> bool:
    """Kombu's Redis transport has no queue until a message is sent to it: asking after an
    empty one is answered NOT_FOUND, as AMQP answers for a queue never declared."""
    return str(getattr(exc, "reply_code", "")) == "404" or "NOT_FOUND" in str(exc)


def queue_lengths() -> dict[str, int] | None:
    """Messages waiting per queue; None when the broker cannot be reached at all."""
    lengths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        try:
            # No retry: kombu would otherwise retry for its connect timeout on every page.
            connection.ensure_connection(max_retries=0)
            channel = connection.default_channel
        except _connection_errors():
            return None
        for name in QUEUES:
            try:
                lengths[name] = channel.queue_declare(name, passive=True).message_count
            except ChannelError as exc:
                if not _not_found(exc):
                    raise
                lengths[name] = 0
            except _connection_errors():
                return None
    return lengths


def workers(timeout: float = 1.0, *, ask: bool = True) -> list[dict]:
    """The workers that answer a broadcast (unless not `ask`ed: the broker is down), and those
    that hold a live claim on lines: a solo pool answers nothing while it reads a chunk, and
    its claim's lease, renewed after every batch, is what says it is there and busy."""
    active: dict = {}
    queues: dict = {}
    if ask:
        inspect = app.control.inspect(timeout=timeout)
        try:
            active = inspect.active() or {}
            queues = inspect.active_queues() or {}
        except Exception:
            active, queues = {}, {}
    reading = dict(
        RecognitionRequest.objects.filter(
            status=RecognitionRequest.Status.RUNNING, lease_until__gte=DatabaseNow()
        )
        .values_list("worker")
        .annotate(n=Count("id"))
        .order_by()
    )
    found = [
        {
            "name": name,
            "queues": sorted(q["name"] for q in queues.get(name, [])),
            "active": len(tasks),
            "reading": reading.get(name, 0),
            "answered": True,
        }
        for name, tasks in active.items()
    ]
    found += [
        # Only its claim is known of it: the lines come from the gpu queue's task, and the
        # other queues it reads are told when it answers again.
        {"name": name, "queues": ["gpu"], "active": 1, "reading": n, "answered": False}
        for name, n in reading.items()
        if name not in active
    ]
    return sorted(found, key=lambda worker: worker["name"])


def recognition_counts() -> dict[str, int]:
    counts = dict.fromkeys(RecognitionRequest.Status.values, 0)
    rows = RecognitionRequest.objects.values("status").annotate(n=Count("id"))
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def listening_queues(timeout: float = 1.0) -> set[str]:
    """The queues some worker that answered consumes, asked once per LISTENING_CACHE_S."""
    cached = cache.get(LISTENING_KEY)
    if cached is not None:
        return set(cached)
    try:
        answers = app.control.inspect(timeout=timeout).active_queues() or {}
    except _connection_errors():
        return set()
    names = sorted({q["name"] for queues in answers.values() for q in queues})
    cache.set(LISTENING_KEY, names, LISTENING_CACHE_S)
    return set(names)


def why_waiting(task_name: str) -> str:
    """Why a task of this name may not have started yet, for a page to show while it waits."""
    queue = app.amqp.router.route({}, task_name)["queue"].name
    lengths = queue_lengths()
    if lengths is None:
        return "Cannot tell why it waits: the broker is unreachable."
    if queue not in listening_queues():
        return (
            f"No worker is listening on the `{queue}` queue — start one with "
            f"`celery -A ocrreview worker -Q {queue}` (README: Production layout). "
            # A solo pool answers no broadcast while it runs a task: a training worker busy
            # with another run looks absent.
            "A worker of a solo pool busy with another task does not answer either."
        )
    waiting = lengths[queue]
    return (
        f"A worker is listening on the `{queue}` queue; "
        f"{waiting} task{'' if waiting == 1 else 's'} waiting in it."
    )
