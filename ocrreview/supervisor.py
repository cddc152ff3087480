"""Keeps the processes of a one-machine install running: `make run` is their supervisor.

A service that dies (a worker killed by the out-of-memory killer, a crash) is started again
after a back-off that grows while it keeps dying, and the others go on serving. SIGINT
(Ctrl+C), SIGTERM or SIGHUP stops them all. Each service runs in a process group of its own, so
Ctrl+C reaches the supervisor alone, which stops each service through its main process (a
Celery worker then stops its own pool) and clears what is left of the group after. On Linux
a service is also told to stop when the supervisor itself dies (kill -9), so a killed run
leaves no workers behind to run beside the next one's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# A service that ran this long before dying is restarted after the shortest back-off again.
STEADY_S = 60.0
STOP_TIMEOUT_S = 15.0
POLL_S = 0.2


@dataclass
class Service:
    name: str
    argv: Sequence[str]
    log: Path | None = None  # None: the supervisor's own output
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        services: Sequence[Service],
        say: Callable[[str], None] = lambda line: print(line, flush=True),
        backoff_s: Sequence[float] = BACKOFF_S,
    ) -> None:
        self.services = list(services)
        self.say = say
        self.backoff_s = backoff_s
        self.stopping = False

    def _spawn(self, service: Service) -> None:
        output: IO[bytes] | None = None
        if service.log is not None:
            service.log.parent.mkdir(parents=True, exist_ok=True)
            output = service.log.open("ab")
        try:
            service.process = subprocess.Popen(
                list(service.argv),
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
                preexec_fn=_stop_with(os.getpid()) if _prctl is not None else None,
            )
        finally:
            if output is not None:
                output.close()
        service.started_at = time.monotonic()
        service.restart_at = None

    def start(self) -> None:
        # SIGHUP: the terminal closed (an ssh session dropped); it would end this process
        # without stopping the services or the embedded database.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._request_stop)
        for service in self.services:
            self._spawn(service)

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def check(self) -> None:
        """Notice services that died and restart those whose back-off has run out."""
        now = time.monotonic()
        for service in self.services:
            if service.restart_at is not None:
                if now >= service.restart_at:
                    self.say(f"[supervisor] restarting {service.name}")
                    self._spawn(service)
                continue
            assert service.process is not None
            code = service.process.poll()
            if code is None:
                continue
            _signal_group(service.process, signal.SIGKILL)  # what it leaves behind goes with it
            if now - service.started_at >= STEADY_S:
                service.failures = 0
            delay = self.backoff_s[min(service.failures, len(self.backoff_s) - 1)]
            service.failures += 1
            service.restart_at = now + delay
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self.say(f"[supervisor] {service.name} {how}; restarting it in {delay:g} s")

    def supervise(self) -> None:
        """Until SIGINT, SIGTERM or SIGHUP."""
        while not self.stopping:
            self.check()
            time.sleep(POLL_S)

    def stop(self) -> None:
        running = [s.process for s in self.services if s.process and s.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for process in running:
            _signal_group(process, signal.SIGKILL)


PR_SET_PDEATHSIG = 1
# Looked up once here: the child between fork and exec must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _stop_with(parent: int) -> Callable[[], None]:
    def in_the_child() -> None:
        """Before exec: SIGTERM when the supervisor dies, and no start at all when it died
        before the request was made."""
        assert _prctl is not None
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return in_the_child


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def python_tool(name: str) -> str:
    """A console script of this interpreter's environment (celery, gunicorn), whatever PATH is."""
    return str(Path(sys.executable).with_name(name))
