"""A request that loses PostgreSQL mid-way (a restart, a failover) is answered 503 with
Retry-After; an upload's files are not reported as unreadable. The backend serving the request
is terminated from another connection, as a restarting server ends it."""

import psycopg
import psycopg.errors
import pytest
from django.db import OperationalError, connection
from django.db.models.signals import post_save

from ocrreview.corpus.models import Page
from ocrreview.db_errors import connection_lost
from tests.factories import token_headers as auth
from tests.ingestion import files
from tests.ingestion.test_api import upload


@pytest.fixture
def database_lost_at_first_page():
    """Ends the request's database session as soon as it stores a page."""
    settings = connection.settings_dict

    def terminate(sender, instance, created, **kwargs):
        pid = connection.connection.info.backend_pid
        with psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            dbname=settings["NAME"],
            autocommit=True,
        ) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])

    post_save.connect(terminate, sender=Page, dispatch_uid="lose_the_database")
    yield
    post_save.disconnect(sender=Page, dispatch_uid="lose_the_database")
    connection.close()  # the test's own session went with the request's


@pytest.mark.django_db(transaction=True)
def test_an_upload_that_loses_the_database_is_a_503_to_try_again(
    client, alice, letters, database_lost_at_first_page
):
    headers = auth(alice)
    response = upload(
        client, letters, headers, ("line.png", files.png(300, 50)), segmentation="whole_image"
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "database cannot be reached" in response.json()["error"]


def raised_by_django(error: Exception) -> OperationalError:
    wrapped = OperationalError(str(error))
    wrapped.__cause__ = error
    return wrapped


@pytest.mark.parametrize(
    "error, lost",
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown(), True),
        (psycopg.errors.CannotConnectNow(), True),
        (psycopg.errors.DeadlockDetected(), False),
        (psycopg.errors.QueryCanceled(), False),
        (psycopg.errors.DiskFull(), False),
    ],
    ids=["closed", "shutdown", "starting", "deadlock", "statement-timeout", "disk-full"],
)
def test_only_a_lost_connection_is_a_503_the_rest_are_server_errors(error, lost):
    """A deadlock answered 'try again in a minute' with no traceback would never be seen."""
    assert connection_lost(raised_by_django(error)) is lost
