from django.conf import settings
from django.core.management.base import BaseCommand

from recognition.loading import ModelLoadError, load_model_or_starter


class Command(BaseCommand):
    help = "Say which database, broker and recognition model this installation uses."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            self.stdout.write(
                f"database: SQLite at {db['NAME']} (embedded default; set DATABASE_URL "
                "for PostgreSQL)"
            )
        else:
            self.stdout.write(f"database: PostgreSQL {db['NAME']} on {db['HOST']}:{db['PORT']}")
        if settings.REDIS_URL:
            self.stdout.write(f"broker: Redis at {settings.REDIS_URL}")
        else:
            self.stdout.write(
                "broker: kombu filesystem transport in var/broker (embedded default; set "
                "REDIS_URL for Redis)"
            )
        try:
            _, used = load_model_or_starter(
                settings.OCRREVIEW_MODEL, revision=settings.OCRREVIEW_MODEL_REVISION, device="cpu"
            )
        except ModelLoadError as exc:
            self.stdout.write(self.style.ERROR(f"model: none can be loaded: {exc}"))
            return
        if used == settings.OCRREVIEW_MODEL:
            self.stdout.write(f"model: {used}")
        else:
            self.stdout.write(
                f"model: the shipped starter model ({used}), because OCRREVIEW_MODEL="
                f"{settings.OCRREVIEW_MODEL} cannot be loaded here (offline or missing)"
            )
