"""A document's review state and assignees (corpus/workflow.py): who may change them, what a
final document refuses, how assignments order the review queue, and the coordinators' view."""

import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse

from ocrreview.corpus import workflow
from ocrreview.corpus.actions import do_remove_member
from ocrreview.corpus.audit import sentence
from ocrreview.corpus.models import (
    CollectionEvent,
    Document,
    DocumentAssignment,
    Line,
    Membership,
)
from ocrreview.review import actions, queue
from ocrreview.review.models import Correction, Draft, ReviewerPreference
from ocrreview.training.actions import do_rerecognize_unreviewed
from ocrreview.transcription.models import RecognitionRequest
from ocrreview.transcription.services import do_reread
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock

R = Document.ReviewState
S = Line.Status
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def set_state(client, collection, document, state, expected=None):
    data = {"review_state": state}
    if expected is not None:
        data["expected_review_state"] = expected
    url = reverse("review_document_state", args=[collection.pk, document.pk])
    return client.post(url, data)


def state_of(document) -> str:
    return Document.objects.values_list("review_state", flat=True).get(pk=document.pk)


# --- Who moves the state ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "assigned", "old", "new", "code"),
    [
        ("alice", False, R.OPEN, R.FINAL, 302),
        ("alice", False, R.FINAL, R.OPEN, 302),  # an admin reopens
        ("alice", False, R.IN_QA, R.IN_PROGRESS, 302),
        ("staff", False, R.FINAL, R.IN_QA, 302),
        ("bob", True, R.OPEN, R.IN_PROGRESS, 302),
        ("bob", True, R.IN_PROGRESS, R.IN_QA, 302),
        ("bob", True, R.IN_QA, R.FINAL, 403),
        ("bob", True, R.OPEN, R.IN_QA, 403),
        ("bob", True, R.FINAL, R.OPEN, 403),
        ("bob", False, R.OPEN, R.IN_PROGRESS, 403),
        ("charlie", False, R.OPEN, R.IN_PROGRESS, 404),
        ("dave", False, R.OPEN, R.IN_PROGRESS, 404),
    ],
)
def test_who_may_move_a_document(
    request, client, alice, bob, charlie, dave, staff, letter, persona, assigned, old, new, code
):
    user = request.getfixturevalue(persona)
    Document.objects.filter(pk=letter.pk).update(review_state=old)
    if assigned:
        DocumentAssignment.objects.create(document=letter, user=user)
    client.force_login(user)
    response = set_state(client, letter.collection, letter, new, expected=old)
    assert response.status_code == code
    assert state_of(letter) == (new if code == 302 else old)
    events = CollectionEvent.objects.filter(event_type=CollectionEvent.Type.REVIEW_STATE_CHANGED)
    assert events.count() == (1 if code == 302 else 0)
    if code == 302:
        event = events.get()
        assert (event.acting_user, event.document_id) == (user, letter.pk)
        assert sentence(event) == (
            f"{persona} moved 'Letter to Mr Hale' from {R(old).label.lower()} "
            f"to {R(new).label.lower()}"
        )


@pytest.mark.parametrize(
    "data",
    [
        {"review_state": "done"},
        {"review_state": ""},
        {},
        {"review_state": "final", "expected_review_state": "closed"},
    ],
)
def test_bad_state_input_is_a_400(client, alice, letter, data):
    client.force_login(alice)
    url = reverse("review_document_state", args=[letter.collection.pk, letter.pk])
    assert client.post(url, data).status_code == 400
    assert state_of(letter) == R.OPEN


def test_a_document_of_another_collection_is_a_404(client, alice, ledgers, letters):
    ledger = factories.make_document(ledgers, "Ledger 1801")
    client.force_login(alice)
    assert set_state(client, letters, ledger, R.FINAL).status_code == 404
    url = reverse("review_document_assignees", args=[letters.pk, ledger.pk])
    assert client.post(url, {"assignees": [alice.pk]}).status_code == 404
    assert state_of(ledger) == R.OPEN


