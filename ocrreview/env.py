"""Typed readers for settings that come from environment variables.

Each one fails loudly with ImproperlyConfigured on a malformed value, so a typo in a
deployment's environment stops start-up instead of silently running with a default.
"""

import os
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str) -> str:
    # Empty is unset, as for every reader here: `X=` in an EnvironmentFile or compose's
    # `${X:-}` means "not given".
    return os.getenv(name) or default


def env_path(name: str, default: Path) -> Path:
    """A folder the app writes to. A relative path would be read against whatever folder
    each process was started from (the web server, each worker), so it is refused."""
    value = os.getenv(name)
    if value is None or value == "":
        return default
    path = Path(value)
    if not path.is_absolute():
        raise ImproperlyConfigured(f"{name}={value!r} must be an absolute path")
    return path


def env_redis_url(name: str) -> str:
    """A Redis URL, or "" where none is given. Anything else would reach kombu, which reads
    an unknown scheme as AMQP and leaves the workers waiting for a server that never answers."""
    url = os.getenv(name, "")
    if not url:
        return ""
    parts = urlsplit(url)
    # Both Celery's broker and Django's cache read it: they share redis:// and rediss:// only
    # (kombu has no unix:// transport).
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={url!r} is not a Redis URL; expected e.g. redis://127.0.0.1:6379/0 "
            "(rediss:// for TLS; a Unix socket is not supported)"
        )
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url!r} has a malformed port") from None
    return url


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} must be at most {maximum}")
    return number


def env_float(name: str, default: float, *, low: float, high: float) -> float:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not low <= number <= high:
        raise ImproperlyConfigured(f"{name}={number} must be between {low} and {high}")
    return number


def env_rate(name: str, default: str) -> str:
    """A request rate as REST framework's throttles read it: "600/min", "10/hour"."""
    value = os.getenv(name) or default
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period in ("s", "sec", "min", "hour", "day")):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate such as 600/min (periods: sec, min, hour, day)"
        )
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(
    name: str, default: str, choices: tuple[str, ...], *, upper_case: bool = False
) -> str:
    """One of `choices`; with upper_case, given in any case (LOG_LEVEL=info)."""
    value = os.getenv(name) or default
    chosen = value.upper() if upper_case else value
    if chosen not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return chosen


def env_database(name: str, default: str) -> dict:
    url = os.getenv(name) or default
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} is malformed ({exc}); expected e.g. postgres://user:password@host:5432/dbname"
        ) from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name}={url!r} names no known database scheme")
    if config["ENGINE"] != "django.db.backends.postgresql":
        # Claiming lines (FOR UPDATE SKIP LOCKED) and the append-only correction trail are
        # PostgreSQL's; leave DATABASE_URL unset for the embedded one.
        raise ImproperlyConfigured(
            f"{name}={url!r} is not a PostgreSQL URL; ocrreview runs on PostgreSQL only "
            "(without DATABASE_URL it starts its own in var/postgres)"
        )
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={url!r} names no database")
    # A server that answers nothing (a failover under way, packets dropped) would hold each
    # connection attempt for the TCP timeout, minutes, where a training step asks every
    # second; a URL's own ?connect_timeout= wins.
    config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return config


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    user: str
    password: str
    use_tls: bool  # STARTTLS after connecting
    use_ssl: bool  # TLS from the first byte


MAIL_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+tls": (587, True, False),
    "smtps": (465, False, True),
}


def env_mail_server(name: str) -> MailServer | None:
    """The SMTP server of a URL such as smtp+tls://user:password@mail.example.org:587, or
    None where none is given. One variable, as for the database and the broker, so a
    deployment cannot set a host and forget that its port wants TLS."""
    url = os.getenv(name, "")
    if not url:
        return None
    parts = urlsplit(url)
    example = "smtp+tls://user:password@mail.example.org:587 (or smtp://, smtps://)"
    if parts.scheme not in MAIL_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(f"{name} is not an SMTP URL; expected e.g. {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} has a path or query an SMTP URL has not; expected e.g. {example}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a malformed port") from None
    default_port, use_tls, use_ssl = MAIL_SCHEMES[parts.scheme]
    # The password is never in a message: the URL above is named, not quoted.
    return MailServer(
        host=parts.hostname,
        port=port or default_port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
    )


def env_from_address(name: str, default: str) -> str:
    """A sender such as `ocrreview <noreply@example.org>`: a typo would have every mail
    refused by the server, or worse, accepted and bounced where nobody reads."""
    value = os.getenv(name) or default
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or "\n" in value:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an email address such as ocrreview <noreply@example.org>"
        )
    return value
