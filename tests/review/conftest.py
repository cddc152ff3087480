"""A "Letters" document of two pages with lines as recognition leaves them, n-best and all,
and a volunteer's saves to undo."""

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from ocrreview.corpus.models import Line
from ocrreview.review import actions, saves_undo
from tests import factories

S = Line.Status


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas' passwords are hashed once per test; the default hasher is made slow on
    # purpose, which these tests do not need to prove.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def letter(letters):
    return factories.make_document(letters, "Letter to Mr Hale")


@pytest.fixture
def page(letter):
    return factories.make_page(letter, 0, width=600, height=400)


@pytest.fixture
def lines(page, model_version):
    """Four lines of one page in reading order; the queue wants the unsure ones first."""
    return [
        factories.make_read_line(
            page,
            0,
            [("Dear Sir", 0.95)],
            model_version,
            status=S.AUTO_ACCEPTED,
        ),
        factories.make_read_line(
            page,
            1,
            [("I recieved your", 0.40), ("I received your", 0.35), ("I reecived your", 0.1)],
            model_version,
            tokens=[
                {"start": 0, "end": 1, "prob": 0.99, "token": "I"},
                {"start": 2, "end": 10, "prob": 0.3, "token": "recieved"},
                {"start": 11, "end": 15, "prob": 0.7, "token": "your"},
            ],
        ),
        factories.make_read_line(
            page, 2, [("letter of the 3d", 0.60), ("letter of the 3rd", 0.30)], model_version
        ),
        factories.make_read_line(page, 3, [("inst. and", 0.20), ("inst and", 0.15)], model_version),
    ]


@pytest.fixture
def ledger_line(ledgers, model_version):
    document = factories.make_document(ledgers, "Ledger 1801")
    page = factories.make_page(document)
    return factories.make_read_line(page, 0, [("To cash", 0.3)], model_version)


@pytest.fixture
def bobs_saves(letters, lines, bob, dave):
    """bob rewrites lines 2 to 4 (in capitals) after the time this returns, and dave then
    edits line 4. Before it, bob saved line 1 and dave line 2; lines 3 and 4 held the model's
    readings."""
    factories.add_member(dave, letters)
    actions.do_save_line(lines[0], bob, "Dear Sir,", expected_version=1)
    actions.do_save_line(lines[1], dave, "I received your", expected_version=1)
    since = timezone.now()
    actions.do_save_line(lines[1], bob, "I RECEIVED YOUR", expected_version=2)
    actions.do_save_line(lines[2], bob, "LETTER OF THE 3D", expected_version=1)
    actions.do_save_line(lines[3], bob, "INST. AND", expected_version=1)
    actions.do_save_line(lines[3], dave, "inst and", expected_version=2)
    return since


@pytest.fixture
def broker():
    """The test's Redis database, empty: no message of an earlier test waits in it."""
    connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    connection.flushdb()
    return connection


@pytest.fixture
def large(monkeypatch):
    """Undos of more than one line count as large: bob's saves are three lines."""
    monkeypatch.setattr(saves_undo, "UNDO_NOW_LINES", 1)
