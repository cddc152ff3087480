"""`HOST=... make run`: the address the run command prints must answer, not 400 Bad Request
(Django refuses a host name it was not given)."""

import io
import os

import pytest

from ocrreview.corpus.management.commands.serve import Command


@pytest.fixture
def serve(monkeypatch):
    # Set, then removed: monkeypatch restores the variable as it was, however _allow sets it.
    monkeypatch.setenv("ALLOWED_HOSTS", "restored-after-the-test")
    monkeypatch.delenv("ALLOWED_HOSTS")
    out = io.StringIO()
    return Command(stdout=out), out


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("192.168.1.20", "localhost,127.0.0.1,[::1],192.168.1.20"),
        ("fe80::1", "localhost,127.0.0.1,[::1],[fe80::1]"),
        ("scans.local", "localhost,127.0.0.1,[::1],scans.local"),
    ],
)
def test_the_address_served_on_is_allowed(serve, settings, host, allowed):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    command, _ = serve
    command._allow(host)
    assert os.environ["ALLOWED_HOSTS"] == allowed


def test_every_address_asks_for_the_names_other_machines_use(serve):
    command, out = serve
    command._allow("0.0.0.0")
    assert "ALLOWED_HOSTS" not in os.environ
    assert "set ALLOWED_HOSTS to the names other machines use" in out.getvalue()


def test_allowed_hosts_given_are_kept(serve, monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "ocr.example.org")
    command, _ = serve
    command._allow("192.168.1.20")
    assert os.environ["ALLOWED_HOSTS"] == "ocr.example.org"
