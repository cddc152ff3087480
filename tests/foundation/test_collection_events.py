"""A collection's events: each admin change of a collection writes exactly one, with its old
and new values, in the change's transaction, so a refused or rolled-back change writes none;
the events of a deleted document, and of a deleted user, stay."""

import pytest
from django.urls import reverse

from ocrreview.corpus import actions, audit
from ocrreview.corpus.models import CollectionEvent, Document, Line, Membership, Page
from ocrreview.review import actions as review
from ocrreview.training.actions import TrainingError, do_rerecognize_unreviewed
from tests import factories
from tests.factories import token_headers as auth

T = CollectionEvent.Type
ADMIN, REVIEWER = Membership.Role.ADMIN, Membership.Role.REVIEWER


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def the_event(collection) -> CollectionEvent:
    """The collection's one event: a second would fail the test."""
    return CollectionEvent.objects.get(collection=collection)


def no_events(collection) -> bool:
    return not CollectionEvent.objects.filter(collection=collection).exists()


def send(client, method: str, url: str, user, body=None):
    return getattr(client, method)(url, body, content_type="application/json", headers=auth(user))


@pytest.fixture
def letter(letters, model_version):
    document = factories.make_document(letters, "Letter to Mr Hale", status=Document.Status.READY)
    page = factories.make_page(document)
    for order in range(2):
        factories.make_read_line(page, order, [("Dear Sir", 0.5)], model_version)
    return document


# --- Settings and models ----------------------------------------------------------------


def test_settings_saved_are_one_event_with_the_values_changed(client, alice, letters):
    letters.confidence_threshold = 0.8
    letters.save()
    response = send(
        client,
        "patch",
        reverse("api_collection", args=[letters.pk]),
        alice,
        # nbest_size is named with the value it has: no change, not recorded.
        {
            "confidence_threshold": 0.85,
            "language": "fr",
            "nbest_size": letters.nbest_size,
            "confirm_uncalibrated": True,
        },
    )
    assert response.status_code == 200
    event = the_event(letters)
    assert (event.event_type, event.acting_user) == (T.SETTINGS_CHANGED, alice)
    assert event.extra_data == {
        "changes": [
            {"property": "confidence_threshold", "old_value": 0.8, "new_value": 0.85},
            {"property": "language", "old_value": "", "new_value": "fr"},
        ],
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert audit.sentence(event) == (
        "alice changed the review threshold from 0.80 to 0.85 and the language from none to 'fr'"
    )


def test_settings_saved_unchanged_or_refused_are_no_event(client, alice, letters):
    url = reverse("api_collection", args=[letters.pk])
    unchanged = {"confidence_threshold": letters.confidence_threshold}
    assert send(client, "patch", url, alice, unchanged).status_code == 200
    assert send(client, "patch", url, alice, {"confidence_threshold": 2}).status_code == 400
    assert no_events(letters)


def test_the_settings_page_records_the_model_chosen(client, alice, letters, model_version):
    client.force_login(alice)
    url = reverse("collection_settings", args=[letters.pk])
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None}
    data.update({f"initial-{name}": value for name, value in data.items()})
    assert (
        client.post(
            url, {**data, "model_version": model_version.pk, "confirm_uncalibrated": "on"}
        ).status_code
        == 302
    )
    event = the_event(letters)
    assert event.extra_data["changes"] == [
        {
            "property": "model_version",
            "old_value": None,
            "new_value": {"id": model_version.pk, "name": "tiny"},
        }
    ]
    assert audit.sentence(event) == (
        "alice changed the model from the site's default model to 'tiny'"
    )


def test_a_model_promoted_by_the_gate_or_over_it(alice, letters, model_version):
    child = factories.make_model_version("tiny-2", parent=model_version)
    actions.do_set_collection_model(letters, model_version, actor=None)
    actions.do_set_collection_model(letters, child, actor=alice)
    actions.do_set_collection_model(letters, child, actor=alice)  # no change: no event
    gate, override = CollectionEvent.objects.filter(collection=letters).order_by("id")
    assert (gate.acting_user, gate.event_type) == (None, T.MODEL_PROMOTED)
    assert gate.extra_data == {
        "old_value": None,
        "new_value": {"id": model_version.pk, "name": "tiny"},
        "actor": None,
    }
    assert audit.sentence(gate) == (
        "the promotion gate made 'tiny' the collection's model, in place of the site's "
        "default model"
    )
    assert override.acting_user == alice
    assert override.extra_data["old_value"] == {"id": model_version.pk, "name": "tiny"}
    assert override.extra_data["new_value"] == {"id": child.pk, "name": "tiny-2"}


