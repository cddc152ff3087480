"""A task registered by tests alone (a worker imports it with --include): it holds a worker
process on the `default` queue until the test lets it go, as a long export, IIIF fetch or undo
does, without depending on how long any of them takes."""

import redis
from celery import shared_task
from django.conf import settings


def _broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@shared_task(name="tests.hold_default")
def hold_default(key: str) -> None:
    broker = _broker()
    broker.set(f"{key}:started", 1)
    broker.blpop([f"{key}:release"], timeout=300)
    broker.set(f"{key}:done", 1)


def started(key: str) -> bool:
    return bool(_broker().exists(f"{key}:started"))


def done(key: str) -> bool:
    return bool(_broker().exists(f"{key}:done"))


def release(key: str) -> None:
    _broker().rpush(f"{key}:release", 1)
