"""Hostile and broken manifests and servers: each is refused with a reason a person can act
on, and stores nothing. The server is real; the SSRF guard is the one production runs."""

import time

import pytest

from ocrreview.corpus.iiif import IiifError, do_fetch_iiif_images, do_import_iiif
from ocrreview.corpus.models import Document, Page
from ocrreview.corpus.remote import FetchError, check_url, fetch
from tests.iiif.server import endless, manifest_3, redirect, send, slow


def refused(collection, url: str, match: str) -> None:
    with pytest.raises((IiifError, FetchError), match=match):
        do_import_iiif(collection, url)
    assert not Document.objects.exists()


def imported_then_failed(collection, url: str) -> Document:
    document, _ = do_import_iiif(collection, url)
    do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert not Page.objects.exists()
    return document


@pytest.mark.django_db
def test_not_json(iiif_server, letters):
    url = iiif_server.serve("/page.html", "<html><body>Hello</body></html>", "text/html")
    refused(letters, url, "the manifest is not JSON")


@pytest.mark.django_db
def test_json_that_is_no_iiif_manifest(iiif_server, letters):
    refused(
        letters, iiif_server.serve("/other.json", {"hello": "world"}), "not a IIIF Presentation"
    )
    refused(letters, iiif_server.serve("/list.json", [1, 2]), "not a IIIF Presentation")
    collection = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "type": "Collection",
    }
    refused(letters, iiif_server.serve("/c.json", collection), "a IIIF collection, not a manifest")


@pytest.mark.django_db
def test_json_nested_too_deeply(iiif_server, letters):
    url = iiif_server.serve("/deep.json", "[" * 5000 + "]" * 5000, "application/json")
    refused(letters, url, "nested too deeply")


@pytest.mark.django_db
def test_a_nul_character_anywhere_in_the_manifest(iiif_server, letters):
    service = iiif_server.image_service("nul", 100, 100)
    url = manifest_3(iiif_server, "/nul.json", [("page\x001", 100, 100, service)])
    refused(letters, url, "NUL character")


@pytest.mark.django_db
def test_a_number_of_thousands_of_digits_in_the_manifest(iiif_server, letters):
    """Python reads only numbers of at most 4,300 digits from JSON, and raises a plain
    ValueError past that."""
    body = '{"@context": "http://iiif.io/api/presentation/3/context.json", "n": 1%s}' % ("0" * 5000)
    refused(letters, iiif_server.serve("/digits.json", body, "application/json"), "not JSON")


