import pytest

from tests.iiif.server import IiifServer


@pytest.fixture
def iiif_server(settings):
    """The test's IIIF server, which the SSRF guard lets through by name and port."""
    server = IiifServer()
    server.thread.start()
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
    yield server
    server.shutdown()
    server.server_close()
