"""A real headless Chromium (Debian's, driven by Playwright) against live_server.

One browser for the whole session, whatever directory its tests are in: a second
sync_playwright() while the first is open fails ("Sync API inside the asyncio loop").
tests/conftest.py imports these fixtures."""

import os
import threading
import time
from pathlib import Path

import pytest
from django.core.signals import request_finished, request_started

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (see requirements-apt.txt)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test thread, and Django refuses
    # database calls from inside one unless told that this is fine, which it is: the loop
    # is Playwright's, the database calls are the test's own.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


SETTLE_TIMEOUT_S = 30


class RequestsInFlight:
    """A context's requests from sent to answered or failed, as the browser sees them."""

    def __init__(self, context) -> None:
        self.open: set = set()
        context.on("request", self.sent)
        context.on("requestfinished", self.ended)
        context.on("requestfailed", self.ended)

    def sent(self, request) -> None:
        self.open.add(request)

    def ended(self, request) -> None:
        self.open.discard(request)


class ServedInFlight:
    """Requests the live server (a thread of this process) has started and not finished; a
    request the browser gave up on is still served to its end."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        request_started.connect(self.started, weak=False)
        request_finished.connect(self.finished, weak=False)

    def started(self, **kwargs) -> None:
        if self.served_by_live_server():
            with self.lock:
                self.count += 1

    def finished(self, **kwargs) -> None:
        if self.served_by_live_server():
            with self.lock:
                self.count -= 1

    @staticmethod
    def served_by_live_server() -> bool:
        """The test client serves in the test's own thread, and a streamed response of its
        finishes only when read, which a test need not do."""
        return threading.current_thread() is not threading.main_thread()


SERVED = ServedInFlight()


def settle(contexts: list, deadline: float) -> None:
    """Stop the pages sending anything new, wait until all they sent is answered, close them,
    and wait until the live server has finished serving everything.

    A test ends only then: the test database is flushed (TRUNCATE) as it ends, and a request
    the server is still serving (a draft a timer sent) holds row locks that deadlock the
    flush, which then leaves the next test a full database. The pages are closed here, not
    with their contexts, because closing one sends its last draft (the editor's pagehide
    beacon): here it meets the abort route, or else the server's count below waits for it;
    after this it would reach a server whose test is over."""
    for context, _ in contexts:
        context.route("**/*", lambda route: route.abort())
    for context, in_flight in contexts:
        pump = context.pages[0] if context.pages else context.new_page()
        while in_flight.open and time.monotonic() < deadline:
            pump.wait_for_timeout(50)  # lets Playwright deliver the events
        if in_flight.open:
            urls = sorted(request.url for request in in_flight.open)
            raise AssertionError(f"requests still unanswered after {SETTLE_TIMEOUT_S} s: {urls}")
        for page in list(context.pages):
            page.close()
    # A beacon may reach the server a moment after its page is gone: half a second of quiet.
    quiet = 0
    while quiet < 10:
        if time.monotonic() > deadline:
            raise AssertionError(f"the live server still serves {SERVED.count} requests")
        quiet = quiet + 1 if SERVED.count == 0 else 0
        time.sleep(0.05)


@pytest.fixture
def new_page(browser, live_server):
    """Pages of fresh browser contexts (separate cookies and localStorage), closed after the
    requests they sent are answered."""
    contexts = []

    def make(viewport=(1280, 900)):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": viewport[0], "height": viewport[1]}
        )
        context.set_default_timeout(15_000)
        contexts.append((context, RequestsInFlight(context)))
        return context.new_page()

    yield make
    settle(contexts, time.monotonic() + SETTLE_TIMEOUT_S)
    for context, _ in contexts:
        context.close()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def log_in(page, username: str, password: str = "password") -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
