"""Where mail goes: EMAIL_URL's SMTP server, else files in var/outbox/; a malformed URL or
sender stops start-up with a message naming the variable, and never the password."""

import os
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from ocrreview import env
from tests.commands import fresh_python

SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.EMAIL_BACKEND, getattr(s, 'EMAIL_FILE_PATH', ''), s.DEFAULT_FROM_EMAIL, sep='|')"
)


def start_django(tmp_path, **overrides: str) -> subprocess.CompletedProcess:
    environ = {
        **{k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "DEFAULT_FROM_EMAIL")},
        "OCRREVIEW_VAR_DIR": str(tmp_path),
        **overrides,
    }
    return fresh_python(SHOW, environ)


def test_without_a_mail_server_mail_is_written_to_the_outbox(tmp_path):
    result = start_django(tmp_path)
    assert result.returncode == 0, result.stderr
    backend, folder, sender = result.stdout.strip().split("|")
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert folder == str(tmp_path / "outbox")
    assert sender == "ocrreview <ocrreview@localhost>"


def test_a_mail_server_url_is_taken_apart(tmp_path):
    result = start_django(
        tmp_path, EMAIL_URL="smtp+tls://u:p@mail:587", DEFAULT_FROM_EMAIL="Archive <a@b.org>"
    )
    assert result.returncode == 0, result.stderr
    backend, _, sender = result.stdout.strip().split("|")
    assert backend == "django.core.mail.backends.smtp.EmailBackend"
    assert sender == "Archive <a@b.org>"


@pytest.mark.parametrize(
    "url, server",
    [
        ("smtp://mail.example.org", env.MailServer("mail.example.org", 25, "", "", False, False)),
        (
            "smtp+tls://ocr%40example.org:p%2Fss@mail.example.org",
            env.MailServer("mail.example.org", 587, "ocr@example.org", "p/ss", True, False),
        ),
        (
            "smtps://u:pw@mail.example.org:2465/",
            env.MailServer("mail.example.org", 2465, "u", "pw", False, True),
        ),
    ],
)
def test_smtp_urls(monkeypatch, url, server):
    monkeypatch.setenv("EMAIL_URL", url)
    assert env.env_mail_server("EMAIL_URL") == server


@pytest.mark.parametrize(
    "url, says",
    [
        ("mail.example.org", "is not an SMTP URL"),
        ("http://u:secret@mail.example.org", "is not an SMTP URL"),
        ("smtp://", "is not an SMTP URL"),
        ("smtp://u:secret@mail.example.org:notaport", "has a malformed port"),
        ("smtp://u:secret@mail.example.org/inbox", "has a path or query"),
        ("smtp://u:secret@mail.example.org?tls=1", "has a path or query"),
    ],
)
def test_a_malformed_smtp_url_is_refused_without_its_password(monkeypatch, url, says):
    monkeypatch.setenv("EMAIL_URL", url)
    with pytest.raises(ImproperlyConfigured, match=says) as refused:
        env.env_mail_server("EMAIL_URL")
    assert "EMAIL_URL" in str(refused.value) and "secret" not in str(refused.value)


def test_a_malformed_url_stops_start_up(tmp_path):
    result = start_django(tmp_path, EMAIL_URL="smtp://mail:port")
    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_URL has a malformed port" in result.stderr


@pytest.mark.parametrize("sender", ["noreply", "Archive <archive>", "a@b.org\nBcc: x@y.org"])
def test_a_malformed_sender_is_refused(monkeypatch, sender):
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", sender)
    with pytest.raises(ImproperlyConfigured, match="DEFAULT_FROM_EMAIL="):
        env.env_from_address("DEFAULT_FROM_EMAIL", "x@y.org")
