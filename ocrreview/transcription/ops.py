"""What an admin needs to see whether recognition is moving: broker queue lengths and the
workers that answer."""

from django.db.models import Count
from kombu.exceptions import ChannelError, OperationalError

from ocrreview.celery import app
from ocrreview.transcription.models import RecognitionRequest

# Every queue the app routes to, so a new one shows without being listed twice.
QUEUES = tuple(queue.name for queue in app.conf.task_queues)


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


def workers(timeout: float = 1.0) -> list[dict]:
    inspect = app.control.inspect(timeout=timeout)
    try:
        active = inspect.active() or {}
        queues = inspect.active_queues() or {}
    except Exception:
        return []
    return [
        {
            "name": name,
            "queues": sorted(q["name"] for q in queues.get(name, [])),
            "active": len(tasks),
        }
        for name, tasks in sorted(active.items())
    ]


def recognition_counts() -> dict[str, int]:
    counts = dict.fromkeys(RecognitionRequest.Status.values, 0)
    rows = RecognitionRequest.objects.values("status").annotate(n=Count("id"))
    counts.update({row["status"]: row["n"] for row in rows})
    return counts
