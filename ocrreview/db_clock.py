"""The database's clock, by which every lease and heartbeat is written and compared: the
machines' clocks may disagree (two web servers, a worker whose clock drifts), and one ahead
would take live claims (and keep its own long after it died), one behind would keep dead
claims (and write leases already over). The statement's time rather than Now(), the
transaction's start, which a long transaction leaves behind."""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import DateTimeField, ExpressionWrapper, Func


class DatabaseNow(Func):
    template = "statement_timestamp()"
    output_field = DateTimeField()


def database_now_plus(seconds: float) -> ExpressionWrapper:
    """The database's now moved by `seconds` (back, where negative): a lease's end, or the
    oldest heartbeat that is still alive."""
    return ExpressionWrapper(
        DatabaseNow() + timedelta(seconds=seconds), output_field=DateTimeField()
    )


def database_now() -> datetime:
    """DatabaseNow for what Python compares with times the database wrote."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]
