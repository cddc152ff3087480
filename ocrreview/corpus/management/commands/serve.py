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
# One machine, one worker for all but training: fetching, segmentation (on the GPU where kraken
# finds one) and recognition.
MAIN_WORKER_QUEUES = "default,segment,gpu"


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
        pgdata = settings.EMBEDDED_PGDATA
        if pgdata is not None and embedded_db.running_pid(pgdata) is None:
            raise CommandError(
                f"the embedded PostgreSQL in {pgdata} is not running: `make run` starts it, or "
                "`python manage.py embedded_postgres start`"
            )
        try:
            self._wait_for_free_port(host, port)
            self._serve(host, port)
        finally:
            if pgdata is not None:
                embedded_db.stop(pgdata)
        self.stdout.write("ocrreview stopped.")

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
        worker = [python_tool("celery"), "-A", "ocrreview", "worker", "--loglevel", "INFO"]
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
