from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ocrreview import embedded_db


class Command(BaseCommand):
    help = (
        "Start or stop the embedded PostgreSQL in var/postgres, the database of an install "
        "without DATABASE_URL. Starting takes over a server that a killed run left running."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop"])

    def handle(self, *args, action: str, **options):
        pgdata = settings.EMBEDDED_PGDATA
        if pgdata is None:
            raise CommandError("DATABASE_URL is set: there is no embedded PostgreSQL to manage.")
        if action == "start":
            taken_over = embedded_db.running_pid(pgdata) is not None
            embedded_db.start(pgdata)
            how = "already running, taken over" if taken_over else "started"
            self.stdout.write(f"embedded PostgreSQL in {pgdata}: {how}")
        elif embedded_db.stop(pgdata):
            self.stdout.write(f"embedded PostgreSQL in {pgdata}: stopped")