def test_a_stale_state_change_is_refused_and_says_the_state_now(client, alice, letter):
    workflow.do_set_review_state(letter, R.IN_QA, actor=alice)
    client.force_login(alice)
    response = set_state(client, letter.collection, letter, R.FINAL, expected=R.OPEN)
    assert response.status_code == 302
    assert state_of(letter) == R.IN_QA
    shown = client.get(response["Location"]).content.decode()
    assert "it is in qa now. Nothing was changed." in shown


@pytest.mark.django_db(transaction=True)
def test_two_admins_at_once_one_wins_and_the_other_gets_a_conflict(alice, staff, letters):
    document = factories.make_document(letters, "Letter")
    Document.objects.filter(pk=document.pk).update(review_state=R.IN_QA)
    outcome = {}

    def reopen():
        try:
            seen = Document.objects.get(pk=document.pk)
            workflow.do_set_review_state(seen, R.IN_PROGRESS, actor=staff, expected=R.IN_QA)
        except workflow.StateConflict as exc:
            outcome["conflict"] = exc
        finally:
            connection.close()

    second = threading.Thread(target=reopen)
    with transaction.atomic():
        workflow.do_set_review_state(
            Document.objects.get(pk=document.pk), R.FINAL, actor=alice, expected=R.IN_QA
        )
        second.start()
        wait_until_another_session_waits_for_a_lock()  # staff's update, for alice's row
    second.join()
    assert outcome["conflict"].current == R.FINAL
    assert state_of(document) == R.FINAL
    assert CollectionEvent.objects.filter(event_type="review_state_changed").count() == 1


# --- A final document is locked -----------------------------------------------------------


@pytest.fixture
def final(alice, letter, lines, bob):
    """bob holds line 2 and has typed into it; then alice makes the letter final."""
    assert actions.do_claim_line(lines[1], bob)
    actions.do_save_draft(lines[1], bob, "I received yo", base_version=1)
    workflow.do_set_review_state(letter, R.FINAL, actor=alice)
    return letter


def unchanged(lines):
    return [(line.text, line.version) for line in Line.objects.filter(pk__in=[x.pk for x in lines])]


def test_making_a_document_final_ends_its_claims_and_keeps_drafts(final, lines, bob):
    line = Line.objects.get(pk=lines[1].pk)
    assert (line.status, line.claimed_by) == (S.NEEDS_REVIEW, None)
    assert Draft.objects.get(line=lines[1], user=bob).text == "I received yo"
    assert not actions.do_claim_line(lines[1], bob)
    # The reviewer's typing is still kept, for when an admin reopens the document.
    assert actions.do_save_draft(lines[1], bob, "I received your", base_version=1) is not None


@pytest.mark.parametrize(
    "data",
    [
        {"text": "I received your", "expected_version": 1},
        {"text": "I recieved your", "expected_version": 1, "action": "accept"},
        {"text": "I received your", "expected_version": 1, "stay": "1"},  # the page view
    ],
)
def test_a_final_document_refuses_saves_from_the_editor_and_page_view(
    client, bob, letters, lines, final, data
):
    before = unchanged(lines)
    client.force_login(bob)
    url = reverse("review_save", args=[letters.pk, lines[1].pk])
    response = client.post(url, data, **FETCH)
    assert response.status_code == 400
    assert "'Letter to Mr Hale' is final" in response.json()["error"]
    assert unchanged(lines) == before
    assert Draft.objects.filter(line=lines[1], user=bob).exists()


