import fcntl
import os
import shlex
import socket
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ocrreview import embedded_db
from ocrreview.supervisor import Service, Supervisor, python_tool

WEB_READY_TIMEOUT_S = 120
# A web server of a run that was just stopped may hold the port a few seconds longer.
PORT_FREE_TIMEOUT_S = 20
# One machine, one worker for all but training and mail: fetching, exports, segmentation (on the
# GPU where kraken finds one) and recognition.
MAIN_WORKER_QUEUES = "default,segment,gpu"
# Mail has a worker of its own: behind the main worker's one process, busy with an export or a
# document for minutes, a person asking for their password's link would wait as long.
MAIL_WORKER_QUEUES = "mail"
# scripts/run.sh takes var/run.lock on this descriptor and execs `serve` with it.
HANDED_DOWN_LOCK = 9
ANY_ADDRESS = ("0.0.0.0", "::")


def _same_file(fd: int, other: int) -> bool:
    try:
        mine, theirs = os.fstat(fd), os.fstat(other)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


class Command(BaseCommand):
    help = (
        "Run the web server and the Celery workers under a supervisor that restarts any that "
        "dies, until Ctrl+C, which stops them all (and the embedded PostgreSQL, if in use). "
        "`make run` runs it after `prepare`, holding var/run.lock so that a second run from the "
        "same folder is refused rather than stopping this one's database."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        self._hold_run_lock()
        pgdata = settings.EMBEDDED_PGDATA
        if pgdata is not None and embedded_db.running_pid(pgdata) is None:
            raise CommandError(
                f"the embedded PostgreSQL in {pgdata} is not running: `make run` starts it, or "
                "`python manage.py embedded_postgres start`"
            )
        try:
            self._allow(host)
            self._wait_for_free_port(host, port)
            self._serve(host, port)
        finally:
            if pgdata is not None:
                embedded_db.stop(pgdata)
        self.stdout.write("ocrreview stopped.")

    def _hold_run_lock(self) -> None:
        """The lock `make run` takes: run on its own, a second `serve` would share this
        folder's database and stop it when it stopped. The lock `make run` hands down (its
        descriptor 9) is this process's already."""
        path = settings.VAR_DIR / "run.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        if _same_file(lock, HANDED_DOWN_LOCK):
            os.close(lock)
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise CommandError(
                f"ocrreview is already running from this folder ({path} is held); stop it first"
            ) from None
        # Held until the process ends.

    def _allow(self, host: str) -> None:
        """Django answers 400 to a host name it was not given: without ALLOWED_HOSTS, the one
        in the printed URL is added for the web server this starts."""
        if os.environ.get("ALLOWED_HOSTS"):
            return
        if host in ANY_ADDRESS:
            self.stdout.write(
                f"Serving on every address ({host}): set ALLOWED_HOSTS to the names other "
                "machines use for this one (e.g. ALLOWED_HOSTS=scans.local,192.168.1.20), "
                "or they are answered 400 Bad Request."
            )
            return
        name = f"[{host}]" if ":" in host else host
        if name not in settings.ALLOWED_HOSTS:
            os.environ["ALLOWED_HOSTS"] = ",".join([*settings.ALLOWED_HOSTS, name])

    def _wait_for_free_port(self, host: str, port: int) -> None:
        deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
            except OSError:
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{host}:{port} is in use (by another ocrreview still running?); stop it "
                    "or choose another PORT"
                )
            time.sleep(0.5)

    def _serve(self, host: str, port: int) -> None:
        logs = settings.VAR_DIR / "log"
        worker = [python_tool("celery"), "-A", "ocrreview", "worker", "-l", settings.LOG_LEVEL]
        supervisor = Supervisor(
            [
                Service(
                    "worker main",
                    [
                        *worker,
                        *shlex.split(f"-Q {MAIN_WORKER_QUEUES} --concurrency 1 --hostname main@%h"),
                    ],
                    logs / "worker.log",
                ),
                Service(
                    "worker training",
                    [*worker, *shlex.split("-Q training --pool solo --hostname training@%h")],
                    logs / "worker-training.log",
                ),
                Service(
                    "worker mail",
                    [
                        *worker,
                        *shlex.split(f"-Q {MAIL_WORKER_QUEUES} --pool solo --hostname mail@%h"),
                    ],
                    logs / "worker-mail.log",
                ),
                Service(
                    "web server",
                    [
                        python_tool("gunicorn"),
                        "ocrreview.wsgi",
                        "--bind",
                        f"{host}:{port}",
                        *shlex.split("--workers 2 --threads 4 --no-control-socket"),
                        "--access-logfile",
                        str(logs / "access.log"),
                    ],
                ),
            ]
        )
        self.stdout.write(f"== Celery workers (logs in {logs}/) and the web server")
        supervisor.start()
        try:
            if self._wait_for_web(supervisor, host, port):
                self.stdout.write(
                    f"ocrreview is running at http://{host}:{port}/  (Ctrl+C stops it)"
                )
                supervisor.supervise()
            self.stdout.write("== Stopping")
        finally:
            supervisor.stop()

    def _wait_for_web(self, supervisor: Supervisor, host: str, port: int) -> bool:
        """True once the web server answers; False when Ctrl+C came first."""
        deadline = time.monotonic() + WEB_READY_TIMEOUT_S
        while not supervisor.stopping:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError(f"the web server did not answer on {host}:{port}") from None
                supervisor.check()
                time.sleep(0.2)
        return False
