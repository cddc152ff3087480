"""IIIF manifests of both versions become documents whose pages are the canvases, fetched
from a real HTTP server; the fetch resumes where it stopped, and a manifest imported twice
is one document."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from PIL import Image

from ocrreview.corpus import claims
from ocrreview.corpus.iiif import (
    canvas_seconds,
    claim_fetch,
    do_fetch_iiif_images,
    do_import_iiif,
    lost_fetches,
)
from ocrreview.corpus.models import Document
from ocrreview.corpus.remote import FetchUnavailable
from ocrreview.corpus.tasks import IIIF_RETRIES, fetch_iiif_images
from recognition.preprocess import MAX_PIXELS
from tests.iiif.server import manifest_2, manifest_3, send


def fetch_all(document: Document) -> Document:
    do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    return document


@pytest.mark.django_db
def test_a_version_3_manifest_with_info_json_becomes_a_document_of_its_canvases(
    iiif_server, letters, alice
):
    first = iiif_server.image_service("f1", 640, 480)
    second = iiif_server.image_service("f2", 500, 700)
    url = manifest_3(
        iiif_server, "/m3/manifest.json", [("f. 1r", 640, 480, first), ("f. 1v", 500, 700, second)]
    )
    document, fetching = do_import_iiif(
        letters, url, user=alice, segmentation=Document.Segmentation.WHOLE_IMAGE
    )
    assert fetching and document.status == Document.Status.FETCHING
    assert document.title == "Letters of Rebecca Lathrop"
    assert document.iiif_manifest == url
    described = document.iiif_descriptive
    assert described["metadata"][1] == {
        "label": {"en": ["Shelfmark"]},
        "value": {"none": ["SC0033 B1 F14"]},
    }
    assert described["requiredStatement"]["value"] == {"en": ["Stanford Libraries"]}
    assert described["rights"] == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert not document.pages.exists()  # the images are the worker's

    document = fetch_all(document)
    pages = list(document.pages.order_by("index"))
    assert [p.iiif_canvas for p in pages] == [f"{url}/canvas/1", f"{url}/canvas/2"]
    assert [(p.width, p.height) for p in pages] == [(640, 480), (500, 700)]
    with Image.open(pages[1].image.path) as image:
        assert image.size == (500, 700)
    # Image API 3 at its largest size, after its info.json.
    assert iiif_server.hits["/iiif/f1/info.json"] == 1
    assert iiif_server.hits["/iiif/f2/full/max/0/default.jpg"] == 1
    # Handed on as an upload is: one line per image here, queued for recognition.
    assert document.status == Document.Status.RECOGNIZING
    assert document.lines.count() == 2


@pytest.mark.django_db
def test_a_version_2_manifest_with_a_service_and_a_plain_image(iiif_server, letters):
    service = iiif_server.image_service("p1", 300, 200, version=2)
    plain = iiif_server.image("/static/p2.jpg", 320, 240)
    url = manifest_2(
        iiif_server, "/m2/manifest", [("p. 1", 300, 200, service), ("p. 2", 320, 240, plain)]
    )
    document, _ = do_import_iiif(letters, url)
    assert document.title == "Ledger of the Lathrop farm"
    assert document.iiif_descriptive["summary"] == {"en": ["Accounts, 1870"]}
    assert document.iiif_descriptive["metadata"] == [
        {"label": {"none": ["Date"]}, "value": {"none": ["1870"]}}
    ]
    assert document.iiif_descriptive["rights"] == "http://creativecommons.org/licenses/by/4.0/"
    assert [c["label"] for c in document.iiif_canvases] == ["p. 1", "p. 2"]
    document = fetch_all(document)
    assert iiif_server.hits["/iiif/p1/full/full/0/default.jpg"] == 1
    assert iiif_server.hits["/static/p2.jpg"] == 1
    assert [p.iiif_canvas for p in document.pages.order_by("index")] == [
        f"{url}/canvas/1",
        f"{url}/canvas/2",
    ]
    # kraken segments it on a worker next.
    assert document.status == Document.Status.UPLOADED


@pytest.mark.django_db
def test_an_image_larger_than_the_pixel_limit_is_asked_for_smaller(iiif_server, letters):
    side = int(MAX_PIXELS**0.5) + 1000
    service = iiif_server.url("/iiif/huge")
    iiif_server.serve(
        "/iiif/huge/info.json",
        {
            "id": service,
            "type": "ImageService3",
            "profile": "level2",
            "width": side,
            "height": side,
        },
    )
    fit = int(side * (MAX_PIXELS / side**2) ** 0.5)
    iiif_server.image(f"/iiif/huge/full/{fit},/0/default.jpg", 400, 400)
    url = manifest_3(iiif_server, "/huge.json", [("huge", side, side, service)])
    document = fetch_all(do_import_iiif(letters, url)[0])
    assert document.error == ""
    assert iiif_server.hits[f"/iiif/huge/full/{fit},/0/default.jpg"] == 1
    assert iiif_server.hits["/iiif/huge/full/max/0/default.jpg"] == 0
    assert fit * fit <= MAX_PIXELS


@pytest.mark.django_db
@pytest.mark.parametrize(
    "limits, asked",
    [
        ({"maxWidth": 2000}, "2000,"),  # maxHeight is maxWidth then: 2000 x 1000 fits both
        ({"maxWidth": 3000, "maxHeight": 500}, "1000,"),
        ({"maxArea": 2_000_000}, "2000,"),
    ],
)
def test_an_image_is_asked_for_within_the_server_s_own_limits(iiif_server, letters, limits, asked):
    """A version 2 server answers 400 for more than its maxWidth: full/full failed the import."""
    service = iiif_server.url("/iiif/capped")
    iiif_server.serve(
        "/iiif/capped/info.json",
        {
            "@context": "http://iiif.io/api/image/2/context.json",
            "@id": service,
            "profile": ["http://iiif.io/api/image/2/level1.json"],
            "width": 4000,
            "height": 2000,
            **limits,
        },
    )
    iiif_server.routes["/iiif/capped/full/full/0/default.jpg"] = lambda h: send(
        h, b"too large", "text/plain", status=400
    )
    iiif_server.image(f"/iiif/capped/full/{asked}/0/default.jpg", 400, 200)
    url = manifest_3(iiif_server, "/capped.json", [("capped", 4000, 2000, service)])
    document = fetch_all(do_import_iiif(letters, url)[0])
    assert document.error == ""
    assert iiif_server.hits[f"/iiif/capped/full/{asked}/0/default.jpg"] == 1


@pytest.mark.django_db
def test_the_fetch_resumes_after_a_failure_without_fetching_a_page_twice(iiif_server, letters):
    first = iiif_server.image_service("r1", 200, 100)
    second = iiif_server.image_service("r2", 200, 100)
    url = manifest_3(iiif_server, "/r.json", [("1", 200, 100, first), ("2", 200, 100, second)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    good = iiif_server.routes["/iiif/r2/full/max/0/default.jpg"]
    iiif_server.routes["/iiif/r2/full/max/0/default.jpg"] = lambda h: send(
        h, b"busy", "text/plain", status=503
    )
    with pytest.raises(FetchUnavailable, match="503"):
        do_fetch_iiif_images(document.pk, "test")
    document.refresh_from_db()
    assert document.status == Document.Status.FETCHING
    assert list(document.pages.values_list("index", flat=True)) == [0]

    iiif_server.routes["/iiif/r2/full/max/0/default.jpg"] = good
    document = fetch_all(document)
    assert document.pages.count() == 2
    assert iiif_server.hits["/iiif/r1/full/max/0/default.jpg"] == 1
    assert document.status == Document.Status.RECOGNIZING


@pytest.mark.django_db
def test_the_same_manifest_imported_again_is_the_same_document(iiif_server, letters, ledgers):
    service = iiif_server.image_service("s1", 200, 100)
    url = manifest_3(iiif_server, "/same.json", [("1", 200, 100, service)])
    document, fetching = do_import_iiif(letters, url)
    fetch_all(document)
    again, fetching_again = do_import_iiif(letters, f" {url} ")
    assert (again.pk, fetching_again) == (document.pk, False)
    # The scheme is not case sensitive (nor is a host name): the same manifest.
    shouted, _ = do_import_iiif(letters, url.replace("http://", "HTTP://"))
    assert shouted.pk == document.pk
    assert iiif_server.hits["/same.json"] == 1
    assert Document.objects.filter(collection=letters).count() == 1
    assert document.pages.count() == 1
    # Another collection may hold its own copy.
    other, _ = do_import_iiif(ledgers, url)
    assert other.pk != document.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "title"),
    [("\u202eRegister\x07\t1873\u2069", "Register 1873"), ("\u202e\x07 \u2066", "IIIF manifest")],
)
def test_a_manifest_s_label_is_the_title_as_it_shows(iiif_server, letters, label, title):
    service = iiif_server.image_service("t1", 200, 100)
    url = manifest_3(iiif_server, "/label.json", [("1", 200, 100, service)], title=label)
    document, _ = do_import_iiif(letters, url)
    assert Document.objects.get(pk=document.pk).title == title


@pytest.mark.django_db
def test_the_management_command_imports_a_manifest(iiif_server, letters, capsys):
    service = iiif_server.image_service("c1", 200, 100)
    url = manifest_3(iiif_server, "/cmd.json", [("1", 200, 100, service)])
    call_command("import_iiif", "Letters", url, "--segmentation", "whole_image")
    document = Document.objects.get(collection=letters)
    assert f"document {document.pk} (Letters of Rebecca Lathrop)" in capsys.readouterr().out
    assert document.segmentation == Document.Segmentation.WHOLE_IMAGE
    assert document.iiif_manifest == url


@pytest.mark.django_db
def test_the_management_command_finds_the_collection_by_its_name_as_stored(iiif_server, letters):
    service = iiif_server.image_service("c2", 200, 100)
    url = manifest_3(iiif_server, "/cmd2.json", [("1", 200, 100, service)])
    call_command("import_iiif", "Let\u202eters\t", url, "--segmentation", "whole_image")
    assert Document.objects.filter(collection=letters).count() == 1


@pytest.mark.django_db
def test_a_server_that_hiccups_now_and_then_is_not_given_up(iiif_server, letters):
    """Each canvas's image fails once: the retries' budget is a canvas's, not the register's
    (the fifth hiccup anywhere failed it)."""
    count = IIIF_RETRIES + 2
    canvases = [
        (str(n), 200, 100, iiif_server.image_service(f"h{n}", 200, 100)) for n in range(count)
    ]
    url = manifest_3(iiif_server, "/h.json", canvases)
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    for n in range(count):
        path = f"/iiif/h{n}/full/max/0/default.jpg"
        good, failed = iiif_server.routes[path], []

        def once(handler, good=good, failed=failed):
            if failed:
                return good(handler)
            failed.append(True)
            return send(handler, b"busy", "text/plain", status=503)

        iiif_server.routes[path] = once
    fetch_iiif_images.apply(args=[document.pk])  # eagerly, the retries follow at once
    document.refresh_from_db()
    assert document.status != Document.Status.FAILED, document.error
    assert document.pages.count() == count


@pytest.mark.django_db
def test_a_server_failing_for_good_fails_the_document_and_a_new_import_resumes(
    iiif_server, letters
):
    first = iiif_server.image_service("g1", 200, 100)
    second = iiif_server.image_service("g2", 200, 100)
    url = manifest_3(iiif_server, "/g.json", [("1", 200, 100, first), ("2", 200, 100, second)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    path = "/iiif/g2/full/max/0/default.jpg"
    good = iiif_server.routes[path]
    iiif_server.routes[path] = lambda h: send(h, b"down", "text/plain", status=502)
    # Eagerly, the task's retries follow one another at once.
    fetch_iiif_images.apply(args=[document.pk])
    document.refresh_from_db()
    assert iiif_server.hits[path] == 1 + IIIF_RETRIES
    assert document.status == Document.Status.FAILED
    assert document.error.endswith("answered 502 Bad Gateway (import the manifest again to resume)")
    assert document.pages.count() == 1  # kept for the next import

    iiif_server.routes[path] = good
    again, fetching = do_import_iiif(letters, url)
    assert (again.pk, fetching, again.status, again.error) == (
        document.pk,
        True,
        Document.Status.FETCHING,
        "",
    )
    document = fetch_all(again)
    assert document.pages.count() == 2
    assert iiif_server.hits["/iiif/g1/full/max/0/default.jpg"] == 1
    assert document.status == Document.Status.RECOGNIZING


def silent_for(document: Document, seconds: float) -> None:
    Document.objects.filter(pk=document.pk).update(
        work_alive_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.mark.django_db
def test_a_fetch_silent_for_longer_than_a_canvas_may_take_was_lost(iiif_server, letters, settings):
    settings.OCRREVIEW_IIIF_CONNECT_TIMEOUT = 1
    settings.OCRREVIEW_IIIF_READ_TIMEOUT = 2
    settings.OCRREVIEW_IIIF_FETCH_DEADLINE = 3
    # Two fetches of six hops each (DNS, connection, headers) and a body, and a minute to store.
    assert canvas_seconds() == 2 * (6 * (10 + 1 + 2) + 3) + 60
    urls = [
        manifest_3(iiif_server, f"/lost{n}.json", [("1", 200, 100, iiif_server.url("/iiif/x"))])
        for n in range(5)
    ]
    fresh, silent, never_marked, retrying, failed = (do_import_iiif(letters, u)[0] for u in urls)
    assert lost_fetches() == []

    for document in (silent, retrying, failed):
        silent_for(document, canvas_seconds() + 1)
    Document.objects.filter(pk=never_marked.pk).update(work_alive_at=None)
    silent_for(fresh, canvas_seconds() - 5)
    assert claim_fetch(retrying.pk, "retrying")
    claims.postpone(retrying.pk, "retrying", 80)
    Document.objects.filter(pk=failed.pk).update(status=Document.Status.FAILED)
    assert sorted(lost_fetches()) == sorted([silent.pk, never_marked.pk])


@pytest.mark.django_db
def test_one_fetch_at_a_time_and_a_silent_one_is_taken_over(iiif_server, letters):
    services = [iiif_server.image_service(f"t{n}", 200, 100) for n in range(2)]
    url = manifest_3(
        iiif_server, "/t.json", [(f"{n}", 200, 100, s) for n, s in enumerate(services)]
    )
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    assert claim_fetch(document.pk, "first")
    assert claim_fetch(document.pk, "first")  # its retries go on
    # A second message for the document (the sweep's, sent before the first ran) does nothing.
    do_fetch_iiif_images(document.pk, "second")
    assert not document.pages.exists()

    # The first falls silent, and the sweep's fetch takes over.
    silent_for(document, canvas_seconds() + 1)
    assert claim_fetch(document.pk, "sweep's")
    # The first, back from its silence, finds the fetch no longer its own.
    do_fetch_iiif_images(document.pk, "first")
    assert not document.pages.exists()

    do_fetch_iiif_images(document.pk, "sweep's")
    document.refresh_from_db()
    assert (document.worked_by, document.pages.count()) == ("sweep's", 2)
    assert document.status == Document.Status.RECOGNIZING
    assert all(iiif_server.hits[f"/iiif/t{n}/full/max/0/default.jpg"] == 1 for n in range(2))


@pytest.mark.django_db
def test_a_fetch_taken_over_too_often_fails_instead_of_going_round_forever(iiif_server, letters):
    service = iiif_server.image_service("p0", 200, 100)
    url = manifest_3(iiif_server, "/p.json", [("0", 200, 100, service)])
    document, _ = do_import_iiif(letters, url)
    assert claim_fetch(document.pk, "first")  # the import's own message: no takeover
    for n in range(1, claims.MAX_TAKEOVERS + 1):
        # Each fetch dies on the canvas (killed by its memory limit, say), and the sweep's
        # next fetch takes it over.
        silent_for(document, canvas_seconds() + 1)
        assert lost_fetches() == [document.pk]
        assert claim_fetch(document.pk, f"sweep's {n}")
        assert claim_fetch(document.pk, f"sweep's {n}")  # its own retries are no takeover
        document.refresh_from_db()
        assert document.work_takeovers == n

    silent_for(document, canvas_seconds() + 1)
    assert lost_fetches() == []
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "stopped without a word 4 times" in document.error

    # Importing the manifest again resumes it, with a fresh count.
    again, fetching = do_import_iiif(letters, url)
    assert (again.pk, fetching, again.work_takeovers) == (document.pk, True, 0)


def taken_over_while_fetching(document: Document, answer):
    """A route that, while this fetch waits for it, lets the fetch fall silent and the sweep's
    take it over, then answers as `answer` does."""

    def route(handler):
        silent_for(document, canvas_seconds() + 1)
        try:
            assert claim_fetch(document.pk, "sweep's")
        finally:
            connection.close()  # this is the server's thread
        return answer(handler)

    return route


@pytest.mark.django_db(transaction=True)  # the server's thread writes to the database
def test_a_fetch_that_lost_its_claim_stores_nothing_more(iiif_server, letters):
    services = [iiif_server.image_service(f"l{n}", 200, 100) for n in range(2)]
    url = manifest_3(
        iiif_server, "/l.json", [(f"{n}", 200, 100, s) for n, s in enumerate(services)]
    )
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    path = "/iiif/l0/full/max/0/default.jpg"
    iiif_server.routes[path] = taken_over_while_fetching(document, iiif_server.routes[path])
    do_fetch_iiif_images(document.pk, "slow")
    assert not document.pages.exists()
    assert iiif_server.hits["/iiif/l1/full/max/0/default.jpg"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_fetch_that_lost_its_claim_cannot_fail_the_document(iiif_server, letters):
    service = iiif_server.image_service("f0", 200, 100)
    url = manifest_3(iiif_server, "/f.json", [("0", 200, 100, service)])
    document, _ = do_import_iiif(letters, url, segmentation=Document.Segmentation.WHOLE_IMAGE)
    path = "/iiif/f0/full/max/0/default.jpg"
    iiif_server.routes[path] = taken_over_while_fetching(
        document, lambda h: send(h, b"gone", "text/plain", status=404)
    )
    do_fetch_iiif_images(document.pk, "slow")
    document.refresh_from_db()
    assert (document.status, document.worked_by) == (Document.Status.FETCHING, "sweep's")


@pytest.mark.django_db(transaction=True)
def test_an_import_while_the_broker_is_down_stands_for_the_sweep(iiif_server, letters, broker_down):
    service = iiif_server.image_service("down", 200, 100)
    url = manifest_3(iiif_server, "/down.json", [("1", 200, 100, service)])
    document, fetching = do_import_iiif(letters, url)
    assert fetching
    document.refresh_from_db()
    assert document.status == Document.Status.FETCHING and document.work_alive_at is not None