def test_a_final_document_refuses_api_saves_and_reverts(client, alice, bob, letters, lines):
    correction = actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    workflow.do_set_review_state(lines[2].document, R.FINAL, actor=alice)
    before = unchanged(lines)
    response = factories.post_json(
        client,
        reverse("api_line_corrections", args=[lines[1].pk]),
        bob,
        {"text": "I received your", "expected_version": 1},
    )
    assert response.status_code == 400
    assert "is final" in response.json()["error"]
    with pytest.raises(actions.ReviewError, match="is final"):
        actions.do_revert_line(lines[2], alice, correction, expected_version=2, before=True)
    assert actions.do_revert_user_saves(letters, bob, correction.created_at, alice).reverted == []
    assert unchanged(lines) == before


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("review_move", {"x0": 20, "y0": 50, "x1": 400, "y1": 80, "expected_version": 1}),
        ("review_split", {"x": 200, "expected_version": 1}),
        ("review_merge", {"expected_version": 1}),
        ("review_delete", {"expected_version": 1}),
    ],
)
def test_a_final_document_refuses_box_edits(client, bob, letters, lines, final, name, data):
    boxes = list(Line.objects.order_by("id").values_list("id", "bbox", "version"))
    client.force_login(bob)
    response = client.post(reverse(name, args=[letters.pk, lines[1].pk]), data)
    assert response.status_code == 400
    assert "is final" in response.json()["error"]
    assert list(Line.objects.order_by("id").values_list("id", "bbox", "version")) == boxes


def test_a_final_document_refuses_new_lines(client, bob, letters, page, lines, final):
    client.force_login(bob)
    url = reverse("review_add_line", args=[letters.pk, page.pk])
    response = client.post(url, {"x0": 10, "y0": 300, "x1": 400, "y1": 330})
    assert response.status_code == 400
    assert Line.objects.filter(page=page).count() == len(lines)


def test_reopening_lets_the_kept_draft_be_saved(alice, bob, lines, final):
    workflow.do_set_review_state(final, R.IN_PROGRESS, actor=alice)
    draft = Draft.objects.get(line=lines[1], user=bob)
    actions.do_save_line(lines[1], bob, draft.text, expected_version=draft.base_version)
    assert Line.objects.get(pk=lines[1].pk).text == "I received yo"


def order_of(page) -> list[int]:
    return list(Line.objects.filter(page=page).order_by("order").values_list("pk", flat=True))


def test_a_final_document_refuses_changes_of_reading_order(
    client, alice, bob, letters, page, lines
):
    actions.do_reorder_line(lines[0], bob, expected_version=1, position=4)
    sort = actions.do_sort_page(page, bob).event
    workflow.do_set_review_state(page.document, R.FINAL, actor=alice)
    order, events = order_of(page), CollectionEvent.objects.count()
    client.force_login(bob)
    answers = [
        client.post(
            reverse("review_reorder", args=[letters.pk, lines[0].pk]),
            {"expected_version": 1, "position": 1},
        ),
        client.post(reverse("review_sort_page", args=[letters.pk, page.pk])),
        client.post(reverse("review_undo_sort", args=[letters.pk, page.pk]), {"event": sort.pk}),
        factories.post_json(
            client, reverse("api_line_reorder", args=[lines[0].pk]), bob,
            {"expected_version": 1, "after": lines[3].pk},
        ),
    ]  # fmt: skip
    for answer in answers:
        assert answer.status_code == 400
        assert "'Letter to Mr Hale' is final" in answer.json()["error"]
    assert (order_of(page), CollectionEvent.objects.count()) == (order, events)


def test_a_final_document_refuses_unclear_marks(client, alice, bob, letters, lines):
    actions.do_mark_unclear(lines[2], bob, "the date")
    workflow.do_set_review_state(lines[2].document, R.FINAL, actor=alice)
    trail = Correction.objects.count()
    with pytest.raises(actions.ReviewError, match="is final"):
        actions.do_mark_unclear(lines[1], bob, "a blot")
    with pytest.raises(actions.ReviewError, match="is final"):
        actions.do_clear_unclear(lines[2], bob)
    api = reverse("api_line_unclear", args=[lines[1].pk])
    marked = factories.post_json(client, api, bob, {"note": "a blot"})
    cleared = client.delete(
        reverse("api_line_unclear", args=[lines[2].pk]), headers=factories.token_headers(bob)
    )
    client.force_login(bob)
    editor = client.post(
        reverse("review_unclear", args=[letters.pk, lines[1].pk]), {"unclear": "1"}, **FETCH
    )
    for answer in (marked, cleared, editor):
        assert answer.status_code == 400
        assert "is final" in answer.json()["error"]
    marks = Line.objects.filter(pk__in=[x.pk for x in lines]).order_by("order")
    assert list(marks.values_list("unclear", "unclear_note")) == [
        (False, ""), (False, ""), (True, "the date"), (False, "")
    ]  # fmt: skip
    assert Correction.objects.count() == trail


