"""The Django admin, as staff use it: a document, page or line stays where it was made, and
is deleted through the app, which removes its files and waits for the workers; lines are
changed only through the app; a page opened before the app changed a row does not undo it."""

import lxml.html
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ocrreview.corpus.actions import do_set_collection_model
from ocrreview.corpus.models import Document, Line, ModelVersion, Page
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


def opened(client, url: str) -> dict[str, str]:
    """What the browser would send back from the change page as it was when opened."""
    form = lxml.html.fromstring(client.get(url).content).forms[-1]
    return dict(form.form_values())


@pytest.mark.django_db
def test_a_collection_page_opened_before_a_promotion_saves_without_undoing_it(
    client, staff, letters
):
    client.force_login(staff)
    url = reverse("admin:corpus_collection_change", args=[letters.pk])
    shown = opened(client, url)
    promoted = factories.make_model_version("letters-run1")
    do_set_collection_model(letters, promoted, actor=None)  # a training run's gate, meanwhile
    response = client.post(url, {**shown, "description": "Letters of the Hale family"})
    assert response.status_code == 302
    letters.refresh_from_db()
    assert letters.description == "Letters of the Hale family"
    assert letters.model_version == promoted
    assert ModelVersion.objects.get(pk=promoted.pk).status == ModelVersion.Status.ACTIVE


@pytest.mark.django_db
def test_a_document_page_opened_before_a_worker_read_it_keeps_its_new_status(client, staff, placed):
    document, _, _ = placed
    client.force_login(staff)
    url = reverse("admin:corpus_document_change", args=[document.pk])
    shown = opened(client, url)
    Document.objects.filter(pk=document.pk).update(status=Document.Status.READY)
    client.post(url, {**shown, "title": "Letter to Mrs Hale"})
    document.refresh_from_db()
    assert (document.title, document.status) == ("Letter to Mrs Hale", Document.Status.READY)


@pytest.mark.django_db
def test_an_uploaded_document_saved_unchanged_writes_nothing(client, staff, placed):
    """Its file's name, sent back, always differed from the file: every save wrote it."""
    from django.contrib.admin.models import LogEntry
    from django.core.files.base import ContentFile

    document, _, _ = placed
    document.source_file.save("letter.pdf", ContentFile(b"%PDF-1.4"))
    client.force_login(staff)
    url = reverse("admin:corpus_document_change", args=[document.pk])
    assert client.post(url, opened(client, url)).status_code == 302
    assert LogEntry.objects.get().get_change_message() == "No fields changed."


@pytest.mark.django_db
def test_an_export_nobody_asked_for_is_saved_like_any_other(client, staff, letters):
    """The demo's exports have no creator, which the form required."""
    from ocrreview.training.models import DatasetExport

    export = DatasetExport.objects.create(collection=letters, created_by=None)
    client.force_login(staff)
    url = reverse("admin:training_datasetexport_change", args=[export.pk])
    assert client.post(url, {**opened(client, url), "error": "looked at"}).status_code == 302
    assert DatasetExport.objects.get(pk=export.pk).error == "looked at"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["page", "line"])
def test_pages_and_lines_are_shown_not_changed(client, staff, placed, model):
    """A line's text saved here would leave no correction in its history."""
    _, page, line = placed
    obj = {"page": page, "line": line}[model]
    client.force_login(staff)
    url = reverse(f"admin:corpus_{model}_change", args=[obj.pk])
    assert client.get(url).status_code == 200
    assert 'name="text"' not in client.get(url).content.decode()
    assert client.post(url, {"text": "typed in the admin", "width": 1}).status_code == 403
    assert Line.objects.get(pk=line.pk).text == line.text
    assert Page.objects.get(pk=page.pk).width == page.width


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [
        "corpus_document",
        "corpus_line",
        "review_correction",
        "transcription_hypothesis",
        "transcription_recognitionrequest",
    ],
)
def test_a_list_takes_as_many_queries_for_many_rows_as_for_one(
    client, staff, letters, model_version, model
):
    from ocrreview.review.actions import do_save_line
    from ocrreview.transcription.services import do_queue_recognition

    def add_document(n: int) -> None:
        page = factories.make_page(factories.make_document(letters, f"Letter {n}"))
        line = factories.make_read_line(page, 0, [("Dear Sir", 0.5)], model_version)
        do_save_line(line, staff, "Dear Madam", expected_version=line.version)
        do_queue_recognition(Line.objects.filter(pk=line.pk), model_version=model_version)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(f"admin:{model}_changelist")).status_code == 200
        return len(captured)

    client.force_login(staff)
    add_document(0)
    few = queries()
    for n in range(1, 5):
        add_document(n)
    assert queries() == few


@pytest.mark.django_db
def test_a_large_table_s_list_is_not_counted_row_by_row(client, staff, letters, monkeypatch):
    """COUNT(*) of millions of lines on every page of the list; the database's estimate
    serves, and a filtered list is still counted."""
    from ocrreview.admin_rules import EstimatedCountPaginator

    page = factories.make_page(factories.make_document(letters))
    for order in range(3):
        factories.make_line(page, order)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_line")
    monkeypatch.setattr(EstimatedCountPaginator, "counted_below", 1)
    client.force_login(staff)
    url = reverse("admin:corpus_line_changelist")
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    assert not [q["sql"] for q in captured if "COUNT(" in q["sql"].upper()]
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, {"status__exact": "pending"}).status_code == 200
    assert [q["sql"] for q in captured if "COUNT(" in q["sql"].upper()]


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["evaluationsplit", "evaluationline"])
def test_a_frozen_evaluation_split_is_neither_deleted_nor_added_to_here(
    client, staff, letters, bob, model
):
    """A split deleted would let the next export train on the lines earlier models were
    measured on, and freeze a new split that measures them on lines they trained on."""
    from ocrreview.training.models import EvaluationLine, EvaluationSplit
    from ocrreview.training.splits import freeze_evaluation_split

    for number in range(2):
        page = factories.make_page(factories.make_document(letters, f"Letter {number}"), 0)
        factories.make_line(page, 0, text="ab", status=Line.Status.REVIEWED)
    split = freeze_evaluation_split(letters, fraction=0.5)
    row = {"evaluationsplit": split, "evaluationline": split.members.get()}[model]
    client.force_login(staff)
    delete = reverse(f"admin:training_{model}_delete", args=[row.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse(f"admin:training_{model}_add")).status_code == 403
    changelist = client.get(reverse(f"admin:training_{model}_changelist"))
    assert changelist.status_code == 200
    assert 'value="delete_selected"' not in changelist.content.decode()
    assert EvaluationSplit.objects.exists() and EvaluationLine.objects.count() == 1


def test_the_favicon_is_served_where_browsers_look_for_it(client):
    """The admin's pages name no icon, so browsers ask /favicon.ico, which was a 404 logged
    as "Not Found: /favicon.ico" in make run's output: it is the site's own icon."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    body = b"".join(response.streaming_content)
    assert body == (settings.BASE_DIR / "static" / "favicon.svg").read_bytes()
    assert "max-age=86400" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405
