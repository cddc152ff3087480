"""OCRREVIEW_IIIF_FETCH_DEADLINE bounds a whole fetch, its redirects included: the manifest is
fetched within the web request that imports it, which a chain of slow redirects with a
deadline each held for (MAX_REDIRECTS + 1) deadlines. The server is real (tests/iiif/server.py)."""

import re
import time

import pytest

from ocrreview.corpus.iiif import do_import_iiif
from ocrreview.corpus.models import Document
from ocrreview.corpus.remote import MAX_REDIRECTS, FetchUnavailable
from tests.iiif.server import manifest_3


def slow_redirect(location: str, seconds: float):
    """A redirect that comes after `seconds`: each hop well within a deadline of its own."""

    def route(handler) -> None:
        time.sleep(seconds)
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.mark.django_db
def test_a_chain_of_slow_redirects_meets_one_deadline(iiif_server, letters, settings):
    settings.OCRREVIEW_IIIF_READ_TIMEOUT = 10
    settings.OCRREVIEW_IIIF_FETCH_DEADLINE = 1
    service = iiif_server.image_service("r", 100, 100)
    manifest_3(iiif_server, "/final.json", [("1", 100, 100, service)])
    for n in range(MAX_REDIRECTS):
        last = n == MAX_REDIRECTS - 1
        iiif_server.routes[f"/hop/{n}"] = slow_redirect(
            "/final.json" if last else f"/hop/{n + 1}", 0.6
        )
    started = time.monotonic()
    with pytest.raises(FetchUnavailable) as refused:
        do_import_iiif(letters, iiif_server.url("/hop/0"))
    assert time.monotonic() - started < 2.5  # the chain takes 3 s
    assert re.fullmatch(
        rf"{re.escape(iiif_server.url('/hop/0'))} \(redirected to "
        rf"{re.escape(iiif_server.url('/hop/'))}\d\) took longer than 1 s to send",
        str(refused.value),
    )
    assert iiif_server.hits["/final.json"] == 0
    assert not Document.objects.exists()