@pytest.fixture
def letter_and_ledger(letters, letter, lines, model_version):
    """The letter's four lines and a second document of the collection with one unsure line."""
    ledger = factories.make_document(letters, "Ledger 1801")
    line = factories.make_read_line(
        factories.make_page(ledger), 0, [("To cash", 0.3)], model_version
    )
    return lines, line


def test_a_threshold_routes_no_line_of_a_final_document_and_its_preview_says_so(
    alice, letters, letter, letter_and_ledger
):
    lines, ledger_line = letter_and_ledger
    workflow.do_set_review_state(letter, R.FINAL, actor=alice)
    statuses = unchanged(lines), list(Line.objects.filter(document=letter).values_list("status"))
    preview = queue.threshold_preview(letters, 0.1)
    assert (preview.to_humans, preview.auto_accepted, preview.final_kept) == (0, 1, 4)
    assert preview.expected_errors == pytest.approx(0.7)
    assert actions.do_apply_threshold(letters, 0.1, actor=alice) == {"to_humans": 0, "accepted": 1}
    assert Line.objects.get(pk=ledger_line.pk).status == S.AUTO_ACCEPTED
    now = unchanged(lines), list(Line.objects.filter(document=letter).values_list("status"))
    assert now == statuses
    # Raised, the same: nothing of the letter goes back to reviewers.
    assert actions.do_apply_threshold(letters, 0.99, actor=alice) == {"to_humans": 1, "accepted": 0}
    assert Line.objects.get(pk=lines[0].pk).status == S.AUTO_ACCEPTED


def test_a_reread_queues_no_line_of_a_final_document(
    client, alice, letters, letter, letter_and_ledger
):
    lines, ledger_line = letter_and_ledger
    workflow.do_set_review_state(letter, R.FINAL, actor=alice)
    newer = factories.make_model_version(name="newer", source="/models/newer")
    assert do_reread(letters, newer, actor=alice) == 1
    assert do_reread(letters, newer, document=letter, actor=alice) == 0
    queued = RecognitionRequest.objects.filter(model_version=newer)
    assert list(queued.values_list("line_id", flat=True)) == [ledger_line.pk]
    # The pipeline's re-read of every unreviewed line, after a model is promoted, the same.
    letters.model_version = newer
    letters.save()
    assert do_rerecognize_unreviewed(letters, newer, actor=alice) == 0
    assert queued.count() == 1


def test_undoing_saves_lists_a_final_documents_lines_and_why(
    client, alice, bob, letters, letter, lines, bobs_saves
):
    """bob's saves of lines 2 and 3 would be undone but for the letter being final; dave
    changed line 4 since. All three are listed, each with why."""
    workflow.do_set_review_state(letter, R.FINAL, actor=alice)
    before = unchanged(lines)
    result = actions.do_revert_user_saves(letters, bob, bobs_saves, alice)
    assert result.reverted == []
    assert [(left.newest.line_id, left.reason) for left in result.skipped] == [
        (lines[1].pk, "final"),
        (lines[2].pk, "final"),
        (lines[3].pk, "changed"),
    ]
    assert unchanged(lines) == before
    answer = factories.post_json(
        client,
        reverse("api_corrections_revert", args=[letters.pk]),
        alice,
        {"user": bob.pk, "since": bobs_saves.isoformat(), "preview": True},
    ).json()
    assert [(s["line"], s["reason"], s["changed_by"]) for s in answer["skipped"]] == [
        (lines[1].pk, "final", "bob"),
        (lines[2].pk, "final", "bob"),
        (lines[3].pk, "changed", "dave"),
    ]
    client.force_login(alice)
    query = {"user": bob.pk, "since": bobs_saves.isoformat()}
    page = client.get(reverse("review_revert_user", args=[letters.pk]), query)
    assert page.content.decode().count("its document is final") == 2
    done = client.post(reverse("review_revert_user", args=[letters.pk]), query, follow=True)
    assert done.content.decode().count("its document is final") == 2


