"""Drafts: what was typed but not saved is kept on the server, one per reviewer and line."""

import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from ocrreview.corpus.models import Line
from ocrreview.review import actions
from ocrreview.review.models import Draft
from tests.db_locks import wait_until_another_session_waits_for_a_lock


def post_draft(client, collection, line, **data):
    url = reverse("review_draft", args=[collection.pk, line.pk])
    return client.post(url, data, HTTP_X_REQUESTED_WITH="fetch")


def test_a_draft_is_kept_and_replaced_in_place(client, bob, letters, lines):
    client.force_login(bob)
    assert post_draft(client, letters, lines[1], text="I rec", base_version=1).status_code == 200
    response = post_draft(client, letters, lines[1], text="I received", base_version=1)
    assert response.json()["saved"] is True
    draft = Draft.objects.get(line=lines[1], user=bob)
    assert (draft.text, draft.base_version) == ("I received", 1)
    # The line itself is untouched until the reviewer saves.
    assert Line.objects.get(pk=lines[1].pk).text == "I recieved your"


def test_typing_renews_the_lease(client, bob, letters, lines):
    actions.do_claim_line(lines[1], bob)
    Line.objects.filter(pk=lines[1].pk).update(
        claimed_until=timezone.now() + timezone.timedelta(seconds=3)
    )
    client.force_login(bob)
    response = post_draft(client, letters, lines[1], text="I rec", base_version=1)
    assert response.json()["lease"] == "held"
    line = Line.objects.get(pk=lines[1].pk)
    assert line.claimed_until > timezone.now() + timezone.timedelta(seconds=500)


def test_a_draft_says_when_the_lease_was_lost(client, alice, bob, letters, lines):
    actions.do_claim_line(lines[1], alice)
    client.force_login(bob)
    response = post_draft(client, letters, lines[1], text="I rec", base_version=1)
    assert response.json()["lease"] == "lost"
    assert Draft.objects.filter(user=bob).exists()


def test_bad_drafts_are_refused_and_the_old_one_kept(client, bob, letters, lines):
    actions.do_save_draft(lines[1], bob, "kept", base_version=1)
    client.force_login(bob)
    assert post_draft(client, letters, lines[1], text="a\x00b", base_version=1).status_code == 400
    assert post_draft(client, letters, lines[1], text="x", base_version="v1").status_code == 400
    too_large = post_draft(client, letters, lines[1], text="x", base_version=2**31)
    assert too_large.status_code == 400
    too_large = post_draft(client, letters, lines[1], text="x", base_version=1, hypothesis=2**63)
    assert too_large.status_code == 400
    assert Draft.objects.get(line=lines[1], user=bob).text == "kept"


def test_discarding_a_draft(client, bob, letters, lines):
    actions.do_save_draft(lines[1], bob, "not wanted", base_version=1)
    client.force_login(bob)
    client.post(reverse("review_discard", args=[letters.pk, lines[1].pk]))
    assert not Draft.objects.exists()


def test_skipping_keeps_the_draft(bob, letters, lines):
    actions.do_claim_line(lines[1], bob)
    actions.do_save_draft(lines[1], bob, "half typed", base_version=1)
    assert actions.do_skip_line(lines[1], bob) is not None
    assert Draft.objects.get(line=lines[1]).text == "half typed"


def test_a_draft_arriving_after_its_own_save_is_dropped(client, bob, letters, lines):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    client.force_login(bob)
    late = post_draft(client, letters, lines[1], text="I rece", base_version=1)
    assert late.status_code == 200
    assert not Draft.objects.filter(line=lines[1]).exists()


def test_a_draft_typed_against_someone_elses_older_version_is_kept(
    client, alice, bob, letters, lines
):
    actions.do_save_line(lines[1], alice, "I received your", expected_version=1)
    client.force_login(bob)
    post_draft(client, letters, lines[1], text="I recieved yours", base_version=1)
    assert Draft.objects.get(line=lines[1], user=bob).text == "I recieved yours"


