"""Bad settings stop start-up with a message that names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ocrreview import env

ROOT = Path(__file__).resolve().parents[2]


def python(environ: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    """The app's Python in a process of its own, so that settings are read from `environ`."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_django(**overrides: str) -> subprocess.CompletedProcess:
    return python({**os.environ, **overrides}, "-c", "import django; django.setup()")


@pytest.mark.parametrize(
    "url", ["nonsense", "http://example.org/db", "postgres://user@host:notaport/db"]
)
def test_malformed_database_url_is_named_in_the_error(url):
    result = start_django(DATABASE_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_bad_boolean_is_refused(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env.env_bool("DEBUG", False)


def test_threshold_outside_unit_interval_is_refused(monkeypatch):
    monkeypatch.setenv("OCRREVIEW_DEFAULT_THRESHOLD", "1.5")
    with pytest.raises(ImproperlyConfigured, match="between 0.0 and 1.0"):
        env.env_float("OCRREVIEW_DEFAULT_THRESHOLD", 0.9, low=0.0, high=1.0)


def test_batch_size_must_be_a_positive_integer(monkeypatch):
    monkeypatch.setenv("OCRREVIEW_BATCH_SIZE", "eight")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("OCRREVIEW_BATCH_SIZE", 8, minimum=1)
    monkeypatch.setenv("OCRREVIEW_BATCH_SIZE", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("OCRREVIEW_BATCH_SIZE", 8, minimum=1)


def test_device_must_be_a_known_choice():
    result = start_django(OCRREVIEW_DEVICE="tpu")
    assert result.returncode != 0
    assert "OCRREVIEW_DEVICE='tpu' must be one of auto, cpu, cuda" in result.stderr


@pytest.mark.parametrize(
    "value, error",
    [
        ("15m", "OCRREVIEW_LOST_MESSAGE_SECONDS='15m' is not an integer"),
        ("59", "OCRREVIEW_LOST_MESSAGE_SECONDS=59 must be at least 60"),
    ],
)
def test_a_lost_message_age_other_than_seconds_is_refused(value, error):
    result = start_django(OCRREVIEW_LOST_MESSAGE_SECONDS=value)
    assert result.returncode != 0
    assert error in result.stderr


def test_a_lost_message_age_is_taken_in_seconds():
    result = python(
        {**os.environ, "OCRREVIEW_LOST_MESSAGE_SECONDS": "60"},
        "-c",
        "import django; django.setup(); from ocrreview.sweep import lost_after; print(lost_after())",
    )
    assert result.stdout.strip() == "0:01:00", result.stderr


@pytest.mark.parametrize(
    "value, error",
    [
        ("10s", "OCRREVIEW_MAIL_RETRY_SECONDS='10s' is not an integer"),
        ("0", "OCRREVIEW_MAIL_RETRY_SECONDS=0 must be at least 1"),
        ("29", "OCRREVIEW_MAIL_RETRY_SECONDS=29 must be at most 28"),
    ],
)
def test_a_mail_retry_wait_other_than_seconds_is_refused(value, error):
    result = start_django(OCRREVIEW_MAIL_RETRY_SECONDS=value)
    assert result.returncode != 0
    assert error in result.stderr


def test_a_mail_retry_wait_is_the_setting_doubled_at_each_try():
    result = python(
        {**os.environ, "OCRREVIEW_MAIL_RETRY_SECONDS": "3"},
        "-c",
        "import django; django.setup(); from ocrreview.corpus.tasks import mail_retry_wait; "
        "print([mail_retry_wait(n) for n in range(4)])",
    )
    assert result.stdout.strip() == "[3, 6, 12, 24]", result.stderr


def test_a_database_other_than_postgresql_is_refused():
    result = start_django(DATABASE_URL="sqlite:///var/db.sqlite3")
    assert result.returncode != 0
    assert "is not a PostgreSQL URL; ocrreview runs on PostgreSQL only" in result.stderr


def test_defaults_need_no_server(tmp_path):
    """Without DATABASE_URL and REDIS_URL the app uses its embedded PostgreSQL in var/postgres
    and the filesystem broker."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environ["OCRREVIEW_VAR_DIR"] = str(tmp_path)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(d['ENGINE'], d['HOST'], d['NAME'], s.CELERY_BROKER_URL)"
    )
    result = python(environ, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        str(tmp_path / "postgres"),
        "ocrreview",
        "filesystem://localhost//",
    ]
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_deploy_check_passes_with_production_settings(tmp_path):
    environ = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-0123456789",
        "ALLOWED_HOSTS": "ocr.example.org",
        "OCRREVIEW_HTTPS": "true",
        "OCRREVIEW_VAR_DIR": str(tmp_path),
    }
    result = python(environ, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "redis//host:6379/0",
        "http://host:6379",
        "redis://:6379/0",
        "unix:///run/redis.sock",
    ],
)
def test_malformed_redis_url_is_named_in_the_error(monkeypatch, url):
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL=.* is not a Redis URL"):
        env.env_redis_url("REDIS_URL")


def test_redis_url_with_a_malformed_port_is_refused(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://host:port/0")
    with pytest.raises(ImproperlyConfigured, match="malformed port"):
        env.env_redis_url("REDIS_URL")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://user:pw@cache.example.org"])
def test_redis_urls_are_taken_as_given(monkeypatch, url):
    monkeypatch.setenv("REDIS_URL", url)
    assert env.env_redis_url("REDIS_URL") == url


def test_a_relative_data_folder_is_refused():
    result = start_django(OCRREVIEW_VAR_DIR="var")
    assert result.returncode != 0
    assert "OCRREVIEW_VAR_DIR='var' must be an absolute path" in result.stderr


def test_the_setup_line_names_the_broker_folder_in_use(tmp_path):
    """As in the Docker image, whose OCRREVIEW_VAR_DIR is /data/var."""
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    environ.update(
        OCRREVIEW_VAR_DIR=str(tmp_path),
        OCRREVIEW_MODEL=str(ROOT / "recognition" / "starter_model"),
        HF_HUB_OFFLINE="1",
    )
    result = python(environ, "manage.py", "describe_setup")
    assert result.returncode == 0, result.stderr
    assert f"broker: kombu filesystem transport in {tmp_path / 'broker'} " in result.stdout


def test_the_setup_line_says_when_no_model_will_read(tmp_path):
    environ = {
        **os.environ,
        "OCRREVIEW_VAR_DIR": str(tmp_path),
        "OCRREVIEW_MODEL": str(tmp_path / "no-such-model"),
        "OCRREVIEW_MODEL_FALLBACK": "false",
        "HF_HUB_OFFLINE": "1",
    }
    result = python(environ, "manage.py", "describe_setup")
    assert result.returncode == 0, result.stderr
    assert "OCRREVIEW_MODEL_FALLBACK is off: recognition fails every line of the" in result.stdout
    assert "starter" not in result.stdout


def test_an_empty_variable_is_unset(monkeypatch, tmp_path):
    """`MEDIA_ROOT=` in an EnvironmentFile: uploads went to the folder the server started in."""
    monkeypatch.setenv("MEDIA_ROOT", "")
    monkeypatch.setenv("OCRREVIEW_MODEL", "")
    assert env.env_path("MEDIA_ROOT", tmp_path / "media") == tmp_path / "media"
    assert env.env_str("OCRREVIEW_MODEL", "microsoft/trocr-base-handwritten") == (
        "microsoft/trocr-base-handwritten"
    )


def test_the_log_level_is_taken_in_either_case_and_a_wrong_one_is_named():
    """LOG_LEVEL=info stopped start-up with logging's "Unable to configure root logger", which
    named no variable."""
    assert start_django(LOG_LEVEL="info").returncode == 0
    result = start_django(LOG_LEVEL="verbose")
    assert result.returncode != 0
    assert "LOG_LEVEL='verbose' must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in (
        result.stderr
    )


def test_the_image_starts_only_with_a_secret_key_of_the_install(tmp_path):
    """The image's var/ is in the container, no volume: the key made there differed from one
    container to the next (web and workers, web replicas) and was lost with each."""
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(OCRREVIEW_VAR_DIR=str(tmp_path), OCRREVIEW_SECRET_KEY_IN_VAR="false")
    result = python(environ, "-c", "import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()
    environ["SECRET_KEY"] = "a-key-of-the-install"
    assert python(environ, "-c", "import django; django.setup()").returncode == 0
    assert "OCRREVIEW_SECRET_KEY_IN_VAR=false" in (ROOT / "Dockerfile").read_text()


def test_the_setup_line_keeps_the_redis_password_to_itself(tmp_path):
    """`make run` prints it on the terminal, and into whatever log keeps the terminal's output."""
    environ = {
        **os.environ,
        "REDIS_URL": "redis://:s3cret@cache.example.org:6379/0",
        "OCRREVIEW_VAR_DIR": str(tmp_path),
        "OCRREVIEW_MODEL": str(ROOT / "recognition" / "starter_model"),
        "HF_HUB_OFFLINE": "1",
    }
    result = python(environ, "manage.py", "describe_setup")
    assert result.returncode == 0, result.stderr
    assert "broker: Redis at redis://:***@cache.example.org:6379/0" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
