"""HTTPS as the import speaks it: connected to the address it checked, it still presents the
host's name (SNI) and checks the certificate against that name in the system's trust store."""

import shutil
import ssl
import subprocess

import pytest

from ocrreview.corpus.remote import FetchError, fetch
from tests.iiif.server import IiifServer, send

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl tool")


@pytest.fixture
def tls_server(tmp_path, settings):
    """The IIIF test server over TLS, with a self-signed certificate for `localhost`."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    server = IiifServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda request, address: None  # refused handshakes are the point
    server.thread.start()
    port = server.server_address[1]
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = [f"localhost:{port}", f"127.0.0.1:{port}"]
    server.routes["/host"] = lambda h: send(h, h.headers["Host"].encode(), "text/plain")
    yield server, cert
    server.shutdown()
    server.server_close()


def test_a_certificate_the_system_does_not_trust_is_refused(tls_server):
    server, _ = tls_server
    with pytest.raises(FetchError, match="the TLS connection failed.*CERTIFICATE_VERIFY_FAILED"):
        fetch(f"https://localhost:{server.server_address[1]}/host", max_bytes=100, accept="*/*")


def test_a_trusted_certificate_is_checked_against_the_hosts_name(tls_server, monkeypatch):
    server, cert = tls_server
    port = server.server_address[1]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    answer = fetch(f"https://localhost:{port}/host", max_bytes=100, accept="*/*")
    assert answer.body == f"localhost:{port}".encode()
    # The same server by its address: the certificate does not name it.
    with pytest.raises(FetchError, match="the TLS connection failed.*(mismatch|match)"):
        fetch(f"https://127.0.0.1:{port}/host", max_bytes=100, accept="*/*")
