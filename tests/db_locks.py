"""For race tests: wait until another connection is blocked on a lock this one holds."""

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


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


def once_another_session_commits(call: Callable[[], T], session) -> T:
    """What `call` returns, run in a thread of its own until it waits on a lock that `session`
    (a psycopg connection in an open transaction) holds, and `session` then commits."""
    results: list[T] = []

    def run() -> None:
        try:
            results.append(call())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    wait_until_another_session_waits_for_a_lock()
    session.execute("COMMIT")
    thread.join(timeout=30)
    assert results, "the call raised, or had not returned 30 s after the other session committed"
    return results[0]
