"""The throwaway database benchmarks seed, so that they never touch real data."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, connections


@contextmanager
def bench_database(write) -> Iterator[None]:
    """Run on a new database named after the configured one (<name>_bench), dropped after."""
    settings_dict = connection.settings_dict
    test_settings = settings_dict.setdefault("TEST", {})
    test_name, real_name = test_settings.get("NAME"), settings_dict["NAME"]
    test_settings["NAME"] = f"{real_name}_bench"
    write(f"creating {test_settings['NAME']} …")
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connections.close_all()
        # Back on the real database, and its test name as it was: a test session that runs
        # the command goes on with its own database and drops it by that name.
        connection.creation.destroy_test_db(real_name, verbosity=0)
        test_settings["NAME"] = test_name
