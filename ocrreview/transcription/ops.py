"""What an admin needs to see whether recognition is moving: broker queue lengths and the
workers that answer."""

from django.db.models import Count

from ocrreview.celery import app
from ocrreview.transcription.models import RecognitionRequest

# Every queue the app routes to, so a new one shows without being listed twice.
QUEUES = tuple(queue.name for queue in app.conf.task_queues)


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting per queue; None where the broker cannot be asked."""
    lengths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            for name in QUEUES:
                lengths[name] = channel.queue_declare(name, passive=True).message_count
    except Exception:
        return dict.fromkeys(QUEUES)
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