@pytest.mark.django_db
def test_a_canvas_larger_than_any_scan(iiif_server, letters):
    service = iiif_server.image_service("huge", 100, 100)
    url = manifest_3(iiif_server, "/huge.json", [("1", 10**400, 100, service)])
    refused(letters, url, r"has no width and height \(whole numbers up to 1,000,000\)")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "info",
    [
        "[" * 5000 + "]" * 5000,
        '{"width": 1%s, "height": 100}' % ("0" * 5000),
        '{"width": 1%s, "height": 100}' % ("0" * 400),
    ],
    ids=["nested too deeply", "a number of 5,001 digits", "a width larger than any scan"],
)
def test_an_unusable_info_json_falls_back_to_the_manifests_word(iiif_server, letters, info):
    service = iiif_server.image_service("deepinfo", 100, 100)
    iiif_server.serve("/iiif/deepinfo/info.json", info, "application/json")
    url = manifest_3(iiif_server, "/deepinfo.json", [("1", 100, 100, service)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING
    assert document.pages.get().width == 100


@pytest.mark.django_db
def test_a_storage_that_refuses_the_page_fails_the_document_instead_of_leaving_it_fetching(
    s3_storage, iiif_server, letters
):
    from django.core.files.storage import default_storage

    from ocrreview.corpus.actions import do_delete_document
    from ocrreview.corpus.tasks import fetch_iiif_images

    service = iiif_server.image_service("gone", 100, 100)
    url = manifest_3(iiif_server, "/gone.json", [("1", 100, 100, service)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    s3_storage.client().delete_bucket(Bucket=default_storage.bucket_name)
    fetch_iiif_images.apply(args=[document.pk])
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "NoSuchBucket" in document.error and not Page.objects.exists()
    do_delete_document(document, None)
    assert not Document.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "canvas_id, error",
    [
        ("{manifest}/c1", r"canvas 1 \(.*/c1\) has no image"),
        ("http://[unclosed", "canvas 1 has no http"),
        ("{manifest}/" + "c" * 2000, "canvas 1 has an id of 2,.* characters; at most 2,000"),
    ],
)
def test_a_canvas_without_an_image_or_a_url(iiif_server, letters, canvas_id, error):
    manifest = iiif_server.url("/broken.json")
    iiif_server.serve(
        "/broken.json",
        {
            "@context": "http://iiif.io/api/presentation/3/context.json",
            "id": manifest,
            "type": "Manifest",
            "label": {"en": ["x"]},
            "items": [
                {
                    "id": canvas_id.format(manifest=manifest),
                    "type": "Canvas",
                    "width": 10,
                    "height": 10,
                }
            ],
        },
    )
    refused(letters, manifest, error)


@pytest.mark.django_db
def test_more_canvases_than_the_limit(iiif_server, letters, settings):
    service = iiif_server.image_service("many", 100, 100)
    url = manifest_3(iiif_server, "/many.json", [("c", 100, 100, service)] * 1001)
    refused(letters, url, "the manifest has 1001 canvases; the limit is 1000")
    settings.OCRREVIEW_IIIF_MAX_CANVASES = 3
    url = manifest_3(iiif_server, "/four.json", [("c", 100, 100, service)] * 4)
    refused(letters, url, "the manifest has 4 canvases; the limit is 3")


@pytest.mark.django_db
def test_an_image_url_that_answers_html_fails_the_document_and_keeps_no_page(iiif_server, letters):
    good = iiif_server.image_service("good", 100, 100)
    bad = iiif_server.image_service("bad", 100, 100)
    iiif_server.serve("/iiif/bad/full/max/0/default.jpg", "<html>Log in</html>", "text/html")
    url = manifest_3(iiif_server, "/html.json", [("1", 100, 100, good), ("2", 100, 100, bad)])
    document = imported_then_failed(letters, url)
    assert document.error.startswith(f"canvas 2 ({url}/canvas/2): ")
    assert "answered text/html, not an image" in document.error


@pytest.mark.django_db
def test_an_image_url_that_lies_about_its_type(iiif_server, letters):
    bad = iiif_server.image_service("liar", 100, 100)
    iiif_server.serve("/iiif/liar/full/max/0/default.jpg", "<html>Log in</html>", "image/jpeg")
    url = manifest_3(iiif_server, "/liar.json", [("1", 100, 100, bad)])
    assert "not an image" in imported_then_failed(letters, url).error


@pytest.mark.django_db
def test_a_redirect_loop(iiif_server, letters):
    iiif_server.routes["/loop/a"] = redirect("/loop/b")
    iiif_server.routes["/loop/b"] = redirect(iiif_server.url("/loop/a"))
    refused(letters, iiif_server.url("/loop/a"), "redirects more than 5 times")
    assert iiif_server.hits["/loop/a"] + iiif_server.hits["/loop/b"] == 6


@pytest.mark.django_db
def test_redirects_are_followed_up_to_five(iiif_server, letters):
    service = iiif_server.image_service("r", 100, 100)
    target = manifest_3(iiif_server, "/final.json", [("1", 100, 100, service)])
    for n in range(5):
        iiif_server.routes[f"/hop/{n}"] = redirect(f"/hop/{n + 1}" if n < 4 else "/final.json")
    document, _ = do_import_iiif(letters, iiif_server.url("/hop/0"))
    assert document.iiif_canvases[0]["id"] == f"{target}/canvas/1"


@pytest.mark.django_db
def test_a_server_that_does_not_answer_in_time(iiif_server, letters, settings):
    settings.OCRREVIEW_IIIF_READ_TIMEOUT = 0.3
    iiif_server.routes["/slow.json"] = slow(3)
    started = time.monotonic()
    refused(letters, iiif_server.url("/slow.json"), "did not answer in time")
    assert time.monotonic() - started < 2


def drip_body(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")  # no length: the answer ends when cut
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


def drip_headers(handler):
    """Each header byte within the read timeout: the deadline began only with the body."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(100):
        handler.wfile.write(b"X")
        handler.wfile.flush()
        time.sleep(0.2)


@pytest.mark.django_db
@pytest.mark.parametrize("drip", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_server_that_drips_its_answer_meets_the_deadline(iiif_server, letters, settings, drip):
    settings.OCRREVIEW_IIIF_READ_TIMEOUT = 1
    settings.OCRREVIEW_IIIF_FETCH_DEADLINE = 1
    iiif_server.routes["/drip.json"] = drip
    started = time.monotonic()
    refused(letters, iiif_server.url("/drip.json"), "took longer than 1 s to send")
    assert time.monotonic() - started < 3


@pytest.mark.django_db
def test_a_body_without_end_is_cut_at_the_byte_cap(iiif_server, letters):
    iiif_server.routes["/endless.json"] = endless
    refused(letters, iiif_server.url("/endless.json"), "larger than the limit of 20.0 MB")


@pytest.mark.django_db
def test_a_declared_size_over_the_cap_is_refused_before_reading(iiif_server, letters, settings):
    settings.OCRREVIEW_MAX_UPLOAD_MB = 1
    big = iiif_server.image_service("big", 100, 100)
    iiif_server.serve("/iiif/big/full/max/0/default.jpg", b"\xff\xd8\xff" + b"0" * 2_000_000)
    url = manifest_3(iiif_server, "/big.json", [("1", 100, 100, big)])
    assert "is 1.9 MB; the limit is 1.0 MB" in imported_then_failed(letters, url).error


@pytest.mark.django_db
def test_a_loopback_url_is_refused_without_the_setting(iiif_server, letters, settings):
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = []
    url = iiif_server.serve("/m.json", {"hello": "world"})
    refused(letters, url, "refused: 127.0.0.1 is at 127.0.0.1, an address of a private")
    assert iiif_server.hits["/m.json"] == 0  # refused before any connection


@pytest.mark.django_db
def test_a_redirect_from_an_allowed_host_to_another_address_is_refused(iiif_server, letters):
    iiif_server.routes["/to-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    refused(letters, iiif_server.url("/to-metadata"), "169.254.169.254 is at 169.254.169.254")
    # The same server under another name is not the host the setting allows.
    port = iiif_server.server_address[1]
    iiif_server.routes["/to-localhost"] = redirect(f"http://localhost:{port}/m.json")
    refused(letters, iiif_server.url("/to-localhost"), "refused: localhost is at")
    assert iiif_server.hits["/m.json"] == 0


@pytest.mark.django_db
def test_an_image_on_a_private_address_is_refused(iiif_server, letters):
    url = manifest_3(iiif_server, "/private.json", [("1", 100, 100, "http://10.1.2.3/iiif/x")])
    document = imported_then_failed(letters, url)
    assert "10.1.2.3 is at 10.1.2.3, an address of a private" in document.error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[64:ff9b::a00:1]/",
        "http://[64:ff9b:1::808:808]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::a9fe:a9fe]/",
        "http://localhost:8000/",
        "http://[fec0::1]/",
        "http://[5f00::1]/",
    ],
)
def test_local_private_and_reserved_addresses_are_refused(url, settings):
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = []
    with pytest.raises(FetchError, match="refused"):
        check_url(url)


@pytest.mark.django_db
@pytest.mark.parametrize("char", ["\x01", "\x7f", "\x85"])
def test_a_manifest_url_holding_a_control_character_is_refused(letters, char):
    """A fetch percent-encodes it, but the document keeps the URL as its source, which its TEI
    then names: XML cannot carry it."""
    refused(letters, f"https://iiif.example.org/manifest.json?x={char}y", "control character")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/m.json", "gopher://x/"])
def test_only_http_and_https(url):
    with pytest.raises(FetchError, match="is not an http or https URL"):
        check_url(url)


def test_an_allowed_host_name_is_sent_as_the_host_header(iiif_server, settings):
    port = iiif_server.server_address[1]
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = [f"localhost:{port}"]
    iiif_server.routes["/host"] = lambda h: send(h, h.headers["Host"].encode(), "text/plain")
    answer = fetch(f"http://localhost:{port}/host", max_bytes=100, accept="*/*")
    assert answer.body == f"localhost:{port}".encode()


@pytest.mark.parametrize("url", ["http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/"])
def test_an_ipv6_address_that_carries_a_public_ipv4_one_is_allowed(url, settings):
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = []
    check_url(url)


@pytest.mark.django_db
def test_a_redirect_to_what_is_not_a_url(iiif_server, letters):
    iiif_server.routes["/to-nowhere"] = redirect("http://[::1")
    refused(letters, iiif_server.url("/to-nowhere"), r"redirects to 'http://\[::1', not a URL")


@pytest.mark.django_db
def test_a_content_length_of_a_digit_that_is_no_number(iiif_server, letters):
    def superscript_length(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "\u00b2")  # "²": str.isdigit() says it is one
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b'{"hello": "world"}')

    iiif_server.routes["/odd-length.json"] = superscript_length
    refused(letters, iiif_server.url("/odd-length.json"), "not a IIIF Presentation manifest")


def test_an_international_domain_name_is_looked_up_as_dns_knows_it(settings):
    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = []
    # .example never resolves; the message names the host as it was looked up.
    with pytest.raises(FetchError, match="the host xn--bcher-kva.example cannot be resolved"):
        check_url("http://bücher.example/manifest.json")
    # As browsers write it (UTS 46), not as Python's IDNA 2003 codec would (strasse.example).
    with pytest.raises(FetchError, match="the host xn--strae-oqa.example cannot be resolved"):
        check_url("http://Straße.example/manifest.json")
    with pytest.raises(FetchError, match="not a valid domain name"):
        check_url("http://x..example/manifest.json")


def test_an_allowed_host_may_be_written_in_its_own_script(settings):
    from ocrreview.corpus.remote import _allowed

    settings.OCRREVIEW_IIIF_ALLOWED_HOSTS = ["bücher.intranet:8182", "[::1", "x..y"]
    assert _allowed("xn--bcher-kva.intranet", 8182)
    assert not _allowed("xn--bcher-kva.intranet", 80)
