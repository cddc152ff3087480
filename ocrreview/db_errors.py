"""Telling a lost database connection (a restart, a failover: try again) from the other errors
Django raises as OperationalError (a deadlock, a statement timeout, a full disk), which are
answered as any server error is, with a traceback."""

from django.db import InterfaceError, OperationalError

# SQLSTATE of a connection ended by the server: admin_shutdown, crash_shutdown,
# cannot_connect_now (starting up or in recovery).
SERVER_ENDED = {"57P01", "57P02", "57P03"}


def connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, InterfaceError):  # Django's "connection already closed"
        return True
    if not isinstance(exc, OperationalError):
        return False
    # psycopg raises errors without a SQLSTATE when the connection itself fails (closed by
    # the server, refused, timed out); class 08 is a connection exception.
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state in SERVER_ENDED
