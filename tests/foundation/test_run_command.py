"""The README's run command as a newcomer meets it: no DATABASE_URL, no REDIS_URL, a copy of
the repository with no var/. It starts the embedded PostgreSQL, loads the demo, has it read by
a real worker through the filesystem broker, and serves the review in Chromium; a killed
worker is restarted while the web server answers; Ctrl+C leaves no process behind."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest

from ocrreview import embedded_db
from tests.playwright_fixtures import log_in

ROOT = Path(__file__).resolve().parents[2]
STARTED_S = 600
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(1200)]


def copy_of_the_repository(dest: Path) -> Path:
    """The working tree as git sees it (tracked and new files, nothing ignored), with the
    already-built virtual environment linked in, so nothing is reinstalled."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunCommand:
    """scripts/run.sh (what `make run` runs) in its own process group, as in a terminal."""

    def __init__(self, repo: Path, port: int) -> None:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "OCRREVIEW_VAR_DIR", "DJANGO_SETTINGS_MODULE")
        }
        environ["PORT"] = str(port)
        self.environ = environ
        self.repo = repo
        self.output: list[str] = []
        self.process = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=repo,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for(self, pattern: str, timeout: float = STARTED_S) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.output):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the output:\n{''.join(self.output)[-5000:]}")

    def processes(self) -> list[psutil.Process]:
        """Every process running from the copy: web server, workers, PostgreSQL."""
        found = []
        for process in psutil.process_iter(["cmdline", "cwd"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(self.repo) in cmdline or process.info["cwd"] == str(self.repo):
                found.append(process)
        return found

    def interrupt(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(120)


def answers(url: str) -> bool:
    # Generous: right after a worker is killed its replacement starts (torch, Django) on the
    # same cores, and on a loaded 2-core machine the page took 11 s to come.
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status == 200


@pytest.fixture
def run_command(tmp_path):
    run = RunCommand(copy_of_the_repository(tmp_path / "ocrreview"), free_port())
    yield run
    if run.process.poll() is None:
        run.interrupt()
    for process in run.processes():
        process.kill()
    embedded_db.stop(run.repo / "var" / "postgres")


def review_a_demo_line(page, url: str, password: str) -> tuple[int, str]:
    log_in(page, "admin", password)
    page.get_by_role("link", name="Lathrop letters (demo)").first.click()
    review = page.url.rstrip("/") + "/review/"
    # The demo's lines reach the queue as the worker reads them.
    for _ in range(120):
        page.goto(review)
        if page.locator("#editor[data-line-id]").count():
            break
        time.sleep(1)
    editor = page.locator("#editor[data-line-id]")
    line_id = int(editor.get_attribute("data-line-id"))
    text = page.locator("#line-text")
    assert text.input_value().strip(), "the demo line was not recognised"
    corrected = "Corrected by the run-command test"
    text.fill(corrected)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector('#editor[data-line-id]')?.dataset.lineId !== '{line_id}'"
    )
    return line_id, corrected


def test_make_run_serves_the_demo_supervises_its_workers_and_stops_on_ctrl_c(run_command, browser):
    password = run_command.wait_for(r"password '([^']+)'")[1]
    url = run_command.wait_for(r"ocrreview is running at (http://\S+)")[1]
    assert "database: the embedded PostgreSQL in" in "".join(run_command.output)

    # A second run from the same folder is refused, and leaves the first one's database be;
    # so is `manage.py serve` run on its own.
    for second_run in (["bash", "scripts/run.sh"], [".venv/bin/python", "manage.py", "serve"]):
        second = subprocess.run(
            second_run,
            cwd=run_command.repo,
            env={**run_command.environ, "PORT": str(free_port())},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "ocrreview is already running from this folder" in second.stderr
        assert embedded_db.running_pid(run_command.repo / "var" / "postgres") is not None

    context = browser.new_context(base_url=url)
    context.set_default_timeout(30_000)
    try:
        line_id, corrected = review_a_demo_line(context.new_page(), url, password)
    finally:
        context.close()
    with psycopg.connect(embedded_db.url(run_command.repo / "var" / "postgres")) as db:
        trail = db.execute(
            "SELECT action, text_after, text_before FROM review_correction WHERE line_id = %s",
            [line_id],
        ).fetchall()
        hypotheses = db.execute(
            "SELECT count(*) FROM transcription_hypothesis WHERE line_id = %s", [line_id]
        ).fetchone()[0]
    assert [(action, after) for action, after, _ in trail] == [("edit", corrected)]
    assert trail[0][2], "the correction starts from the model's reading"
    assert hypotheses > 0, "the worker's n-best readings are stored"

    workers = [p for p in run_command.processes() if "main@%h" in " ".join(p.cmdline())]
    workers[0].kill()
    run_command.wait_for(r"\[supervisor\] worker main was killed by signal 9; restarting", 30)
    assert answers(url + "accounts/login/")
    run_command.wait_for(r"\[supervisor\] restarting worker main", 60)
    time.sleep(2)
    restarted = [p for p in run_command.processes() if "main@%h" in " ".join(p.cmdline())]
    assert restarted and all(p.pid != workers[0].pid for p in restarted)

    assert run_command.interrupt() == 0, "".join(run_command.output)[-3000:]
    assert "ocrreview stopped." in "".join(run_command.output)
    left = [(p.pid, " ".join(p.cmdline())) for p in run_command.processes() if p.is_running()]
    assert left == []
    assert embedded_db.running_pid(run_command.repo / "var" / "postgres") is None
