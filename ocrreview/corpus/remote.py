"""Fetching from servers that a user names (IIIF manifests and images) without letting that
user reach what only the server running this app can reach.

Every request, and every redirect, is checked before any connection: only http and https,
and the host's every DNS address must be public (not loopback, private, link-local, multicast,
reserved, shared or cloud-metadata) unless OCRREVIEW_IIIF_ALLOWED_HOSTS names the host. The
connection then goes to the very address that was checked, with the name kept in the Host
header and TLS SNI, so a second DNS answer cannot swap in another address (DNS rebinding).
Redirects are followed here, a few at most; every answer is read with timeouts and a byte
cap, and the whole fetch, its redirects included, has one deadline.
"""

import contextlib
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import idna
import urllib3
from django.conf import settings

MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024
USER_AGENT = "ocrreview IIIF import"


class FetchError(ValueError):
    """A fetch that failed for good, with a message fit to show to the user."""


class FetchUnavailable(FetchError):
    """A fetch that may succeed later: a timeout, a refused connection, a 5xx or 429."""


@dataclass
class Fetched:
    url: str
    content_type: str
    body: bytes


def fetch(url: str, *, max_bytes: int, accept: str) -> Fetched:
    """GET `url`, following redirects, every hop checked as the module says."""
    seen = url
    # One deadline for all the hops: a manifest is fetched in the web request, which a chain
    # of slow redirects with a deadline each would hold (MAX_REDIRECTS + 1) times as long.
    with _Deadline(url) as deadline:
        for _ in range(MAX_REDIRECTS + 1):
            result = _hop(seen, accept, max_bytes, deadline)
            if isinstance(result, Fetched):
                return result
            seen = result
    raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times (a redirect loop?)")


