"""The Django admin, as staff use it: a document, page or line stays where it was made, and
is deleted through the app, which removes its files and waits for the workers."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Document, Line, Page
from tests import factories


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.org", "pw")


@pytest.fixture
def placed(letters):
    document = factories.make_document(letters, "Letter to Mr Hale")
    page = factories.make_page(document, 0)
    line = factories.make_line(page, 0)
    return document, page, line


@pytest.mark.django_db
def test_a_document_cannot_be_moved_to_another_collection_here(client, staff, placed):
    document, _, line = placed
    other = factories.make_collection("Elsewhere")
    client.force_login(staff)
    url = reverse("admin:corpus_document_change", args=[document.pk])
    form = client.get(url).content.decode()
    assert 'name="collection"' not in form
    client.post(url, {"title": "Renamed", "collection": other.pk, "status": document.status})
    document.refresh_from_db()
    assert document.collection_id == line.collection_id != other.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model, field", [("page", "document"), ("line", "page"), ("line", "collection")]
)
def test_a_page_or_line_cannot_be_moved_here(client, staff, placed, model, field):
    document, page, line = placed
    obj = {"page": page, "line": line}[model]
    client.force_login(staff)
    form = client.get(reverse(f"admin:corpus_{model}_change", args=[obj.pk])).content.decode()
    assert f'name="{field}"' not in form


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["document", "page", "line"])
def test_deleting_is_left_to_the_app(client, staff, placed, model):
    document, page, line = placed
    obj = {"document": document, "page": page, "line": line}[model]
    client.force_login(staff)
    response = client.post(reverse(f"admin:corpus_{model}_delete", args=[obj.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Document.objects.exists() and Page.objects.exists() and Line.objects.exists()
