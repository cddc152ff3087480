"""Progress pages, re-recognition and the queue dashboard, with the personas."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Document
from ocrreview.transcription.models import RecognitionRequest
from tests import factories


@pytest.fixture
def document(letters):
    document = factories.make_document(letters, title="Letter 1", status="recognizing")
    page = factories.make_page(document)
    for order in range(4):
        factories.make_line(page, order)
    return document


@pytest.mark.django_db
def test_members_see_lines_done_and_the_page_polls_until_finished(
    client, bob, document, tiny_model
):
    from ocrreview.transcription import services

    services.do_queue_recognition(document.lines.all())
    client.force_login(bob)
    url = reverse("recognition_progress", args=[document.collection.pk])
    page = client.get(url).content.decode()
    assert "Letter 1" in page and "0 / 4" in page and 'hx-trigger="every 2s"' in page
    assert "Recognise again" not in page  # bob is no admin
    while services.do_recognize_pending("w"):
        pass
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "4 / 4" in fragment and "Ready" in fragment
    assert "hx-trigger" not in fragment and "<html" not in fragment


@pytest.mark.django_db
def test_strangers_get_404(client, charlie, document):
    client.force_login(charlie)
    response = client.get(reverse("recognition_progress", args=[document.collection.pk]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_an_admin_reruns_one_document_with_another_model(client, alice, document, letters):
    other_document = factories.make_document(letters, title="Other")
    factories.make_line(factories.make_page(other_document))
    version = factories.make_model_version("candidate")
    client.force_login(alice)
    page = client.get(reverse("recognition_progress", args=[letters.pk])).content.decode()
    assert "Recognise again" in page
    response = client.post(
        reverse("rerecognize", args=[letters.pk]),
        {"model_version": version.pk, "document": document.pk},
        follow=True,
    )
    assert "4 lines queued for recognition with candidate" in response.content.decode()
    assert set(RecognitionRequest.objects.values_list("line__document", "model_version")) == {
        (document.pk, version.pk)
    }
    document.refresh_from_db()
    assert document.status == Document.Status.RECOGNIZING


@pytest.mark.django_db
def test_rerunning_needs_an_admin_and_valid_data(client, bob, alice, document, letters):
    version = factories.make_model_version("candidate")
    client.force_login(bob)
    url = reverse("rerecognize", args=[letters.pk])
    assert client.post(url, {"model_version": version.pk}).status_code == 403
    client.force_login(alice)
    response = client.post(url, {"model_version": "nonsense"}, follow=True)
    assert "Choose a model version" in response.content.decode()
    assert not RecognitionRequest.objects.exists()


@pytest.mark.django_db
def test_staff_see_queues_and_workers(client, staff, alice):
    url = reverse("recognition_queues")
    # The site's own login page, not the Django admin's; no login page at all for a member.
    response = client.get(url)
    assert (response.status_code, response["Location"]) == (302, f"{reverse('login')}?next={url}")
    client.force_login(alice)
    assert client.get(url).status_code == 403
    client.force_login(staff)
    page = client.get(reverse("recognition_queues")).content.decode()
    assert "Workers" in page
    for queue in ("default", "segment", "gpu", "training", "mail"):
        assert f"<td>{queue}</td>" in page
