"""Find and replace across a collection from the search results: a preview that the replace
does exactly, each line an ordinary edit of the person's (undone with their saves), lines held,
drafted, final or changed since the preview skipped and listed; one event; who may; bad input;
accents, long s and combining marks; and a save racing a batch."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.audit import sentence
from ocrreview.corpus.models import CollectionEvent, Document, Line, ModelVersion
from ocrreview.review import actions, find_replace
from ocrreview.review.models import Correction, Draft
from ocrreview.transcription import services
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

S = Line.Status
QUERY = "Stanfora or Stancord"


@pytest.fixture
def stanford(letters):
    """Lines misreading Stanford, a line already right, and one without it."""
    page = factories.make_page(factories.make_document(letters, title="Stanford papers"))
    texts = [
        "Mr Stanfora came",
        "the Stancord's house",
        "Dear Stanford",
        "nothing here",
        "stanfora and Stanfora again",
    ]
    return [
        factories.make_line(page, i, text=text, status=S.NEEDS_REVIEW, confidence=0.5)
        for i, text in enumerate(texts)
    ]


def api(pk: int) -> str:
    return reverse("api_replace", args=[pk])


def body(**extra) -> dict:
    return {"q": QUERY, "replacement": "Stanford", "all": True, **extra}


def texts(lines) -> list[str]:
    return [Line.objects.get(pk=line.pk).text for line in lines]


@pytest.mark.django_db
def test_the_preview_is_what_the_replace_does(client, alice, letters, stanford):
    preview = factories.post_json(client, api(letters.pk), alice, body(preview=True))
    assert preview.status_code == 200, preview.content
    planned = preview.json()["changed"]
    assert [(c["line"], c["text_after"]) for c in planned] == [
        (stanford[0].pk, "Mr Stanford came"),
        (stanford[1].pk, "the Stanford's house"),
        (stanford[4].pk, "Stanford and Stanford again"),
    ]
    assert texts(stanford) == [line.text for line in stanford]  # nothing changed yet
    ids = [c["line"] for c in planned]
    versions = [c["version"] for c in planned]
    done = factories.post_json(
        client, api(letters.pk), alice, body(all=False, line_ids=ids, versions=versions)
    )
    assert done.status_code == 200, done.content
    answer = done.json()
    assert [(c["line"], c["text_after"]) for c in answer["changed"]] == [
        (c["line"], c["text_after"]) for c in planned
    ]
    assert answer["skipped"] == [] and answer["unchanged"] == []
    assert [c["version"] for c in answer["changed"]] == [v + 1 for v in versions]
    assert texts(stanford) == [
        "Mr Stanford came",
        "the Stanford's house",
        "Dear Stanford",
        "nothing here",
        "Stanford and Stanford again",
    ]
    edits = Correction.objects.filter(user=alice).order_by("line_id")
    assert [(c.line_id, c.action, c.text_before) for c in edits] == [
        (stanford[0].pk, "edit", "Mr Stanfora came"),
        (stanford[1].pk, "edit", "the Stancord's house"),
        (stanford[4].pk, "edit", "stanfora and Stanfora again"),
    ]
    # A fix of words, not a review of the line: it stays in the queue.
    assert {Line.objects.get(pk=pk).status for pk in ids} == {S.NEEDS_REVIEW}


@pytest.mark.django_db
def test_lines_held_drafted_final_or_changed_since_the_preview_are_skipped_and_listed(
    client, alice, bob, letters, stanford
):
    preview = factories.post_json(client, api(letters.pk), alice, body(preview=True)).json()
    ids = [c["line"] for c in preview["changed"]]
    versions = [c["version"] for c in preview["changed"]]
    # Changed since the preview, by bob, still holding the word.
    actions.do_save_line(stanford[0], bob, "Mr Stanfora came in", expected_version=1)
    # Held by bob now.
    Line.objects.filter(pk=stanford[1].pk).update(
        status=S.IN_REVIEW, claimed_by=bob, claimed_until=timezone.now() + timedelta(minutes=5)
    )
    # bob's unsaved text.
    actions.do_save_draft(stanford[4], bob, "stanfora and Stanford again", base_version=1)
    answer = factories.post_json(
        client, api(letters.pk), alice, body(all=False, line_ids=ids, versions=versions)
    ).json()
    assert answer["changed"] == []
    assert [(s["line"], s["reason"]) for s in answer["skipped"]] == [
        (stanford[0].pk, "changed"),
        (stanford[1].pk, "claimed"),
        (stanford[4].pk, "draft"),
    ]
    assert texts(stanford) == [
        "Mr Stanfora came in",
        "the Stancord's house",
        "Dear Stanford",
        "nothing here",
        "stanfora and Stanfora again",
    ]
    assert not Correction.objects.filter(user=alice).exists()
    assert not CollectionEvent.objects.filter(event_type="text_replaced").exists()
    # A final document's lines are left as they are.
    Document.objects.filter(pk=stanford[0].document_id).update(
        review_state=Document.ReviewState.FINAL
    )
    final = factories.post_json(client, api(letters.pk), alice, body(preview=True)).json()
    assert {s["reason"] for s in final["skipped"]} == {"final"} and final["changed"] == []


@pytest.mark.django_db
def test_undoing_the_persons_saves_undoes_the_replace(client, alice, staff, letters, stanford):
    since = timezone.now()
    factories.post_json(client, api(letters.pk), alice, body())
    result = actions.do_revert_user_saves(letters, alice, since, staff)
    assert sorted(result.reverted) == [stanford[0].pk, stanford[1].pk, stanford[4].pk]
    assert texts(stanford) == [line.text for line in stanford]


@pytest.mark.django_db
def test_a_replace_leaves_the_persons_own_draft_and_by_fingerprint_lists_what_it_left(
    client, alice, bob, letters, stanford
):
    """Alice is typing in line 1 in another tab: the replace's save would delete her draft.
    Applied by the preview's fingerprint, the replace answers the lines it left too."""
    actions.do_save_draft(stanford[1], alice, "the Stancord's house, and", base_version=1)
    actions.do_save_draft(stanford[4], bob, "stanfora and Stanford again", base_version=1)
    preview = factories.post_json(client, api(letters.pk), alice, body(preview=True)).json()
    left = [(stanford[1].pk, "own_draft"), (stanford[4].pk, "draft")]
    assert [(s["line"], s["reason"]) for s in preview["skipped"]] == left
    answer = factories.post_json(
        client, api(letters.pk), alice, body(fingerprint=preview["fingerprint"])
    ).json()
    assert [c["line"] for c in answer["changed"]] == [stanford[0].pk]
    assert [(s["line"], s["reason"]) for s in answer["skipped"]] == left
    assert Draft.objects.get(line=stanford[1], user=alice).text == "the Stancord's house, and"
    assert texts(stanford)[1] == "the Stancord's house"
    assert CollectionEvent.objects.get(event_type="text_replaced").extra_data["skipped"] == 2


