from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from recognition.loading import STARTER_MODEL_DIR, ModelLoadError, get_model


def without_password(url: str) -> str:
    # Printed on the terminal of `make run`, and kept in whatever log keeps its output.
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class Command(BaseCommand):
    help = "Say which database, broker and recognition model this installation uses."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        if settings.EMBEDDED_PGDATA:
            self.stdout.write(
                f"database: the embedded PostgreSQL in {settings.EMBEDDED_PGDATA} (set "
                "DATABASE_URL for your own server)"
            )
        else:
            self.stdout.write(f"database: PostgreSQL {db['NAME']} on {db['HOST']}:{db['PORT']}")
        if settings.REDIS_URL:
            self.stdout.write(f"broker: Redis at {without_password(settings.REDIS_URL)}")
        else:
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
            self.stdout.write(
                f"broker: kombu filesystem transport in {folder} (embedded default; set "
                "REDIS_URL for Redis)"
            )
        source = settings.OCRREVIEW_MODEL
        try:
            get_model(source, revision=settings.OCRREVIEW_MODEL_REVISION, device="cpu")
        except ModelLoadError as exc:
            # The first sentence; the rest lists every file a local copy would need.
            reason = str(exc).split(". ", 1)[0]
        else:
            self.stdout.write(f"model: {source}")
            return
        if not settings.OCRREVIEW_MODEL_FALLBACK:
            self.stdout.write(
                self.style.ERROR(
                    f"model: OCRREVIEW_MODEL={source} cannot be loaded here ({reason}), and "
                    "OCRREVIEW_MODEL_FALLBACK is off: recognition fails every line of the "
                    "collections that read with the default model"
                )
            )
            return
        try:
            get_model(str(STARTER_MODEL_DIR), device="cpu")
        except ModelLoadError as exc:
            self.stdout.write(self.style.ERROR(f"model: none can be loaded: {exc}"))
            return
        self.stdout.write(
            f"model: the shipped starter model ({STARTER_MODEL_DIR}), because OCRREVIEW_MODEL="
            f"{source} cannot be loaded here: {reason}"
        )
