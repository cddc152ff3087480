"""Line crops and page images come through access-checked views, cached."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from tests import factories


def read_png(response) -> Image.Image:
    import io

    return Image.open(io.BytesIO(b"".join(response.streaming_content)))


def test_a_line_image_is_its_box_of_the_page(client, bob, letters, lines):
    client.force_login(bob)
    response = client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "immutable" in response["Cache-Control"]
    assert read_png(response).size == (490, 30)


def test_a_line_with_a_polygon_is_cut_along_it(client, bob, letters, page):
    line = factories.make_line(page, 5, polygon=[[20, 20], [120, 20], [120, 60], [20, 60]])
    client.force_login(bob)
    response = client.get(reverse("review_line_image", args=[letters.pk, line.pk]))
    assert read_png(response).size == (101, 41)


def test_the_page_is_cut_once_for_the_lines_waiting_for_review(
    client, bob, letters, lines, settings
):
    """Not for the auto-accepted ones, which are rarely opened: a first crop of a page in the
    editor cut every line of it."""
    client.force_login(bob)
    url = reverse("review_line_image", args=[letters.pk, lines[1].pk])
    client.get(url)
    _, cached = default_storage.listdir(f"review-cache/pages/{lines[1].page_id}/lines")
    waiting = [line.pk for line in lines if line.status in ("needs_review", "in_review")]
    assert lines[0].status == "auto_accepted" and lines[1].pk in waiting
    assert sorted(int(name.split("-")[0]) for name in cached) == waiting
    lines[1].page.image.storage.delete(lines[1].page.image.name)
    assert client.get(url).status_code == 200
    other = reverse("review_line_image", args=[letters.pk, lines[3].pk])
    assert client.get(other).status_code == 200


def test_a_line_outside_its_page_does_not_spoil_the_others(client, bob, letters, page, lines):
    outside = factories.make_line(page, 7, bbox=[900, 900, 990, 950])
    client.force_login(bob)
    assert (
        client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk])).status_code == 200
    )
    response = client.get(reverse("review_line_image", args=[letters.pk, outside.pk]))
    assert response.status_code == 422
    assert b"outside" in response.content


def test_a_broken_page_image_gives_a_clear_error(client, bob, letters, page, lines):
    page.image.save("broken.png", ContentFile(b"not a png at all"), save=True)
    client.force_login(bob)
    response = client.get(reverse("review_line_image", args=[letters.pk, lines[2].pk]))
    assert response.status_code == 422
    assert b"not an image" in response.content


def test_the_page_image(client, bob, letters, page):
    client.force_login(bob)
    response = client.get(reverse("review_page_image", args=[letters.pk, page.pk]))
    assert response.status_code == 200
    assert read_png(response).size == (600, 400)


def test_a_tiff_page_is_shown_as_jpeg(client, bob, letters, letter):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buffer, format="TIFF")
    page = factories.make_page(letter, 1, width=300, height=200)
    page.image.save("scan.tif", ContentFile(buffer.getvalue()), save=True)
    client.force_login(bob)
    response = client.get(reverse("review_page_image", args=[letters.pk, page.pk]))
    assert read_png(response).format == "JPEG"


def tiff_page(document, order):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buffer, format="TIFF")
    page = factories.make_page(document, order, width=300, height=200)
    page.image.save("scan.tif", ContentFile(buffer.getvalue()), save=True)
    factories.make_line(page)
    return page


def open_page_and_line(client, collection, page):
    assert (
        client.get(reverse("review_page_image", args=[collection.pk, page.pk])).status_code == 200
    )
    line = page.lines.first()
    assert (
        client.get(reverse("review_line_image", args=[collection.pk, line.pk])).status_code == 200
    )


def test_a_deleted_documents_crops_and_renditions_go_with_it(
    client, alice, bob, letters, letter, django_capture_on_commit_callbacks
):
    from ocrreview.corpus.actions import do_delete_document

    pages = [tiff_page(letter, 0), tiff_page(letter, 1)]
    kept = tiff_page(factories.make_document(letters, "Another letter"), 0)
    client.force_login(bob)
    for page in [*pages, kept]:
        open_page_and_line(client, letters, page)
    folders, _ = default_storage.listdir("review-cache/pages")
    assert sorted(folders) == sorted(str(page.pk) for page in [*pages, kept])

    with django_capture_on_commit_callbacks(execute=True):
        do_delete_document(letter, alice)

    for page in pages:
        assert not default_storage.exists(f"review-cache/pages/{page.pk}")
    _, kept_files = default_storage.listdir(f"review-cache/pages/{kept.pk}")
    _, kept_lines = default_storage.listdir(f"review-cache/pages/{kept.pk}/lines")
    assert len(kept_files) == 1 and len(kept_lines) == 1


def test_images_of_other_collections_are_not_found(client, charlie, letters, lines, page):
    client.force_login(charlie)
    assert (
        client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk])).status_code == 404
    )
    assert client.get(reverse("review_page_image", args=[letters.pk, page.pk])).status_code == 404


def test_a_page_gone_from_storage_is_a_clear_error_not_a_500(client, bob, letters, page, lines):
    page.image.storage.delete(page.image.name)
    client.force_login(bob)
    for url in [
        reverse("review_line_image", args=[letters.pk, lines[0].pk]),
        reverse("review_page_image", args=[letters.pk, page.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 422
        assert b"cannot be shown" in response.content


def test_images_are_shown_when_the_cache_cannot_be_written(
    client, bob, letters, letter, lines, caplog
):
    tiff = tiff_page(letter, 1)
    for blocked in (lines[1].page, tiff):
        # A file where the page's cache folder goes: no crop or rendition can be written.
        default_storage.save(f"review-cache/pages/{blocked.pk}", ContentFile(b"in the way"))
    client.force_login(bob)
    crop = client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk]))
    assert (crop.status_code, crop["Content-Type"]) == (200, "image/png")
    assert read_png(crop).size == (490, 30)
    rendition = client.get(reverse("review_page_image", args=[letters.pk, tiff.pk]))
    assert rendition.status_code == 200
    assert read_png(rendition).format == "JPEG"
    assert "Could not keep review-cache/pages/" in caplog.text


def test_on_s3_images_come_from_the_bucket_and_crops_are_cached_there(
    s3_storage, client, bob, letters, page, lines
):
    client.force_login(bob)
    response = client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk]))
    assert read_png(response).size == (490, 30)
    assert read_png(client.get(reverse("review_page_image", args=[letters.pk, page.pk]))).size == (
        600,
        400,
    )
    listed = s3_storage.client().list_objects_v2(Bucket=default_storage.bucket_name)
    names = [item["Key"] for item in listed["Contents"]]
    assert page.image.name in names
    cached = [n for n in names if n.startswith(f"review-cache/pages/{page.pk}/lines/")]
    assert len(cached) == len(lines) - 1  # all but the auto-accepted one


def test_on_s3_a_deleted_documents_crops_go_from_the_bucket(
    s3_storage, client, alice, bob, letters, letter, page, lines, django_capture_on_commit_callbacks
):
    from ocrreview.corpus.actions import do_delete_document

    client.force_login(bob)
    client.get(reverse("review_line_image", args=[letters.pk, lines[1].pk]))
    cache = f"review-cache/pages/{page.pk}/"

    def cached():
        listed = s3_storage.client().list_objects_v2(
            Bucket=default_storage.bucket_name, Prefix=cache
        )
        return listed.get("KeyCount", 0)

    assert cached() == len(lines) - 1  # all but the auto-accepted one
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_document(letter, alice)
    assert cached() == 0


def test_on_s3_a_page_gone_from_the_bucket_is_a_clear_error(
    s3_storage, client, bob, letters, page, lines
):
    page.image.storage.delete(page.image.name)
    client.force_login(bob)
    response = client.get(reverse("review_line_image", args=[letters.pk, lines[0].pk]))
    assert response.status_code == 422
    assert b"cannot be shown" in response.content