# --- The queue ----------------------------------------------------------------------------


@pytest.fixture
def two_documents(letters, model_version):
    """Two documents with two waiting lines each; the first's lines are the less sure."""
    documents = []
    for title, shares in (("First", (0.1, 0.2)), ("Second", (0.5, 0.6))):
        document = factories.make_document(letters, title)
        page = factories.make_page(document)
        for order, share in enumerate(shares):
            factories.make_read_line(page, order, [(f"{title} {order}", share)], model_version)
        documents.append(document)
    return documents


def claimed_document(collection, user, **kwargs) -> int | None:
    line_id = actions.do_claim_next_line(collection, user, **kwargs)
    return None if line_id is None else Line.objects.get(pk=line_id).document_id


@pytest.mark.parametrize("order", ["confidence", "reading"])
def test_the_queue_offers_assigned_documents_first(alice, bob, letters, two_documents, order):
    first, second = two_documents
    workflow.do_set_assignees(second, [bob], actor=alice)
    taken = [claimed_document(letters, bob, order=order) for _ in range(2)]
    # A held line comes back: hand each back to see the next one offered.
    assert taken[0] == second.pk
    Line.objects.filter(claimed_by=bob).update(
        status=S.REVIEWED, claimed_by=None, claimed_until=None
    )
    assert claimed_document(letters, bob, order=order) == second.pk
    Line.objects.filter(claimed_by=bob).update(
        status=S.REVIEWED, claimed_by=None, claimed_until=None
    )
    # The assigned document done, the others' lines follow.
    assert claimed_document(letters, bob, order=order) == first.pk
    # Someone not assigned gets the queue as it was: the least sure lines first.
    assert claimed_document(letters, alice, order=order) == first.pk


@pytest.mark.parametrize("order", ["confidence", "reading"])
def test_assigned_only_offers_nothing_else(alice, bob, letters, two_documents, order):
    first, second = two_documents
    letters.assigned_only = True
    letters.save(update_fields=["assigned_only"])
    assert claimed_document(letters, bob, order=order) is None
    workflow.do_set_assignees(second, [bob], actor=alice)
    assert claimed_document(letters, bob, order=order) == second.pk


@pytest.mark.parametrize("order", ["confidence", "reading"])
def test_a_final_documents_lines_are_never_offered(alice, bob, letters, two_documents, order):
    first, second = two_documents
    workflow.do_set_assignees(first, [bob], actor=alice)
    workflow.do_set_review_state(first, R.FINAL, actor=alice)
    assert claimed_document(letters, bob, order=order) == second.pk
    workflow.do_set_review_state(second, R.FINAL, actor=alice)
    Line.objects.filter(claimed_by=bob).update(
        status=S.NEEDS_REVIEW, claimed_by=None, claimed_until="2000-01-01T00:00:00Z"
    )
    assert claimed_document(letters, bob, order=order) is None
    assert claimed_document(letters, bob, order=order, document_id=first.pk) is None


def test_the_review_queue_page_opens_the_assigned_documents_line(client, alice, bob, two_documents):
    first, second = two_documents
    workflow.do_set_assignees(second, [bob], actor=alice)
    ReviewerPreference.objects.create(user=bob)
    client.force_login(bob)
    response = client.get(reverse("review_queue", args=[second.collection_id]))
    line = Line.objects.get(claimed_by=bob)
    assert line.document_id == second.pk
    assert response["Location"].startswith(
        reverse("review_line", args=[second.collection_id, line.pk])
    )


