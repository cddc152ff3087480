"""A pytest plugin, loaded by scripts/test.sh (`-p tests.parallel`), that gives each
pytest-xdist process a Redis database and a var folder of its own before Django reads its
settings. pytest-django makes a test database per process, but two processes' Celery workers
on one broker would take each other's tasks: process gwN uses REDIS_URL's database plus N,
and OCRREVIEW_VAR_DIR/gwN. It also runs the modules of slow tests first."""

import os

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-django loads the settings
def pytest_load_initial_conftests() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    # A worker that replaces a crashed one (gw2, gw3, ...) takes the crashed one's place.
    index = int(worker.removeprefix("gw")) % int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    server, _, database = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{server}/{int(database) + index}"
    os.environ["OCRREVIEW_VAR_DIR"] = os.path.join(os.environ["OCRREVIEW_VAR_DIR"], worker)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture scope
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding slow tests (real workers, kraken, browsers) first, each module's tests
    together and in order, so that the processes end on short tests and together: in file
    order the longest came last, and one process worked through them alone while the other
    had finished (the last 14 % of the tests took 7 of the suite's 17.5 minutes)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.partition("::")[0], []).append(item)
    groups = sorted(
        modules.values(), key=lambda tests: not any(t.get_closest_marker("slow") for t in tests)
    )
    items[:] = [item for tests in groups for item in tests]
