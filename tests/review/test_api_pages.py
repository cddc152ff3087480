"""A page over the API: its lines in reading order and its image, for members only."""

from pathlib import Path

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Page
from tests import factories
from tests.factories import token_headers as auth


@pytest.fixture
def page(letters, model_version):
    page = factories.make_page(factories.make_document(letters))
    for order, text in [(1, "second"), (0, "first")]:
        factories.make_read_line(page, order, [(text, 0.9)], model_version)
    return page


@pytest.mark.django_db
def test_a_member_reads_the_page_lines_in_order_and_its_image(client, bob, page):
    headers = auth(bob)
    body = client.get(reverse("api_page", args=[page.pk]), headers=headers).json()
    assert [line["text"] for line in body["lines"]] == ["first", "second"]
    assert (body["width"], body["height"]) == (page.width, page.height)
    image = client.get(body["image_url"], headers=headers)
    assert image.status_code == 200 and image["Content-Type"].startswith("image/")
    assert b"".join(image.streaming_content) == page.image.read()


@pytest.mark.django_db
def test_a_page_of_a_collection_not_yours_is_a_404(client, charlie, page):
    headers = auth(charlie)
    assert client.get(reverse("api_page", args=[page.pk]), headers=headers).status_code == 404
    response = client.get(reverse("api_page_image", args=[page.pk]), headers=headers)
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_page_whose_image_is_damaged_is_a_422_saying_so(client, bob, page):
    Page.objects.filter(pk=page.pk).update(image="pages/broken.tif")
    broken = Path(page.image.storage.path("pages/broken.tif"))
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"II*\x00 not a tiff")
    response = client.get(reverse("api_page_image", args=[page.pk]), headers=auth(bob))
    assert response.status_code == 422
    assert response.json()["error"].startswith("The page image cannot be shown")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "accept, code",
    [
        ("image/jpeg", 200),
        ("image/avif,image/webp,image/apng,image/*;q=0.8", 200),  # a browser's <img>
        ("application/json", 200),
        ("text/csv", 406),
    ],
)
def test_the_image_answers_an_accept_header_an_image_satisfies(client, bob, page, accept, code):
    headers = {**auth(bob), "Accept": accept}
    response = client.get(reverse("api_page_image", args=[page.pk]), headers=headers)
    assert response.status_code == code
    if code == 200:
        assert response["Content-Type"].startswith("image/")


@pytest.mark.django_db
def test_a_damaged_image_asked_for_as_an_image_is_a_json_422(client, bob, page):
    Page.objects.filter(pk=page.pk).update(image="pages/gone.png")
    headers = {**auth(bob), "Accept": "image/png"}
    response = client.get(reverse("api_page_image", args=[page.pk]), headers=headers)
    assert response.status_code == 422 and response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("The page image cannot be shown")