# --- Assignment ---------------------------------------------------------------------------


def test_assigning_records_who_and_is_replaced_whole(alice, bob, letters, letter):
    factories.add_member(factories.make_user("erin"), letters)
    erin = letters.members.get(username="erin")
    workflow.do_set_assignees(letter, [bob, erin], actor=alice)
    workflow.do_set_assignees(letter, [erin], actor=alice)
    assert list(letter.assignees.all()) == [erin]
    events = CollectionEvent.objects.filter(event_type="assignees_changed").order_by("id")
    assert [sentence(e) for e in events] == [
        "alice assigned 'Letter to Mr Hale' to bob and erin",
        "alice took 'Letter to Mr Hale' from bob",
    ]


def test_assigning_a_non_member_is_refused(client, alice, charlie, dave, letter):
    with pytest.raises(workflow.WorkflowError, match="dave is no member"):
        workflow.do_set_assignees(letter, [dave], actor=alice)
    client.force_login(alice)
    url = reverse("review_document_assignees", args=[letter.collection_id, letter.pk])
    for value in (charlie.pk, "bob", "1.5"):
        assert client.post(url, {"assignees": [value]}).status_code == 400
    assert not DocumentAssignment.objects.exists()


def test_assigning_over_a_change_made_since_the_list_was_shown_is_refused(
    client, alice, bob, letters, letter
):
    """Assigning sends the whole list: sent over a colleague's change, it undid that change
    unseen. The web's form says whom it showed; the API's caller may."""
    erin = factories.make_user("erin")
    factories.add_member(erin, letters, Membership.Role.REVIEWER)
    client.force_login(alice)
    progress = client.get(reverse("review_progress", args=[letters.pk])).content.decode()
    assert 'name="expected_assignees"' not in progress
    workflow.do_set_assignees(letter, [bob], actor=alice)
    progress = client.get(reverse("review_progress", args=[letters.pk])).content.decode()
    assert f'name="expected_assignees" value="{bob.pk}"' in progress

    url = reverse("review_document_assignees", args=[letters.pk, letter.pk])
    answer = client.post(url, {"assignees": [erin.pk]}, follow=True)
    assert "assigned to bob now. Nothing was changed." in answer.content.decode()
    assert list(letter.assignees.all()) == [bob]
    client.post(url, {"assignees": [bob.pk, erin.pk], "expected_assignees": [bob.pk]})
    assert list(letter.assignees.order_by("username")) == [bob, erin]

    api = reverse("api_document_assignees", args=[letter.pk])
    stale = put_json(client, api, alice, {"assignees": [], "expected_assignees": [bob.pk]})
    assert stale.status_code == 409
    assert stale.json() == {
        "error": "Someone changed who 'Letter to Mr Hale' is assigned to meanwhile: it is "
        "assigned to bob, erin now. Nothing was changed."
    }
    assert list(letter.assignees.order_by("username")) == [bob, erin]
    body = {"assignees": [erin.pk], "expected_assignees": [erin.pk, bob.pk]}
    assert put_json(client, api, alice, body).status_code == 200
    assert put_json(client, api, alice, {"assignees": [bob.pk]}).status_code == 200
    assert list(letter.assignees.all()) == [bob]


def test_an_assignment_shown_with_a_member_removed_since_is_a_conflict(
    client, alice, bob, letters, letter
):
    erin = factories.make_user("erin")
    factories.add_member(erin, letters, Membership.Role.REVIEWER)
    workflow.do_set_assignees(letter, [bob, erin], actor=alice)
    do_remove_member(letters, erin, actor=alice)
    client.force_login(alice)
    url = reverse("review_document_assignees", args=[letters.pk, letter.pk])
    shown = {"assignees": [alice.pk], "expected_assignees": [bob.pk, erin.pk]}
    answer = client.post(url, shown, follow=True)
    assert "assigned to bob now. Nothing was changed." in answer.content.decode()
    assert list(letter.assignees.all()) == [bob]