@pytest.mark.django_db
def test_a_replace_is_one_event_with_what_it_did(client, alice, letters, stanford):
    Line.objects.filter(pk=stanford[1].pk).update(
        status=S.IN_REVIEW,
        claimed_by=factories.make_user("erin"),
        claimed_until=timezone.now() + timedelta(minutes=5),
    )
    document = Document.objects.get(pk=stanford[0].document_id)
    factories.post_json(client, api(letters.pk), alice, body(document=document.pk))
    event = CollectionEvent.objects.get(event_type="text_replaced")
    assert event.acting_user == alice and event.document_id == document.pk
    assert event.extra_data == {
        "title": "Stanford papers",
        "query": QUERY,
        "replacement": "Stanford",
        "lines": 2,
        "skipped": 1,
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert sentence(event) == (
        "alice replaced “Stanfora or Stancord” with “Stanford” in 2 lines of 'Stanford papers' "
        "(1 skipped)"
    )


@pytest.mark.django_db
def test_who_may_replace(client, alice, bob, charlie, dave, staff, letters, stanford, monkeypatch):
    for outsider in (charlie, dave):
        response = factories.post_json(client, api(letters.pk), outsider, body(preview=True))
        assert response.status_code == 404
    assert (
        factories.post_json(client, api(letters.pk), staff, body(preview=True)).status_code == 200
    )
    # A reviewer replaces in a few lines; more at once is for the collection's admins.
    monkeypatch.setattr(find_replace, "REVIEWER_MAX_LINES", 2)
    refused = factories.post_json(client, api(letters.pk), bob, body())
    assert refused.status_code == 400 and "at most 2 lines" in refused.json()["error"]
    assert texts(stanford)[0] == "Mr Stanfora came"
    few = factories.post_json(
        client, api(letters.pk), bob, body(all=False, line_ids=[stanford[0].pk])
    )
    assert few.status_code == 200 and texts(stanford)[0] == "Mr Stanford came"
    monkeypatch.setattr(find_replace, "MAX_LINES", 1)
    over = factories.post_json(client, api(letters.pk), alice, body())
    assert over.status_code == 400 and "at most 1 lines" in over.json()["error"]


@pytest.mark.django_db
def test_bad_requests_are_told_why(client, alice, letters, ledgers, stanford):
    other = factories.make_line(
        factories.make_page(factories.make_document(ledgers)), 0, text="Stanfora"
    )
    cases = [
        (body(q=""), "q"),
        (body(q="-Stanfora"), "q"),
        (body(q='""'), "q"),
        (body(replacement="a\nb"), "replacement"),
        ({"q": QUERY, "all": True}, "replacement"),
        (body(all=False), "__all__"),
        (body(line_ids=[stanford[0].pk]), "__all__"),
        (body(hits=[f"{stanford[0].pk}:1:3"]), "__all__"),
        (body(all=False, line_ids=[stanford[0].pk, 999_999_999]), "line_ids"),
        (body(all=False, line_ids=[other.pk]), "line_ids"),
        (body(all=False, line_ids=["x"]), "line_ids"),
        (body(all=False, line_ids=[stanford[0].pk], versions=[1, 2]), "versions"),
        (body(all=False, line_ids=list(range(1, 2_002))), "line_ids"),
        (body(all=False, hits=["x"]), "hits"),
        (body(all=False, hits=[f"{stanford[0].pk}:1"]), "hits"),
        (body(all=False, hits=[f"{stanford[0].pk}:1:-3"]), "hits"),
        (body(all=False, hits=[f"{stanford[0].pk}:1:99999"]), "hits"),
        (body(all=False, hits=[f"{other.pk}:1:0"]), "hits"),
        (body(all=False, hits=[f"{stanford[0].pk}:1:3", f"{stanford[0].pk}:2:3"]), "hits"),
        (body(all=False, hits=[f"{stanford[0].pk}:1:3"] * 5_001), "hits"),
        (body(all=False, hits=[3]), "hits"),
        (
            body(unticked=[f"{stanford[1].pk}:1:4"], all=False, line_ids=[stanford[0].pk]),
            "unticked",
        ),
        (body(unknown=1), "unknown"),
    ]
    for request, field in cases:
        response = factories.post_json(client, api(letters.pk), alice, request)
        assert response.status_code == 400, (request, response.content)
        assert field in response.json()["fields"], (request, response.json())
    malformed = client.post(
        api(letters.pk),
        "{not json",
        content_type="application/json",
        headers=factories.token_headers(alice),
    )
    assert malformed.status_code == 400
    assert texts(stanford)[0] == "Mr Stanfora came" and texts([other]) == ["Stanfora"]


@pytest.mark.django_db
def test_the_replacement_is_cleaned_as_a_saved_text(client, alice, letters, stanford):
    response = factories.post_json(
        client,
        api(letters.pk),
        alice,
        body(all=False, line_ids=[stanford[0].pk], replacement="\tStan\u200bford "),
    )
    assert response.json()["changed"][0]["text_after"] == "Mr Stanford came"


@pytest.mark.django_db
def test_words_found_folded_are_replaced_as_the_line_spells_them(client, alice, letters):
    page = factories.make_page(factories.make_document(letters, title="Lettres"))
    lines = [
        factories.make_line(page, 0, text="A Meſſieurs les Maire"),
        factories.make_line(page, 1, text="il est décédé hier"),
        factories.make_line(page, 2, text="q\u0303ue dixit"),
    ]
    for q, replacement, line, expected in [
        ("Messieurs", "Messieurs", lines[0], "A Messieurs les Maire"),
        # Typed decomposed: stored NFC, as every text.
        ("decede", "de\u0301ce\u0301de\u0301e", lines[1], "il est décédée hier"),
        # A combining mark with no precomposed letter stays on its letter.
        ("que", "q\u0303uae", lines[2], "q\u0303uae dixit"),
    ]:
        response = factories.post_json(
            client, api(letters.pk), alice, {"q": q, "replacement": replacement, "all": True}
        )
        assert response.status_code == 200, response.content
        assert [c["text_after"] for c in response.json()["changed"]] == [expected]
        assert texts([line]) == [expected]


@pytest.mark.django_db
def test_the_search_words_are_looked_up_once_per_replace_not_per_batch(alice, letters, monkeypatch):
    """The folded and similar word lookups are the search's, the same for every batch: a
    batch adds only its own lines, headlines and drafts."""
    monkeypatch.setattr(find_replace, "BATCH", 2)
    page = factories.make_page(factories.make_document(letters, title="Stanford papers"))
    ids = [
        factories.make_line(page, i, text=f"Mr Stanfora came {i}", status=S.NEEDS_REVIEW).pk
        for i in range(6)
    ]

    def preview_queries(line_ids):
        with CaptureQueriesContext(connection) as queries:
            result = find_replace.replace_preview(
                letters, alice, QUERY, find_replace.search.Filters(), line_ids, "Stanford"
            )
        assert [c.line.pk for c in result.changed] == line_ids
        assert {c.text_after.rsplit(" ", 1)[0] for c in result.changed} == {"Mr Stanford came"}
        return len(queries)

    two_batches, three_batches = preview_queries(ids[:3]), preview_queries(ids)
    assert three_batches - two_batches <= 3


@pytest.mark.django_db
def test_the_search_page_previews_and_replaces(client, alice, bob, charlie, letters, stanford):
    client.force_login(alice)
    search = reverse("collection_search", args=[letters.pk])
    html = client.get(search, {"q": QUERY}).content.decode()
    # "Dear Stanford" is a similar word's hit of the search, not the replace's.
    assert 'id="replace-form"' in html and "all hits, on every page (3 lines)" in html
    assert f'name="line_ids" value="{stanford[0].pk}" form="replace-form"' in html
    assert 'aria-label="Replace in line 1 of Stanford papers p. 1"' in html
    url = reverse("collection_replace", args=[letters.pk])
    chosen = {"q": QUERY, "replacement": "Stanford", "line_ids": [stanford[0].pk, stanford[1].pk]}
    preview = client.post(url, chosen)
    page = preview.content.decode()
    assert preview.status_code == 200 and "2 hits in 2 lines" in page
    assert "<del>" in page and "Stanfora" in page and "<ins>" in page
    first, second = f"{stanford[0].pk}:1:3", f"{stanford[1].pk}:1:4"
    assert f'name="hits" value="{first}" checked' in page
    assert f'name="hits" value="{second}" checked' in page
    assert texts(stanford)[:2] == ["Mr Stanfora came", "the Stancord's house"]
    confirm = {"q": QUERY, "replacement": "Stanford", "hits": [first, second], "apply": "1"}
    done = client.post(url, confirm)
    assert "2 lines changed" in done.content.decode()
    assert texts(stanford)[:2] == ["Mr Stanford came", "the Stanford's house"]
    # Sent again (a reload): the lines changed since, so nothing is done twice.
    again = client.post(url, confirm).content.decode()
    assert "0 lines changed" in again and "the line changed since the preview" in again
    client.force_login(charlie)
    assert client.post(url, chosen).status_code == 404
    client.force_login(bob)
    assert "all hits, on every page" in client.get(search, {"q": "Stanfora"}).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_save_committed_while_the_replace_waits_is_skipped_not_overwritten(
    alice, bob, letters, stanford
):
    outcome = {}

    def run():
        try:
            outcome["result"] = find_replace.do_replace(
                letters,
                alice,
                QUERY,
                find_replace.search.Filters(),
                [stanford[0].pk, stanford[1].pk],
                "Stanford",
                versions={stanford[0].pk: 1, stanford[1].pk: 1},
            )
        finally:
            connection.close()

    replacer = threading.Thread(target=run)
    with transaction.atomic():
        actions.do_save_line(stanford[0], bob, "Mr Stanfora came by", expected_version=1)
        replacer.start()
        wait_until_another_session_waits_for_a_lock()
    replacer.join()
    result = outcome["result"]
    assert [c.line.pk for c in result.changed] == [stanford[1].pk]
    assert [(s.line_id, s.reason) for s in result.skipped] == [(stanford[0].pk, "changed")]
    assert texts(stanford[:2]) == ["Mr Stanfora came by", "the Stanford's house"]


@pytest.mark.django_db(transaction=True)
def test_a_save_arriving_during_a_replace_batch_is_a_conflict(alice, bob, letters, stanford):
    outcome = {}

    def save():
        try:
            actions.do_save_line(stanford[0], bob, "Mr Stanfora came by", expected_version=1)
        except actions.VersionConflict as conflict:
            outcome["conflict"] = conflict
        finally:
            connection.close()

    saver = threading.Thread(target=save)
    with transaction.atomic():
        find_replace.do_replace(
            letters, alice, QUERY, find_replace.search.Filters(), [stanford[0].pk], "Stanford"
        )
        saver.start()
        wait_until_another_session_waits_for_a_lock()
    saver.join()
    assert outcome["conflict"].line.text == "Mr Stanford came"
    assert texts(stanford[:1]) == ["Mr Stanford came"]


@pytest.mark.django_db
def test_a_replaced_word_is_a_persons_and_survives_a_new_models_reading(
    client, alice, letters, stanford, tiny_model
):
    """A replace leaves a line nobody checked in the queue, but its fix is a person's: a model
    promoted later re-reads the line for its alternatives and keeps the text."""
    factories.post_json(client, api(letters.pk), alice, body())
    fixed, untouched = Line.objects.get(pk=stanford[0].pk), Line.objects.get(pk=stanford[3].pk)
    assert fixed.human_text and not untouched.human_text
    model = ModelVersion.objects.create(name="promoted", source=str(tiny_model) + "/")
    services.do_rerecognize(Document.objects.filter(lines__in=stanford).distinct(), model)
    while services.do_recognize_pending("test-worker"):
        pass
    fixed.refresh_from_db(), untouched.refresh_from_db()
    assert (fixed.text, fixed.status) == ("Mr Stanford came", S.NEEDS_REVIEW)
    assert fixed.hypotheses.filter(model_version=model).exists()
    assert untouched.model_version == model and untouched.text != "nothing here"


@pytest.mark.django_db
def test_undoing_a_check_after_a_replace_leaves_the_replaced_text_unchecked(
    client, alice, bob, staff, letters, stanford
):
    """Bob checked a line after alice's replace; undoing bob puts back her replace, which
    nobody checked: the line goes back to the queue, not to the training data."""
    factories.post_json(client, api(letters.pk), alice, body())
    line = Line.objects.get(pk=stanford[0].pk)
    since = timezone.now()
    actions.do_save_line(line, bob, "Mr Stanford came", expected_version=line.version)
    result = actions.do_revert_user_saves(letters, bob, since, staff)
    line.refresh_from_db()
    assert (line.text, line.status, line.human_text) == ("Mr Stanford came", S.NEEDS_REVIEW, True)
    assert result.requeued == [line.pk]
    # The same for one line put back from its history.
    actions.do_save_line(line, bob, "Mr Stanford came", expected_version=line.version)
    replace = line.corrections.filter(user=alice).get()
    actions.do_revert_line(line, staff, replace, expected_version=line.version + 1)
    line.refresh_from_db()
    assert (line.status, line.human_text) == (S.NEEDS_REVIEW, True)
