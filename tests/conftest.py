"""Shared fixtures. Personas (as in healthchecks' tests): alice administers the "Letters"
collection, bob reviews it, charlie reviews only "Ledgers", dave has an account but is in no
collection yet, and staff is a site admin."""

import threading
from datetime import datetime

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations
from django.utils import timezone

from ocrreview.corpus.models import Membership
from tests import factories
from tests.playwright_fixtures import browser, new_page, screenshot  # noqa: F401
from tests.s3 import s3_server, s3_storage  # noqa: F401
from tests.smtp import smtp_down, smtp_server  # noqa: F401
from tests.tiny_model import build_tiny_model

_truncate_tables = DatabaseOperations.sql_flush


def _delete_tables(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    """After each transactional test (live server, workers) Django's flush empties every table
    with one TRUNCATE, for which PostgreSQL gives each table and index a new file and syncs it
    at commit however few rows the test left: 1.4 to 1.8 s for this project's tables on the
    loaded 2-core machine, against 0.2 s for a DELETE of each. Triggers are off while it runs,
    as TRUNCATE passes them by (review_correction's refuses DELETE), and so are the foreign
    keys' checks, which the tables' emptiness makes moot; session_replication_role is a
    superuser's setting, so another role, and a flush that resets sequences, keep TRUNCATE."""
    if reset_sequences or not tables or not _is_superuser(self.connection):
        return _truncate_tables(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    # execute_sql_flush runs these in one transaction, which SET LOCAL and the lock last. The
    # lock is TRUNCATE's own: a worker or live server still writing finishes before the flush,
    # whose rows go with the rest, or waits until after it, rather than leaving a row in a
    # table already emptied (a line whose page is gone, with the foreign keys' checks off).
    quoted = ", ".join(self.quote_name(table) for table in tables)
    return [
        "SET LOCAL session_replication_role = replica",
        f"LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE",
        *(f"DELETE FROM {self.quote_name(table)}" for table in tables),
    ]


def _is_superuser(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        return cursor.fetchone()[0]


DatabaseOperations.sql_flush = _delete_tables


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


class Clock:
    """timezone.now(), which dates the trail's records, set for the thread that sets it (the
    real time until then, and after set(None)): also a web server's or a worker's clock off
    from the database's (clock.set(clock.real() + an hour))."""

    def __init__(self):
        self.moments = threading.local()
        self.real = timezone.now

    def now(self) -> datetime:
        return getattr(self.moments, "now", None) or self.real()

    def set(self, moment: datetime | None) -> None:
        self.moments.now = moment


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Actions at the times a test sets: on the days it means."""
    made = Clock()
    monkeypatch.setattr(timezone, "now", made.now)
    return made


DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker_down(settings):
    """This process's Celery app sends to a port nothing listens on. Its connection and
    producer pools are dropped on the way in and out: pools opened before keep their broker,
    and pools opened here would keep the dead one for the tests that follow. Celery offers no
    public way to drop them (its close() also unregisters the app)."""
    from ocrreview.celery import app

    def drop_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    working = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = DEAD_BROKER
    drop_pools()
    assert app.connection_for_write().port == 1
    yield
    settings.CELERY_BROKER_URL = working
    drop_pools()


@pytest.fixture
def letters(db):
    return factories.make_collection("Letters")


@pytest.fixture
def ledgers(db):
    return factories.make_collection("Ledgers")


@pytest.fixture
def alice(letters):
    user = factories.make_user("alice")
    factories.add_member(user, letters, Membership.Role.ADMIN)
    return user


@pytest.fixture
def bob(letters):
    user = factories.make_user("bob")
    factories.add_member(user, letters, Membership.Role.REVIEWER)
    return user


@pytest.fixture
def charlie(ledgers):
    user = factories.make_user("charlie")
    factories.add_member(user, ledgers, Membership.Role.REVIEWER)
    return user


@pytest.fixture
def dave(db):
    return factories.make_user("dave")


@pytest.fixture
def staff(db):
    return factories.make_user("staff", staff=True)


@pytest.fixture
def model_version(db):
    return factories.make_model_version()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tiny_model(settings, tiny_model_dir):
    """The tiny random model as the site's default model, read in few tokens."""
    settings.OCRREVIEW_MODEL = str(tiny_model_dir)
    settings.OCRREVIEW_MODEL_REVISION = None
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    settings.OCRREVIEW_DEVICE = "cpu"
    return tiny_model_dir


@pytest.fixture
def latest_migrations_after():
    """For a test that migrates an app back: every app ends at its latest migration. Moving an
    app back also unapplies other apps' migrations that depend on it, which moving that app
    forward again does not reapply, and the tests after it on this database would miss
    their tables."""
    yield
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