def test_a_draft_typed_after_splitting_the_lines_box_is_kept(client, bob, letters, lines):
    """A box split in the page view is no save of the text: the editor, still at the version
    before, types on, and saving that text shows both versions to choose from."""
    x0, _, x1, _ = lines[1].bbox
    actions.do_split_line(lines[1], bob, at_x=(x0 + x1) / 2, expected_version=1)
    client.force_login(bob)
    answer = post_draft(client, letters, lines[1], text="I received yours", base_version=1)
    assert answer.json()["saved"] is True
    assert Draft.objects.get(line=lines[1], user=bob).text == "I received yours"


@pytest.mark.django_db(transaction=True)
def test_a_draft_arriving_while_the_save_commits_is_not_kept_after_it(bob, letters, lines):
    """The last keystrokes' draft is sent just before Enter and can reach the server while the
    save is committing: kept, it would come back as unsaved text when the line is opened."""
    outcome = {}

    def send_draft():
        try:
            outcome["draft"] = actions.do_save_draft(lines[1], bob, "I receiv", base_version=1)
        finally:
            connection.close()

    drafter = threading.Thread(target=send_draft)
    with transaction.atomic():
        actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
        drafter.start()
        # Without the line's lock the draft is stored now, beside the uncommitted save.
        wait_until_another_session_waits_for_a_lock()
    drafter.join()
    assert outcome["draft"] is None
    assert not Draft.objects.filter(line=lines[1]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_first_draft_committing_when_the_save_starts_is_removed_by_the_save(bob, letters, lines):
    """The other order: the draft holds the line's lock when Enter's save arrives. The save
    waits for it, and must then see the draft it was waiting on to remove it."""
    outcome = {}

    def save():
        try:
            outcome["saved"] = actions.do_save_line(
                lines[1], bob, "I received your", expected_version=1
            )
        finally:
            connection.close()

    saver = threading.Thread(target=save)
    with transaction.atomic():
        actions.do_save_draft(lines[1], bob, "I receiv", base_version=1)
        saver.start()
        wait_until_another_session_waits_for_a_lock()  # the save, for the draft's
    saver.join()
    assert outcome["saved"].text_after == "I received your"
    assert not Draft.objects.filter(line=lines[1]).exists()


def test_a_draft_dropped_after_its_own_save_is_not_reported_saved(client, bob, letters, lines):
    """The browser keeps text the server did not keep, so it must not be told it did."""
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    client.force_login(bob)
    response = post_draft(client, letters, lines[1], text="I rece", base_version=1)
    assert response.json()["saved"] is False


def test_a_draft_for_a_line_merged_away_meanwhile_is_refused(bob, letters, lines):
    """The page was loaded before another reviewer merged the box away."""
    line_id = lines[1].pk
    Line.objects.filter(pk=line_id).delete()
    with pytest.raises(actions.ReviewError, match="no longer exists"):
        actions.do_save_draft(line_id, bob, "I rec", base_version=1)
    assert not Draft.objects.exists()


@pytest.mark.parametrize("how", ["header", "beacon's query"])
def test_a_request_from_a_page_made_for_someone_else_is_refused(client, alice, bob, lines, how):
    """bob's tab, open on a shared browser where alice has logged in since: what it sends
    would be hers (ocrreview.middleware.PageUserChanged). Her own page's requests, and
    requests naming no one (the API's, a plain form's), go through."""
    client.force_login(alice)
    url = reverse("review_draft", args=[lines[1].collection_id, lines[1].pk])
    fields = {"text": "Dear Madam", "base_version": 1}

    def send(user):
        if how == "header":
            return client.post(url, fields, headers={"X-Ocrreview-User": str(user.pk)})
        return client.post(f"{url}?as_user={user.pk}", fields)

    refused = send(bob)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("alice has logged in on this browser since")
    assert not Draft.objects.exists()
    assert send(alice).status_code == 200
    assert client.post(url, fields).status_code == 200
    assert Draft.objects.get().user == alice