def test_only_admins_assign(client, bob, letter):
    client.force_login(bob)
    url = reverse("review_document_assignees", args=[letter.collection_id, letter.pk])
    assert client.post(url, {"assignees": [bob.pk]}).status_code == 403
    assert not DocumentAssignment.objects.exists()


def test_removing_a_member_drops_their_assignments(alice, bob, letters, letter, ledgers):
    ledger = factories.make_document(ledgers, "Ledger")
    factories.add_member(bob, ledgers)
    workflow.do_set_assignees(letter, [bob, alice], actor=alice)
    workflow.do_set_assignees(ledger, [bob], actor=alice)
    do_remove_member(letters, bob, actor=alice)
    assert list(letter.assignees.all()) == [alice]
    assert list(ledger.assignees.all()) == [bob]  # another collection's stays


# --- The coordinators' view ---------------------------------------------------------------


def test_the_progress_page_shows_states_assignees_holders_and_last_work(
    client, alice, bob, letters, letter, lines
):
    workflow.do_set_assignees(letter, [bob], actor=alice)
    workflow.do_set_review_state(letter, R.IN_PROGRESS, actor=bob)
    actions.do_save_line(lines[2], bob, "letter of the 3rd", expected_version=1)
    actions.do_claim_line(lines[3], bob)
    other = factories.make_document(letters, "Other letter")
    client.force_login(alice)
    url = reverse("review_progress", args=[letters.pk])
    page = client.get(url).content.decode()
    assert "In progress" in page and "bob (1 line, until" in page
    assert 'name="assignees" multiple' in page  # admins assign
    row = page[page.index(f'data-document="{letter.pk}"') :]
    assert "bob, <time" in row  # last worked by
    assert "Other letter" in page
    mine = client.get(url, {"assignee": bob.pk}).content.decode()
    assert "Letter to Mr Hale" in mine and "Other letter" not in mine
    final = client.get(url, {"review_state": "final"}).content.decode()
    assert "Letter to Mr Hale" not in final
    assert other.title not in final


@pytest.mark.parametrize(
    "query", [{"review_state": "done"}, {"assignee": "x"}, {"assignee": 10**6}]
)
def test_bad_progress_filters_are_a_400(client, alice, letters, query):
    client.force_login(alice)
    assert client.get(reverse("review_progress", args=[letters.pk]), query).status_code == 400


def test_a_reviewer_is_offered_only_their_own_steps(client, alice, bob, letters, letter):
    client.force_login(bob)
    url = reverse("review_progress", args=[letters.pk])
    assert "New review state of" not in client.get(url).content.decode()
    workflow.do_set_assignees(letter, [bob], actor=alice)
    page = client.get(url).content.decode()
    assert (
        'aria-label="New review state of Letter to Mr Hale">'
        '<option value="in_progress">In progress</option></select>'
    ) in page
    assert 'name="assignees"' not in page


def test_corrections_are_filtered_by_document(client, alice, bob, letters, letter, lines):
    other = factories.make_document(letters, "Other letter")
    other_line = factories.make_line(factories.make_page(other), text="x", status=S.NEEDS_REVIEW)
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_save_line(other_line, bob, "y", expected_version=1)
    client.force_login(alice)
    url = reverse("review_corrections", args=[letters.pk])
    page = client.get(url, {"document": other.pk}).content.decode()
    assert "Other letter, page 1" in page and "Letter to Mr Hale, page" not in page
    api = client.get(
        reverse("api_corrections", args=[letters.pk]),
        {"document": letter.pk},
        headers=factories.token_headers(alice),
    )
    assert [c["line"] for c in api.json()["results"]] == [lines[1].pk]


