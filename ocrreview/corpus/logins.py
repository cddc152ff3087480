"""A limit on password guessing at the login pages (the site's and the admin's).

Failed logins are counted per username and per client address in the shared cache, in windows
of OCRREVIEW_LOGIN_FAILURE_WINDOW seconds. Once a username has failed
OCRREVIEW_LOGIN_FAILURES_PER_USERNAME times, or an address OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS
times, a login with that username or from that address is refused until the window ends,
before the password is checked: a guess costs the guesser a refusal, and this server no
password hash. Other usernames from other addresses log in as before.
"""

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """Where the request came from: REMOTE_ADDR, or behind OCRREVIEW_PROXY_COUNT proxies the
    address the outermost of them appended to X-Forwarded-For (the entries before it are the
    client's to write). An IPv6 client counts as its /64, which one subscriber holds whole."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.OCRREVIEW_PROXY_COUNT
    header = request.META.get("HTTP_X_FORWARDED_FOR")
    forwarded = [entry.strip() for entry in header.split(",")] if header else []
    # Fewer entries than proxies: the request came around the outer ones, and the entries
    # may be its own; it counts as its peer.
    if proxies and len(forwarded) >= proxies:
        address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), 64), strict=False))
    return str(ip)


def failure_key(kind: str, identity: str, now: float | None = None) -> tuple[str, float]:
    """The cache key counting failed logins of one username or address in the window `now`
    falls in, and when that window ends. Identities are hashed, as a username may hold
    characters no cache key should. A key per window, kept twice as long, never expires while
    its window counts: a count that expired between its creation and its increment would
    come back without an expiry, and hold its username out for good."""
    window = settings.OCRREVIEW_LOGIN_FAILURE_WINDOW
    slot = int((time.time() if now is None else now) // window)
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return f"login-failures:{kind}:{digest}:{slot}", (slot + 1) * window


def _counts(request, username: str | None) -> list[tuple[str, str, int, str]]:
    """(kind, identity, limit, whose) of each count that a login attempt is held to."""
    counts = [
        (
            "address",
            client_address(request),
            settings.OCRREVIEW_LOGIN_FAILURES_PER_ADDRESS,
            "from your address",
        )
    ]
    if username is not None:
        counts.append(
            (
                "username",
                username,
                settings.OCRREVIEW_LOGIN_FAILURES_PER_USERNAME,
                "with this username",
            )
        )
    return counts


def refusal(request, username: str | None) -> tuple[int, str] | None:
    """(seconds to wait, message) where a limit refuses this login now, else None."""
    now = time.time()
    for kind, identity, limit, whose in _counts(request, username):
        key, ends = failure_key(kind, identity, now)
        if cache.get(key, 0) >= limit:
            wait = max(1, math.ceil(ends - now))
            minutes = math.ceil(wait / 60)
            return wait, (
                f"Too many failed logins {whose}: try again in {minutes} "
                f"minute{'s' if minutes != 1 else ''}."
            )
    return None


def record_failure(request, username: str) -> None:
    window = settings.OCRREVIEW_LOGIN_FAILURE_WINDOW
    for kind, identity, limit, _ in _counts(request, username):
        key, _ = failure_key(kind, identity)
        cache.add(key, 0, timeout=2 * window)
        if cache.incr(key) == limit:
            logger.warning(
                "%s %r failed %d logins: refused for up to %d s",
                kind.capitalize(),
                identity,
                limit,
                window,
            )


def _within_limits(form, username, check, counts: Callable[[ValidationError], bool]):
    """`check()` of a form that takes a password, refused before the password is checked
    while a limit refuses the username or the address (`form.retry_after` set), the refusals
    it raises that `counts` counted as failed logins."""
    refused = refusal(form.request, username)
    if refused:
        form.retry_after, message = refused
        raise ValidationError(message, code="throttled")
    try:
        return check()
    except ValidationError as error:
        if counts(error):
            record_failure(form.request, username)
        raise


class ThrottledLogin:
    """For an AuthenticationForm: a login over the limits is refused before its password is
    checked, with `retry_after` set; a wrong username or password is counted."""

    retry_after: int | None = None

    def clean(self):
        return _within_limits(
            self,
            self.cleaned_data.get("username"),
            super().clean,
            lambda error: error.code == "invalid_login",
        )


class LoginForm(ThrottledLogin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    pass


class TooManyRequests:
    """For a view of a throttled form: 429 with Retry-After while a limit refuses it."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


class LoginView(TooManyRequests, auth_views.LoginView):
    form_class = LoginForm


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """A session, stolen or left open, is another door for guessing the account's password
    (often used elsewhere too): wrong current passwords count as failed logins, and a change
    over the limits is refused before the password is checked."""

    def __init__(self, *args, request, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.retry_after: int | None = None

    def clean_old_password(self):
        return _within_limits(
            self, self.user.get_username(), super().clean_old_password, lambda error: True
        )


class PasswordChangeView(TooManyRequests, auth_views.PasswordChangeView):
    """Its template is the site's own: Django's default name is the admin's password page too,
    which keeps the admin's look."""

    form_class = ThrottledPasswordChangeForm
    template_name = "registration/password_change.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}
