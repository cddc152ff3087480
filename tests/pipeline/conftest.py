import pytest
import redis
from django.conf import settings

from tests.workers import worker_env


@pytest.fixture
def bench_environment(monkeypatch):
    """The environment a benchmark passes to the workers it starts: the test database, an
    empty broker, the tiny model read on the CPU in few tokens."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    env = worker_env(OCRREVIEW_DEVICE="cpu", OCRREVIEW_MAX_NEW_TOKENS="8", HF_HUB_OFFLINE="1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