@pytest.mark.parametrize("value", ["abc", "99999999", "-1"])
def test_a_bad_corrections_document_is_a_400(client, alice, letters, ledgers, value):
    client.force_login(alice)
    url = reverse("review_corrections", args=[letters.pk])
    assert client.get(url, {"document": value}).status_code == 400
    ledger = factories.make_document(ledgers, "Ledger")
    assert client.get(url, {"document": ledger.pk}).status_code == 400


# --- The API ------------------------------------------------------------------------------


def put_json(client, url, user, body):
    return client.put(
        url, body, content_type="application/json", headers=factories.token_headers(user)
    )


def test_the_api_shows_and_changes_state_and_assignees(client, alice, bob, letter):
    url = reverse("api_document_assignees", args=[letter.pk])
    answer = put_json(client, url, alice, {"assignees": [bob.pk]})
    assert answer.status_code == 200
    assert answer.json()["assignees"] == [{"id": bob.pk, "username": "bob"}]
    url = reverse("api_document_review_state", args=[letter.pk])
    answer = put_json(client, url, bob, {"review_state": "in_progress"})
    assert (answer.status_code, answer.json()["review_state"]) == (200, "in_progress")
    assert put_json(client, url, bob, {"review_state": "final"}).status_code == 403
    stale = put_json(client, url, alice, {"review_state": "final", "expected_review_state": "open"})
    assert stale.status_code == 409
    shown = client.get(
        reverse("api_document", args=[letter.pk]), headers=factories.token_headers(bob)
    )
    assert shown.json()["review_state"] == "in_progress"


def test_the_api_shows_a_reviewer_of_the_assignees_only_themselves(
    client, alice, bob, letters, letter
):
    """As the web's pages do: who works on what is the coordinators' to see."""
    erin = factories.make_user("erin")
    factories.add_member(erin, letters, Membership.Role.REVIEWER)
    workflow.do_set_assignees(letter, [bob, erin], actor=alice)
    bobs, erins = {"id": bob.pk, "username": "bob"}, {"id": erin.pk, "username": "erin"}

    def shown(user):
        headers = factories.token_headers(user)
        one = client.get(reverse("api_document", args=[letter.pk]), headers=headers).json()
        listed = client.get(
            reverse("api_collection_documents", args=[letters.pk]), headers=headers
        ).json()
        assert [row["assignees"] for row in listed["results"]] == [one["assignees"]]
        return one["assignees"]

    assert shown(alice) == [bobs, erins]
    assert shown(bob) == [bobs]
    assert shown(erin) == [erins]
    workflow.do_set_assignees(letter, [erin], actor=alice)
    assert shown(bob) == []
    url = reverse("api_document_review_state", args=[letter.pk])
    moved = put_json(client, url, erin, {"review_state": "in_progress"})
    assert moved.json()["assignees"] == [erins]


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("api_document_review_state", {"review_state": "done"}),
        ("api_document_review_state", {"review_state": 3}),
        ("api_document_review_state", {"state": "final"}),
        ("api_document_review_state", ["final"]),
        ("api_document_assignees", {"assignees": ["x"]}),
        ("api_document_assignees", {"assignees": [2**40]}),
        ("api_document_assignees", {"assignees": "1"}),
        ("api_document_assignees", {}),
    ],
)
def test_bad_api_input_is_a_400(client, alice, letter, endpoint, body):
    answer = put_json(client, reverse(endpoint, args=[letter.pk]), alice, body)
    assert answer.status_code == 400, answer.content
    assert "error" in answer.json()


def test_the_api_refuses_non_members_and_outsiders(client, alice, bob, charlie, dave, letter):
    url = reverse("api_document_assignees", args=[letter.pk])
    assert put_json(client, url, alice, {"assignees": [dave.pk]}).status_code == 400
    assert put_json(client, url, bob, {"assignees": [bob.pk]}).status_code == 403
    assert put_json(client, url, charlie, {"assignees": []}).status_code == 404
    state = reverse("api_document_review_state", args=[letter.pk])
    assert put_json(client, state, dave, {"review_state": "final"}).status_code == 404
    assert not DocumentAssignment.objects.exists()