class _Deadline:
    """OCRREVIEW_IIIF_FETCH_DEADLINE for one fetch, redirects and headers included: urllib3's
    read timeout applies to each receive, so a server sending its headers a byte at a time
    within it would hold a web thread or a worker for good. At the deadline the connections
    are shut down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seconds = settings.OCRREVIEW_IIIF_FETCH_DEADLINE
        self.sockets: list[socket.socket] = []
        self.passed = False
        self._ends = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._shut)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def _shut(self) -> None:
        self.passed = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def failure(self, url: str, exc: urllib3.exceptions.HTTPError | None) -> FetchError:
        # Cut by the timer, or timed out by urllib3 on what was left of the deadline.
        if exc is None or self.passed or self.remaining() <= 0:
            redirected = f" (redirected to {url})" if url != self.url else ""
            return FetchUnavailable(
                f"{self.url}{redirected} took longer than {self.seconds:g} s to send"
            )
        return _failure(url, exc)

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def _hop(url: str, accept: str, max_bytes: int, deadline: _Deadline) -> Fetched | str:
    """The answer at `url`, or the URL it redirects to."""
    response, pool = _request(url, accept, deadline)
    try:
        if response.status in REDIRECTS:
            location = response.headers.get("Location")
            if not location:
                raise FetchError(f"{url} redirects without saying where to")
            try:
                return urljoin(url, location)
            except ValueError as exc:
                raise FetchError(f"{url} redirects to {location!r}, not a URL ({exc})") from None
        if response.status == 429 or response.status >= 500:
            raise FetchUnavailable(f"{url} answered {response.status} {response.reason}")
        if response.status != 200:
            raise FetchError(f"{url} answered {response.status} {response.reason}")
        body = _read_capped(response, url, max_bytes, deadline)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return Fetched(url, content_type, body)
    finally:
        response.release_conn()
        pool.close()


def check_url(url: str) -> None:
    """Refuse a URL this module would not fetch, without fetching it."""
    _target(url)


@dataclass
class _Target:
    scheme: str
    host: str
    port: int
    address: str


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url!r} is not an http or https URL")
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchError(f"{url!r} names no host")
    try:
        host = _ascii_host(host)
    except idna.IDNAError as exc:
        raise FetchError(f"{url!r} names a host that is not a valid domain name ({exc})") from None
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchUnavailable(f"the host {host} cannot be resolved ({exc})") from None
    addresses = [answer[4][0] for answer in answers]
    if not _allowed(host, port):
        for address in addresses:
            if not _public(address):
                raise FetchError(
                    f"{url} is refused: {host} is at {address}, an address of a private, "
                    "local or reserved network (an administrator may allow the host with "
                    "OCRREVIEW_IIIF_ALLOWED_HOSTS)"
                )
    return _Target(parts.scheme, host, port, addresses[0])


def _ascii_host(host: str) -> str:
    """The name as DNS, the Host header and the certificate know it, as browsers write it
    (UTS 46): bücher.example is xn--bcher-kva.example to all of them. Addresses stay."""
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return idna.encode(host, uts46=True).decode("ascii")
    return host


def _allowed(host: str, port: int) -> bool:
    for entry in settings.OCRREVIEW_IIIF_ALLOWED_HOSTS:
        try:
            allowed = urlsplit(f"//{entry.lower()}")
            named = allowed.port in (None, port) and _ascii_host(allowed.hostname or "") == host
        except (ValueError, idna.IDNAError):
            continue  # an entry that names no host this could be
        if named:
            return True
    return False


# IPv6 prefixes that carry an IPv4 address to a NAT64 gateway (RFC 6052, RFC 8215), which
# would reach it whatever it is: 64:ff9b::a9fe:a9fe is 169.254.169.254 on such a network.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
# Deprecated IPv4-compatible addresses (::a.b.c.d), which a host may still route to IPv4.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64 or ip in IPV4_COMPATIBLE:
            return False  # no fetch has a reason to use either
        if ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.ipv4_mapped or ip.sixtofour:
            ip = ip.ipv4_mapped or ip.sixtofour
    # is_global leaves out loopback, private, link-local (169.254.169.254, where clouds serve
    # instance credentials), shared (100.64/10), reserved and unspecified addresses.
    # Before Python 3.11.10 (3.12.4), is_global of an IPv6 address only meant "not private":
    # site-local fec0::/10 and unassigned ranges such as 5f00::/8 passed.
    if isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip.is_reserved):
        return False
    return ip.is_global and not ip.is_multicast


def _request(
    url: str, accept: str, deadline: _Deadline
) -> tuple[urllib3.BaseHTTPResponse, urllib3.HTTPConnectionPool]:
    target = _target(url)
    parts = urlsplit(url)
    default_port = 443 if target.scheme == "https" else 80
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    remaining = deadline.remaining()
    if remaining <= 0:  # passed between two hops
        raise deadline.failure(url, None)
    # A connection made after the deadline shut the others is not watched: what is left of
    # the deadline bounds its connect and each of its reads.
    timeout = urllib3.Timeout(
        total=remaining,
        connect=settings.OCRREVIEW_IIIF_CONNECT_TIMEOUT,
        read=settings.OCRREVIEW_IIIF_READ_TIMEOUT,
    )
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            # Connected to the checked address, the certificate is still checked against the
            # host's name, in the system's trust store (SSL_CERT_FILE is honoured).
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, retries=False
        )
    pool.ConnectionCls = _watched(pool.ConnectionCls, deadline)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        response = pool.urlopen(
            "GET",
            path,
            headers={"Host": host_header, "Accept": accept, "User-Agent": USER_AGENT},
            redirect=False,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        raise deadline.failure(url, exc) from None
    return response, pool


def _watched(connection: type, deadline: _Deadline) -> type:
    """The pool's connection class, handing its socket to the deadline once connected."""

    class Watched(connection):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            deadline.sockets.append(self.sock)

    return Watched


def _failure(url: str, exc: urllib3.exceptions.HTTPError) -> FetchError:
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return FetchUnavailable(f"{url} did not answer in time ({exc})")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return FetchError(f"{url}: the TLS connection failed ({exc})")
    return FetchUnavailable(f"{url} cannot be reached ({exc})")


def _read_capped(
    response: urllib3.BaseHTTPResponse, url: str, max_bytes: int, deadline: _Deadline
) -> bytes:
    declared = response.headers.get("Content-Length", "")
    # isdigit alone takes "²" for a digit, which int() refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url} is {_mb(int(declared))}; the limit is {_mb(max_bytes)}")
    chunks, size = [], 0
    try:
        # read1 returns what one read of the socket brings, so that the cap is looked at
        # as the bytes come (the deadline shuts the connection of a server that drips them).
        while chunk := response.read1(CHUNK, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"{url} is larger than the limit of {_mb(max_bytes)}")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise deadline.failure(url, exc) from None
    if deadline.passed:  # cut short by it: an answer without a length ends where it was cut
        raise deadline.failure(url, None)
    return b"".join(chunks)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
