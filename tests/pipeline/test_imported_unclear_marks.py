"""An unclear mark an upload restored on a model's reading is about that text: the reading
that replaces it takes the mark off, in the line's trail. A mark on a person's text, one a
member set, and one on a text the model reads alike stay."""

import time
from datetime import timedelta

import pytest
import redis
from django.urls import reverse

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Line, ModelVersion
from ocrreview.corpus.signals import unclear_imported
from ocrreview.corpus.xmlformats import XmlLine, XmlPage, page_xml
from ocrreview.review import actions
from ocrreview.review.models import Correction
from ocrreview.transcription import services
from ocrreview.transcription.models import Hypothesis
from tests import factories
from tests.ingestion import files
from tests.workers import celery_worker

A = Correction.Action
S = Line.Status


def trail(line: Line) -> list[tuple]:
    return list(
        Correction.objects.filter(line=line)
        .order_by("created_at", "id")
        .values_list("action", "user", "note", "text_before", "text_after", "line_version")
    )


def exported_page() -> bytes:
    """A page as our PAGE export writes it: a person's guess, and two models' readings a
    reviewer marked unclear."""
    boxes = ([20, 20, 580, 90], [20, 120, 580, 190], [20, 220, 580, 290])
    marked = [
        ("Monsieur le Préfet,", S.REVIEWED, "the title is a guess"),
        ("j’ai l’honneur", S.NEEDS_REVIEW, "honneur?"),
        ("de vous écrire", S.NEEDS_REVIEW, ""),
    ]
    lines = [
        XmlLine(number, text, 0.5, box, status=status, unclear=True, unclear_note=note)
        for number, ((text, status, note), box) in enumerate(zip(marked, boxes, strict=True), 1)
    ]
    return page_xml(XmlPage("p1.png", 600, 320, lines, 1))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_s_reading_takes_off_the_mark_an_import_put_on_the_text_it_replaced(
    client, bob, letters, tiny_model_dir, settings
):
    """The mark stayed on the model's reading that replaced the imported text, describing
    a text that was gone: the new reading, once reviewed, was kept out of training as a guess
    no one made."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    settings.OCRREVIEW_MODEL = str(tiny_model_dir)
    settings.OCRREVIEW_MODEL_REVISION = None
    uploads = [
        Upload.from_bytes("p1.xml", exported_page()),
        Upload.from_bytes("p1.png", files.png(600, 320)),
    ]
    results = do_ingest(letters, uploads, user=bob, import_text=True)
    assert [r.error for r in results if r.error] == []
    guess, imported, remarked = Line.objects.filter(collection=letters).order_by("order")
    assert [(line.status, line.unclear) for line in (guess, imported, remarked)] == [
        (S.REVIEWED, True),
        (S.PENDING, True),
        (S.PENDING, True),
    ]
    # A member's own mark, set on the imported text before the model came to it.
    actions.do_mark_unclear(remarked, bob, "the last word")

    env = {
        "OCRREVIEW_MODEL": str(tiny_model_dir),
        "OCRREVIEW_DEVICE": "cpu",
        "OCRREVIEW_MAX_NEW_TOKENS": "8",
        "HF_HUB_OFFLINE": "1",
    }
    with celery_worker("gpu", name="marks", timeout=120, answers_first=False, **env):
        deadline = time.monotonic() + 150
        while Hypothesis.objects.filter(line__in=[imported, remarked]).count() < 2:
            assert time.monotonic() < deadline, "the worker did not read the lines"
            time.sleep(0.5)

    guess, imported, remarked = Line.objects.filter(collection=letters).order_by("order")
    # Read again: the imported mark and its note went with the text they were about.
    assert imported.text != "j’ai l’honneur" and imported.model_version is not None
    assert (imported.unclear, imported.unclear_note) == (False, "")
    assert trail(imported) == [
        (A.IMPORT_UNCLEAR, bob.pk, "honneur?", "j’ai l’honneur", "j’ai l’honneur", 1),
        (A.CLEAR, None, "", "j’ai l’honneur", imported.text, imported.version),
    ]
    # The member's mark is their judgement of the line, whatever text it shows.
    assert remarked.text != "de vous écrire"
    assert (remarked.unclear, remarked.unclear_note) == (True, "the last word")
    assert [record[:3] for record in trail(remarked)] == [
        (A.IMPORT_UNCLEAR, bob.pk, ""),
        (A.UNCLEAR, bob.pk, "the last word"),
    ]
    # A person's guess is never read over.
    assert (guess.text, guess.status, guess.unclear, guess.unclear_note) == (
        "Monsieur le Préfet,",
        S.REVIEWED,
        True,
        "the title is a guess",
    )
    assert [record[:3] for record in trail(guess)] == [
        (A.IMPORT, bob.pk, ""),
        (A.IMPORT_UNCLEAR, bob.pk, "the title is a guess"),
    ]

    client.force_login(bob)
    history = client.get(reverse("review_history", args=[letters.pk, imported.pk]))
    assert "Imported marked unclear" in history.content.decode()
    assert "Removed the unclear mark" in history.content.decode()


def drain() -> int:
    total = 0
    while claimed := services.do_recognize_pending("test-worker"):
        total += claimed
    return total


@pytest.mark.django_db
def test_a_reading_alike_keeps_the_imported_mark_and_another_takes_it_off(tiny_model, letters, bob):
    """Our own export brought back and read by the same weights: the text the mark is about is
    still there, so is the mark."""
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    lines = [factories.make_line(page, order) for order in range(2)]
    services.do_queue_recognition(document.lines.all())
    drain()
    alike, other = (Line.objects.get(pk=line.pk) for line in lines)
    # As an upload leaves them: pending, marked, the mark's import in the trail.
    Line.objects.filter(pk=other.pk).update(text="a text of another model")
    Line.objects.filter(pk__in=[alike.pk, other.pk]).update(
        status=S.PENDING, unclear=True, unclear_note="unsure"
    )
    marked = list(Line.objects.filter(pk__in=[alike.pk, other.pk]).order_by("order"))
    unclear_imported.send(Line, lines=marked, user=bob)

    same_weights = ModelVersion.objects.create(name="again", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), same_weights)
    drain()

    alike_now, other_now = (Line.objects.get(pk=line.pk) for line in (alike, other))
    assert alike_now.model_version == same_weights and alike_now.text == alike.text
    assert (alike_now.unclear, alike_now.unclear_note) == (True, "unsure")
    assert [record[0] for record in trail(alike_now)] == [A.IMPORT_UNCLEAR]
    assert other_now.text != "a text of another model"
    assert (other_now.unclear, other_now.unclear_note) == (False, "")
    assert [record[:2] for record in trail(other_now)] == [
        (A.IMPORT_UNCLEAR, bob.pk),
        (A.CLEAR, None),
    ]


@pytest.mark.django_db
def test_a_mark_a_member_set_again_stays_though_the_import_s_worker_ran_ahead(
    tiny_model, letters, bob, clock
):
    """The import's records are dated by its worker's clock, an hour ahead of the web server
    where bob marks the line again after it: his mark is the last, whatever the dates say."""
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    line = factories.make_line(page, 0)
    services.do_queue_recognition(document.lines.all())
    drain()
    Line.objects.filter(pk=line.pk).update(
        text="a text of another model", status=S.PENDING, unclear=True, unclear_note="import"
    )
    clock.set(clock.real() + timedelta(hours=1))
    unclear_imported.send(Line, lines=[Line.objects.get(pk=line.pk)], user=bob)
    clock.set(None)
    actions.do_mark_unclear(Line.objects.get(pk=line.pk), bob, "bob's")

    another = ModelVersion.objects.create(name="another", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), another)
    drain()

    line = Line.objects.get(pk=line.pk)
    assert line.model_version == another and line.text != "a text of another model"
    assert (line.unclear, line.unclear_note) == (True, "bob's")


@pytest.mark.django_db
def test_a_line_joined_since_the_import_keeps_its_mark(tiny_model, letters, bob):
    """A merge keeps the mark of either line, and the one it came from may be a member's: the
    joined line's trail ends with the merge, and no reading takes the mark off."""
    document = factories.make_document(letters, status=Document.Status.RECOGNIZING)
    page = factories.make_page(document)
    first, second = (factories.make_line(page, order) for order in range(2))
    services.do_queue_recognition(document.lines.all())
    drain()
    Line.objects.filter(pk=first.pk).update(status=S.PENDING, unclear=True, unclear_note="a")
    unclear_imported.send(Line, lines=[Line.objects.get(pk=first.pk)], user=bob)
    actions.do_mark_unclear(second, bob, "b")
    first = Line.objects.get(pk=first.pk)
    merged = actions.do_merge_lines(first, bob, expected_version=first.version)
    joined = merged.text

    another = ModelVersion.objects.create(name="another", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(pk=document.pk), another)
    drain()

    merged = Line.objects.get(pk=merged.pk)
    assert merged.model_version == another and merged.text != joined
    assert (merged.unclear, merged.unclear_note) == (True, "a; b")
    assert [record[0] for record in trail(merged)] == [A.IMPORT_UNCLEAR, A.SEGMENT]
