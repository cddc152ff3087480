"""The run command's supervisor, on real processes: a service that dies is restarted after a
back-off that grows while it keeps dying; stopping ends every process of every service."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ocrreview.supervisor import Service, Supervisor

ROOT = Path(__file__).resolve().parents[2]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(300)"]
DIES_AT_ONCE = [sys.executable, "-c", "import sys; sys.exit(3)"]
# A parent with a child of its own, as a Celery worker has its pool.
WITH_A_CHILD = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    "'import time; time.sleep(300)']); time.sleep(300)",
]


def run_checks(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.02)


def test_a_service_that_keeps_dying_is_restarted_later_each_time():
    said: list[str] = []
    supervisor = Supervisor(
        [Service("crasher", DIES_AT_ONCE)], say=said.append, backoff_s=(0.1, 0.4, 0.8)
    )
    supervisor.start()
    try:
        run_checks(supervisor, 2.0)
    finally:
        supervisor.stop()
    waits = [line for line in said if "exited with code 3" in line]
    assert waits[:3] == [
        "[supervisor] crasher exited with code 3; restarting it in 0.1 s",
        "[supervisor] crasher exited with code 3; restarting it in 0.4 s",
        "[supervisor] crasher exited with code 3; restarting it in 0.8 s",
    ]
    assert all(line.endswith("0.8 s") for line in waits[3:])
    assert "[supervisor] restarting crasher" in said


def test_stopping_ends_each_service_with_the_processes_it_started(tmp_path):
    supervisor = Supervisor(
        [Service("worker", WITH_A_CHILD, tmp_path / "worker.log")], say=lambda line: None
    )
    supervisor.start()
    parent = psutil.Process(supervisor.services[0].process.pid)
    deadline = time.monotonic() + 30
    while not parent.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    family = [parent, *parent.children()]
    assert len(family) == 2
    supervisor.stop()
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert alive == []


def test_services_stop_when_the_supervisor_is_killed(tmp_path):
    """A `kill -9` of the run command leaves no worker to run beside the next run's."""
    script = (
        "import sys; from ocrreview.supervisor import Service, Supervisor; "
        f"s = Supervisor([Service('sleeper', {SLEEPS!r})]); s.start(); s.supervise()"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not psutil.Process(supervisor.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        [service] = psutil.Process(supervisor.pid).children()
    finally:
        supervisor.kill()
        supervisor.wait()
    gone, alive = psutil.wait_procs([service], timeout=10)
    assert alive == []


def test_a_closed_terminal_stops_the_services_as_ctrl_c_does(tmp_path):
    """SIGHUP (an ssh session that drops) ended the run command at once: its database was
    left running, and its services were left to stop without it."""
    script = (
        "from ocrreview.supervisor import Service, Supervisor; "
        f"s = Supervisor([Service('sleeper', {SLEEPS!r})]); s.start(); s.supervise(); "
        "s.stop(); print('stopped', flush=True)"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not psutil.Process(supervisor.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    [service] = psutil.Process(supervisor.pid).children()
    supervisor.send_signal(signal.SIGHUP)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0 and output == "stopped\n"
    gone, alive = psutil.wait_procs([service], timeout=10)
    assert alive == []
