"""The suite's own flush after each transactional test (tests/conftest.py): every table empty,
with no setting of it left on the connection the next test uses."""

import psycopg
import pytest
from django.core.management.color import no_style
from django.db import connection

from ocrreview.corpus.models import Collection, Line
from tests import factories
from tests.db_locks import once_another_session_commits


def rows_left() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True):
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return {table: n for table, n in counts.items() if n}


@pytest.mark.django_db(transaction=True)
def test_the_flush_empties_every_table_and_leaves_the_triggers_on(letters, bob):
    factories.make_line(factories.make_page(factories.make_document(letters)), text="kept")
    assert Line.objects.exists()
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables))

    assert rows_left() == {}
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone() == ("origin",)
    assert not Collection.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_row_written_while_the_flush_runs_goes_with_the_rest(letters):
    """A worker or live server of the test still writing: the flush waits for its transaction,
    as TRUNCATE did, instead of emptying the tables around it."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as worker:
        worker.execute("BEGIN")
        worker.execute("INSERT INTO auth_group (name) VALUES ('written late')")
        flush = connection.ops.sql_flush(no_style(), tables)
        once_another_session_commits(lambda: connection.ops.execute_sql_flush(flush), worker)

    assert rows_left() == {}
