"""For race tests: wait until another connection is blocked on a lock this one holds."""

import time

from django.db import connection


def wait_until_another_session_waits_for_a_lock(timeout: float = 30) -> None:
    """The moment a race test's thread has reached the lock it is meant to wait on; a fixed
    sleep instead passes on a busy machine whether or not the thread got there."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # The statistics views keep one snapshot per transaction unless it is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError(f"no other session waited for a lock within {timeout} s")


def end_session(session) -> None:
    """A worker's death as PostgreSQL sees it: another connection's (a psycopg connection's)
    session ends, and its locks go with it, before this returns. Its client's close() returns
    before the server's process has let them go."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 30000)", [session.info.backend_pid])
        assert cursor.fetchone() == (True,)
