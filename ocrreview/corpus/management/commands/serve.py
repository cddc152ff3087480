import shlex
import socket
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from ocrreview import embedded_db
from ocrreview.supervisor import Service, Supervisor, python_tool

WEB_READY_TIMEOUT_S = 120
# A web server of a run that was just stopped may hold the port a few seconds longer.
PORT_FREE_TIMEOUT_S = 20


class Command(BaseCommand):
    help = (
        "Run the web server and the Celery workers under a supervisor that restarts any that "
        "dies, until Ctrl+C, which stops them all (and the embedded PostgreSQL, if in use)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--setup",
            action="store_true",
            help="first say what this install uses, migrate, collect static files and load the "
            "demo admin and collection, as `make run` does (one process: each step would "
            "otherwise import torch and kraken again)",
        )

    def handle(self, *args, host: str, port: int, setup: bool, **options):
        try:
            if setup:
                self._setup()
            self._wait_for_free_port(host, port)
            self._serve(host, port)
        finally:
            if settings.EMBEDDED_PGDATA is not None:
                embedded_db.stop(settings.EMBEDDED_PGDATA)
        self.stdout.write("ocrreview stopped.")

    def _setup(self) -> None:
        steps = [
            ("Configuration", "describe_setup", {}),
            ("Database migrations", "migrate", {"interactive": False, "verbosity": 0}),
            ("Static files", "collectstatic", {"interactive": False, "verbosity": 0}),
            ("Demo admin account", "ensure_demo_admin", {}),
            ("Demo collection", "load_demo", {}),
        ]
        for title, command, options in steps:
            self.stdout.write(f"== {title}")
            call_command(command, stdout=self.stdout, **options)
        connections.close_all()

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
                    [*worker, *shlex.split("-Q default,gpu --concurrency 1 --hostname main@%h")],
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
            self._wait_for_web(supervisor, host, port)
            self.stdout.write(f"ocrreview is running at http://{host}:{port}/  (Ctrl+C stops it)")
            supervisor.supervise()
            self.stdout.write("== Stopping")
        finally:
            supervisor.stop()

    def _wait_for_web(self, supervisor: Supervisor, host: str, port: int) -> None:
        deadline = time.monotonic() + WEB_READY_TIMEOUT_S
        while not supervisor.stopping:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError(f"the web server did not answer on {host}:{port}") from None
                supervisor.check()
                time.sleep(0.2)