def test_a_re_read_of_the_collection_or_of_one_document(client, alice, letters, letter):
    version = factories.make_model_version("other")
    url = reverse("api_recognize", args=[letters.pk])
    response = send(client, "post", url, alice, {"model_version": version.pk})
    assert response.status_code == 202
    event = the_event(letters)
    assert (event.event_type, event.acting_user, event.document_id) == (
        T.LINES_REREAD,
        alice,
        None,
    )
    assert event.extra_data == {
        "model": {"id": version.pk, "name": "other"},
        "lines": 2,
        "unreviewed_only": False,
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert audit.sentence(event) == "alice queued 2 lines to be read again by 'other'"
    event.delete()

    third = factories.make_model_version("third")
    body = {"model_version": third.pk, "document": letter.pk}
    assert send(client, "post", url, alice, body).status_code == 202
    event = the_event(letters)
    assert event.document_id == letter.pk
    assert audit.sentence(event) == (
        "alice queued 2 lines of 'Letter to Mr Hale' to be read again by 'third'"
    )


def test_a_re_read_of_the_unreviewed_lines_with_the_collections_model(
    alice, bob, letters, letter, model_version
):
    refused = factories.make_model_version("not-promoted")
    with pytest.raises(TrainingError):
        do_rerecognize_unreviewed(letters, refused, actor=alice)
    assert no_events(letters)

    actions.do_set_collection_model(letters, model_version, actor=None)
    letters.refresh_from_db()
    CollectionEvent.objects.all().delete()
    line = letter.lines.first()
    review.do_save_line(line, bob, "Dear Sirs", expected_version=line.version)
    assert do_rerecognize_unreviewed(letters, model_version, actor=alice) == 1
    event = the_event(letters)
    assert event.extra_data == {
        "model": {"id": model_version.pk, "name": "tiny"},
        "lines": 1,
        "unreviewed_only": True,
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert audit.sentence(event) == "alice queued 1 unreviewed line to be read again by 'tiny'"


# --- Documents --------------------------------------------------------------------------


def test_a_deleted_document_keeps_its_events(client, alice, letters, letter):
    response = send(client, "delete", reverse("api_document", args=[letter.pk]), alice)
    assert response.status_code == 204
    assert not Document.objects.filter(pk=letter.pk).exists()
    event = the_event(letters)
    assert (event.event_type, event.acting_user, event.document_id) == (
        T.DOCUMENT_DELETED,
        alice,
        letter.pk,
    )
    assert event.extra_data == {
        "title": "Letter to Mr Hale",
        "pages": 1,
        "lines": 2,
        "actor": {"id": alice.pk, "username": "alice"},
    }
    assert audit.sentence(event) == "alice deleted 'Letter to Mr Hale' (1 page, 2 lines)"


def test_a_document_whose_lines_carry_corrections_stays_and_records_nothing(
    client, alice, bob, letters, letter
):
    """The delete is refused after the event was written, by the protected corrections: the
    event goes with the rolled-back transaction."""
    line = letter.lines.first()
    review.do_save_line(line, bob, "Dear Sirs", expected_version=line.version)
    response = send(client, "delete", reverse("api_document", args=[letter.pk]), alice)
    assert response.status_code == 409
    assert Document.objects.filter(pk=letter.pk).exists()
    assert no_events(letters)


@pytest.fixture
def failed(letters):
    document = factories.make_document(letters, "Register", status=Document.Status.FAILED)
    factories.make_page(document, 0)
    broken = factories.make_page(document, 1)
    Page.objects.filter(pk=broken.pk).update(status=Page.Status.FAILED, error="not an image")
    return document


def test_segmenting_again(alice, letters, failed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        actions.do_segment_again(failed, alice)
    event = the_event(letters)
    assert (event.event_type, event.acting_user, event.document_id) == (
        T.DOCUMENT_SEGMENTED_AGAIN,
        alice,
        failed.pk,
    )
    assert audit.sentence(event) == "alice had 'Register' segmented again"
    with pytest.raises(actions.CannotSegmentAgain):  # it is no longer failed
        actions.do_segment_again(failed, alice)
    assert CollectionEvent.objects.filter(collection=letters).count() == 1


def test_a_segmentation_that_cannot_start_records_nothing(alice, letters, failed, monkeypatch):
    def broken(document):
        raise RuntimeError("the queue is gone")

    monkeypatch.setattr(actions, "start_processing", broken)
    with pytest.raises(RuntimeError):
        actions.do_segment_again(failed, alice)
    assert no_events(letters)
    failed.refresh_from_db()
    assert failed.status == Document.Status.FAILED


# --- Members ----------------------------------------------------------------------------


def test_each_change_of_the_members_is_one_event(client, alice, bob, dave, letters):
    members = reverse("api_members", args=[letters.pk])
    dave_url = reverse("api_member", args=[letters.pk, dave.pk])
    assert send(client, "post", members, alice, {"username": "dave"}).status_code == 201
    assert send(client, "put", dave_url, alice, {"role": ADMIN}).status_code == 200
    assert send(client, "put", dave_url, alice, {"role": ADMIN}).status_code == 200  # as it was
    assert send(client, "delete", dave_url, alice).status_code == 204
    added, promoted, removed = CollectionEvent.objects.filter(collection=letters).order_by("id")
    dave_label, by = {"id": dave.pk, "username": "dave"}, {"id": alice.pk, "username": "alice"}
    assert (added.event_type, added.extra_data) == (
        T.MEMBER_ADDED,
        {"member": dave_label, "role": REVIEWER, "actor": by},
    )
    assert (promoted.event_type, promoted.extra_data) == (
        T.MEMBER_ROLE_CHANGED,
        {"member": dave_label, "old_value": REVIEWER, "new_value": ADMIN, "actor": by},
    )
    assert (removed.event_type, removed.extra_data) == (
        T.MEMBER_REMOVED,
        {"member": dave_label, "role": ADMIN, "actor": by},
    )
    assert {added.acting_user, promoted.acting_user, removed.acting_user} == {alice}
    assert [audit.sentence(e) for e in (added, promoted, removed)] == [
        "alice added dave as a reviewer",
        "alice made dave an admin (was a reviewer)",
        "alice removed dave (an admin)",
    ]


def test_refused_changes_of_the_members_are_no_event(client, alice, bob, letters):
    members = reverse("api_members", args=[letters.pk])
    alice_url = reverse("api_member", args=[letters.pk, alice.pk])
    assert send(client, "post", members, alice, {"username": "bob"}).status_code == 400
    assert send(client, "delete", alice_url, alice).status_code == 409  # the last admin
    assert send(client, "put", alice_url, alice, {"role": REVIEWER}).status_code == 409
    assert no_events(letters)


def test_a_deleted_users_events_still_name_them_and_the_gates_name_the_gate(
    client, alice, bob, dave, letters, model_version
):
    """Deleting an account empties acting_user: the event keeps who made it, or an admin's
    promotion over the gate (do_override_promotion's) came to read as the gate's, and their
    other changes as a deleted account's."""
    child = factories.make_model_version("tiny-2", parent=model_version)
    actions.do_set_collection_model(letters, model_version, actor=None)
    actions.do_add_member(letters, dave, ADMIN, actor=alice)
    actions.do_set_collection_model(letters, child, actor=dave)
    actions.do_set_member_role(letters, bob, ADMIN, actor=dave)
    dave_id = dave.pk
    dave.delete()
    recorded = CollectionEvent.objects.filter(collection=letters).order_by("id")
    gate, added, override, promoted = recorded
    assert (override.acting_user, promoted.acting_user) == (None, None)
    assert override.extra_data["actor"] == {"id": dave_id, "username": "dave"}
    assert gate.extra_data["actor"] is None
    assert added.extra_data["member"] == {"id": dave_id, "username": "dave"}
    assert [audit.sentence(event) for event in (gate, override, promoted)] == [
        "the promotion gate made 'tiny' the collection's model, in place of the site's "
        "default model",
        "dave made 'tiny-2' the collection's model, in place of 'tiny'",
        "dave made bob an admin (was a reviewer)",
    ]
    client.force_login(alice)
    rows = client.get(reverse("collection_history", args=[letters.pk])).context["rows"]
    assert [row.actor for row in rows] == ["dave", "dave", "alice", "the promotion gate"]
    answer = client.get(reverse("api_events", args=[letters.pk]), headers=auth(alice)).json()
    assert [(e["acting_user"], e["acting_username"]) for e in answer["results"]] == [
        (None, "dave"),
        (None, "dave"),
        (alice.pk, "alice"),
        (None, None),
    ]


def test_events_recorded_before_they_kept_who_made_them_read_as_they_did(alice, letters):
    """Without `actor` in extra_data (events of a database from before it was kept): the
    account as it is now, a promotion by nobody the gate's, anything else a deleted account's."""
    bare = {"old_value": None, "new_value": None}
    by_alice, by_nobody, promoted = (
        CollectionEvent.objects.create(
            collection=letters, acting_user=user, event_type=kind, extra_data=bare
        )
        for user, kind in (
            (alice, T.MODEL_PROMOTED),
            (None, T.THRESHOLD_APPLIED),
            (None, T.MODEL_PROMOTED),
        )
    )
    assert [audit.actor_name(e) for e in (by_alice, by_nobody, promoted)] == [
        "alice",
        "a deleted account",
        "the promotion gate",
    ]


def test_a_deleted_documents_line_edits_stay(alice, bob, letters, letter):
    line = Line.objects.filter(document=letter).order_by("order").last()
    review.do_delete_line(line, bob, expected_version=line.version)
    actions.do_delete_document(letter, alice)
    removed, deleted = CollectionEvent.objects.filter(collection=letters).order_by("id")
    assert (removed.event_type, removed.document_id, removed.line_id) == (
        T.LINE_DELETED,
        letter.pk,
        line.pk,
    )
    assert audit.sentence(removed) == "bob removed line 2 on page 1 of 'Letter to Mr Hale'"
    assert deleted.extra_data == {
        "title": "Letter to Mr Hale",
        "pages": 1,
        "lines": 1,
        "actor": {"id": alice.pk, "username": "alice"},
    }
