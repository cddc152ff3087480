"""Find and replace changes exactly the hits the person saw and left ticked: per hit, across
the search's result pages, in the page's form and the API; a line edited between the preview
and the replace (by another database session) is skipped and reported, never replaced with a
text nobody previewed; phrases; an empty replacement deletes, once confirmed; limits."""

import threading

import pytest
import requests
from django.db import connection
from django.urls import reverse

from ocrreview.corpus.models import CollectionEvent, Line
from ocrreview.review import actions, find_replace, search
from ocrreview.review.models import Correction
from tests import factories

S = Line.Status


def api(pk: int) -> str:
    return reverse("api_replace", args=[pk])


def page_url(pk: int) -> str:
    return reverse("collection_replace", args=[pk])


def text(line: Line) -> str:
    return Line.objects.get(pk=line.pk).text


@pytest.fixture
def mills(letters):
    """25 lines with "Stanfora mill" (more than a page of results), the last with two."""
    page = factories.make_page(factories.make_document(letters, title="Mill ledger"))
    lines = [
        factories.make_line(page, i, text=f"{i} at Stanfora mill", status=S.NEEDS_REVIEW)
        for i in range(24)
    ]
    lines.append(
        factories.make_line(
            page, 24, text="Stanfora mill and Stanfora mill again", status=S.NEEDS_REVIEW
        )
    )
    return lines


def preview(client, user, collection, **extra) -> dict:
    body = {"q": "Stanfora mill", "replacement": "Stanford mill", "all": True, "preview": True}
    response = factories.post_json(client, api(collection.pk), user, {**body, **extra})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_phrase_is_replaced_where_its_words_stand_together(client, alice, letters):
    page = factories.make_page(factories.make_document(letters))
    together = factories.make_line(page, 0, text="Mr Stanfora came")
    apart = factories.make_line(page, 1, text="Stanfora, said Mr Brown")
    response = factories.post_json(
        client,
        api(letters.pk),
        alice,
        {"q": "Mr Stanfora", "replacement": "Mr Stanford", "all": True},
    )
    assert [c["text_after"] for c in response.json()["changed"]] == ["Mr Stanford came"]
    assert (text(together), text(apart)) == ("Mr Stanford came", "Stanfora, said Mr Brown")


@pytest.mark.django_db
def test_hits_unticked_on_any_page_of_results_are_left(client, alice, letters, mills):
    first = search.search_lines(letters, "Stanfora mill")
    later = search.search_lines(
        letters, "Stanfora mill", cursor=search.encode_cursor(first.next, before=False)
    )
    on_a_later_page = later.hits[0].line
    assert on_a_later_page.pk not in {hit.line.pk for hit in first.hits}
    answer = preview(client, alice, letters)
    hits = {c["line"]: c["hits"] for c in answer["changed"]}
    assert len(hits) == 25 and [len(hits[line.pk]) for line in mills] == [1] * 24 + [2]
    assert all(hit["chosen"] for line_hits in hits.values() for hit in line_hits)
    unticked = [hits[on_a_later_page.pk][0]["id"], hits[mills[-1].pk][1]["id"]]
    # The API: all hits but those unticked, the hits being still those of the preview.
    done = factories.post_json(
        client,
        api(letters.pk),
        alice,
        {
            "q": "Stanfora mill",
            "replacement": "Stanford mill",
            "all": True,
            "unticked": unticked,
            "fingerprint": answer["fingerprint"],
        },
    ).json()
    assert len(done["changed"]) == 24 and done["skipped"] == []
    assert done["unchanged"] == [on_a_later_page.pk]
    assert text(on_a_later_page) == on_a_later_page.text
    assert text(mills[-1]) == "Stanford mill and Stanfora mill again"
    changed = [line for line in mills[:-1] if line.pk != on_a_later_page.pk]
    assert {text(line).split(" ", 1)[1] for line in changed} == {"at Stanford mill"}
    event = CollectionEvent.objects.get(event_type="text_replaced")
    assert event.extra_data["lines"] == 24


@pytest.mark.django_db
def test_the_page_replaces_the_hits_left_ticked(client, alice, letters, mills):
    client.force_login(alice)
    search_page = client.get(reverse("collection_search", args=[letters.pk]), {"q": "Stanfora"})
    assert "all hits, on every page (25 lines)" in search_page.content.decode()
    form = {"q": "Stanfora mill", "replacement": "Stanford mill", "all": "on"}
    shown = client.post(page_url(letters.pk), form).content.decode()
    assert "26 hits in 25 lines" in shown
    last = mills[-1]
    labels = [
        f'value="{last.pk}:1:0" checked aria-label="Replace hit 1 of 2 (“Stanfora mill”) in '
        f'line 25 of Mill ledger p. 1"',
        f'value="{last.pk}:1:18" checked aria-label="Replace hit 2 of 2',
        f'value="{mills[3].pk}:1:5" checked aria-label="Replace in line 4 of Mill ledger p. 1"',
    ]
    for label in labels:
        assert label in shown
    # Every hit but the first of the last line and the whole of line 4 (unticked), as the
    # checkboxes post them: only those ticked.
    ticked = [f"{line.pk}:1:{len(str(i)) + 4}" for i, line in enumerate(mills[:-1]) if i != 3]
    ticked.append(f"{last.pk}:1:18")
    done = client.post(page_url(letters.pk), {**form, "all": "", "hits": ticked, "apply": "1"})
    assert done.status_code == 200
    assert "24 lines changed" in done.content.decode()
    assert text(mills[3]) == "3 at Stanfora mill" and text(mills[0]) == "0 at Stanford mill"
    assert text(last) == "Stanfora mill and Stanford mill again"
    # Nothing left ticked: nothing to do, and said so.
    nothing = client.post(page_url(letters.pk), {**form, "all": "", "apply": "1"})
    assert nothing.status_code == 400
    assert "Every hit is unticked" in nothing.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_line_edited_by_someone_else_between_preview_and_replace_is_skipped_and_reported(
    client, alice, bob, letters, mills
):
    answer = preview(client, alice, letters)
    ticked = [hit["id"] for change in answer["changed"] for hit in change["hits"]]

    def bob_saves():
        # Another database session, committed before alice confirms.
        try:
            actions.do_save_line(mills[0], bob, "0 at Stanfora mill pond", expected_version=1)
        finally:
            connection.close()

    other = threading.Thread(target=bob_saves)
    other.start()
    other.join()
    assert text(mills[0]) == "0 at Stanfora mill pond"
    done = factories.post_json(
        client,
        api(letters.pk),
        alice,
        {"q": "Stanfora mill", "replacement": "Stanford mill", "hits": ticked},
    ).json()
    # The line still holds the words, at the place previewed: left all the same, since alice
    # never saw its new text.
    assert [(s["line"], s["reason"]) for s in done["skipped"]] == [(mills[0].pk, "changed")]
    assert len(done["changed"]) == 24
    assert text(mills[0]) == "0 at Stanfora mill pond"
    assert not Correction.objects.filter(user=alice, line_id=mills[0].pk).exists()
    # The page says so, with the line.
    client.force_login(alice)
    again = client.post(
        page_url(letters.pk),
        {"q": "Stanfora mill", "replacement": "Stanford mill", "hits": ticked[:1], "apply": "1"},
    ).content.decode()
    assert "Skipped (1)" in again and "the line changed since the preview" in again
    # Asked again, as the line is now.
    assert "Preview the 1 changed line again" in again
    fresh = client.post(
        page_url(letters.pk),
        {"q": "Stanfora mill", "replacement": "Stanford mill", "line_ids": [mills[0].pk]},
    ).content.decode()
    assert f'name="hits" value="{mills[0].pk}:2:5" checked' in fresh
    assert "</label> pond</td>" in fresh


@pytest.mark.django_db
def test_hits_that_are_not_the_previews_are_skipped_not_guessed(client, alice, letters, mills):
    # Line 0's hit starts at 5; the request names 3, at the version previewed.
    done = factories.post_json(
        client,
        api(letters.pk),
        alice,
        {
            "q": "Stanfora mill",
            "replacement": "Stanford mill",
            "hits": [f"{mills[0].pk}:1:3", f"{mills[1].pk}:1:5"],
        },
    ).json()
    assert [(s["line"], s["reason"]) for s in done["skipped"]] == [(mills[0].pk, "hits_changed")]
    assert [c["line"] for c in done["changed"]] == [mills[1].pk]
    assert text(mills[0]) == "0 at Stanfora mill"


@pytest.mark.django_db
def test_an_empty_replacement_deletes_once_confirmed(client, alice, letters):
    page = factories.make_page(factories.make_document(letters))
    line = factories.make_line(page, 0, text="Dear Sir Sir, thank you")
    body = {"q": "Sir", "replacement": "", "all": True}
    shown = factories.post_json(client, api(letters.pk), alice, {**body, "preview": True}).json()
    assert shown["changed"][0]["text_after"] == "Dear, thank you"
    refused = factories.post_json(client, api(letters.pk), alice, body)
    assert refused.status_code == 400 and "confirm_delete" in refused.json()["fields"]
    assert text(line) == "Dear Sir Sir, thank you"
    # The page asks in so many words, and will not apply without it.
    client.force_login(alice)
    form = {"q": "Sir", "replacement": "", "all": "on"}
    html = client.post(page_url(letters.pk), form).content.decode()
    assert "is <strong>deleted</strong>" in html and 'name="confirm_delete" required' in html
    hit = shown["changed"][0]["hits"][1]["id"]
    unconfirmed = client.post(
        page_url(letters.pk), {"q": "Sir", "replacement": "", "hits": hit, "apply": "1"}
    )
    assert unconfirmed.status_code == 400 and "confirm the deletion" in unconfirmed.content.decode()
    assert text(line) == "Dear Sir Sir, thank you"
    confirmed = client.post(
        page_url(letters.pk),
        {"q": "Sir", "replacement": "", "hits": hit, "apply": "1", "confirm_delete": "on"},
    )
    assert "1 line changed" in confirmed.content.decode()
    assert text(line) == "Dear Sir, thank you"
    # A line that would be left empty is skipped.
    bare = factories.make_line(page, 1, text="Sir")
    done = factories.post_json(
        client,
        api(letters.pk),
        alice,
        {**body, "line_ids": [bare.pk], "all": False, "confirm_delete": True},
    ).json()
    assert [(s["line"], s["reason"]) for s in done["skipped"]] == [(bare.pk, "empty")]


@pytest.mark.django_db
def test_case_and_accents_as_typed(client, alice, letters):
    page = factories.make_page(factories.make_document(letters))
    lines = [factories.make_line(page, i, text=t) for i, t in enumerate(["l'Église", "une église"])]
    body = {"q": "Église", "replacement": "Eglise", "all": True}
    folded = factories.post_json(client, api(letters.pk), alice, {**body, "preview": True}).json()
    assert [c["line"] for c in folded["changed"]] == [line.pk for line in lines]
    cased = factories.post_json(client, api(letters.pk), alice, {**body, "match_case": True}).json()
    assert [c["text_after"] for c in cased["changed"]] == ["l'Eglise"]
    assert text(lines[1]) == "une église"


@pytest.mark.django_db
def test_limits_count_the_lines_of_the_hits_and_the_hits(
    client, alice, bob, letters, mills, monkeypatch
):
    monkeypatch.setattr(find_replace, "REVIEWER_MAX_LINES", 3)
    hits = [f"{line.pk}:1:{len(str(i)) + 4}" for i, line in enumerate(mills[:4])]
    refused = factories.post_json(
        client, api(letters.pk), bob, {"q": "Stanfora mill", "replacement": "x", "hits": hits}
    )
    assert refused.status_code == 400 and "at most 3 lines" in refused.json()["error"]
    monkeypatch.setattr(find_replace, "MAX_HITS", 10)
    client.force_login(alice)
    too_many = client.post(
        page_url(letters.pk), {"q": "Stanfora mill", "replacement": "x", "all": "on"}
    )
    assert too_many.status_code == 400
    assert "at most 10 hits" in too_many.content.decode()


@pytest.mark.django_db
def test_a_confirmation_of_more_than_a_thousand_hits_is_taken(client, alice, letters):
    """Django refuses a form post of over 1,000 fields unless told; one checkbox a hit."""
    page = factories.make_page(factories.make_document(letters))
    Line.objects.bulk_create(
        Line(
            page=page,
            order=i,
            collection=letters,
            document=page.document,
            text="ab ab ab ab",
            bbox=[0, 0, 1, 1],
        )
        for i in range(300)
    )
    client.force_login(alice)
    form = {"q": "ab", "replacement": "cd", "all": "on"}
    shown = client.post(page_url(letters.pk), form).content.decode()
    assert "1200 hits in 300 lines" in shown
    ticked = [
        f"{pk}:1:{start}"
        for pk in Line.objects.filter(page=page).values_list("pk", flat=True)
        for start in (0, 3, 6, 9)
    ]
    done = client.post(
        page_url(letters.pk), {"q": "ab", "replacement": "cd", "hits": ticked, "apply": "1"}
    )
    assert done.status_code == 200 and "300 lines changed" in done.content.decode()
    assert set(Line.objects.filter(page=page).values_list("text", flat=True)) == {"cd cd cd cd"}


@pytest.mark.django_db
def test_the_results_page_counts_lines_with_hits_and_stops_reading_at_a_bound(
    client, alice, letters, mills, monkeypatch
):
    page = factories.make_page(factories.make_document(letters, title="Other"))
    # The search finds both words; the phrase is not there.
    factories.make_line(page, 0, text="mill by Stanfora")
    client.force_login(alice)
    url = reverse("collection_search", args=[letters.pk])
    html = client.get(url, {"q": "Stanfora mill"}).content.decode()
    assert "all hits, on every page (25 lines)" in html
    monkeypatch.setattr(find_replace, "COUNT_READ_MOST", 10)
    html = client.get(url, {"q": "Stanfora mill"}).content.decode()
    assert (
        '<input type="checkbox" name="all" checked> all hits, on every page (the preview counts them)'
        in html
    )


@pytest.mark.django_db(transaction=True)
def test_all_but_the_unticked_is_refused_where_the_hits_changed_since_the_preview(
    client, alice, bob, letters, mills
):
    answer = preview(client, alice, letters)
    unticked = [answer["changed"][0]["hits"][0]["id"]]

    def bob_writes():
        # Another session: a new line with the words, and one line fixed.
        try:
            factories.make_line(mills[0].page, 30, text="Stanfora mill pond")
            actions.do_save_line(mills[5], bob, "5 at Stanford mill", expected_version=1)
        finally:
            connection.close()

    other = threading.Thread(target=bob_writes)
    other.start()
    other.join()
    body = {
        "q": "Stanfora mill",
        "replacement": "Stanford mill",
        "all": True,
        "unticked": unticked,
        "fingerprint": answer["fingerprint"],
    }
    refused = factories.post_json(client, api(letters.pk), alice, body)
    assert refused.status_code == 409 and "preview again" in refused.json()["error"]
    assert not Correction.objects.filter(user=alice).exists()
    assert not CollectionEvent.objects.filter(event_type="text_replaced").exists()
    # Previewed again, the new hits are seen, and the replace goes on.
    again = preview(client, alice, letters)
    assert len(again["changed"]) == 25 and again["fingerprint"] != answer["fingerprint"]
    done = factories.post_json(
        client, api(letters.pk), alice, {**body, "fingerprint": again["fingerprint"]}
    )
    assert done.status_code == 200 and len(done.json()["changed"]) == 24
    malformed = factories.post_json(client, api(letters.pk), alice, {**body, "fingerprint": "x"})
    assert malformed.status_code == 400 and "fingerprint" in malformed.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field",
    [
        {"line_ids": ["9" * 5000]},
        {"line_ids": [1], "versions": ["9" * 5000]},
        {"hits": ["9" * 5000 + ":1:0"]},
        {"hits": ["1:" + "9" * 5000 + ":0"]},
    ],
)
def test_numbers_too_long_for_int_are_refused_not_a_500(client, alice, letters, mills, field):
    body = {"q": "Stanfora mill", "replacement": "Stanford mill", **field}
    refused = factories.post_json(client, api(letters.pk), alice, body)
    assert refused.status_code == 400
    client.force_login(alice)
    assert client.post(page_url(letters.pk), {**body, "apply": "1"}).status_code == 400
    assert text(mills[0]) == "0 at Stanfora mill"


def over_http(live_server, collection, user, body: dict) -> requests.Response:
    """A POST to the replace API as a client sends it: JSON over a socket, with a token."""
    return requests.post(
        live_server.url + api(collection.pk),
        json=body,
        headers=factories.token_headers(user),
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_a_fingerprint_of_a_preview_with_unticked_hits_applies_when_nothing_changed(
    live_server, alice, letters, mills
):
    """The fingerprint was of the lines that changed: a preview that unticked a line's only hit
    left that line out, the replace's check (every hit ticked) took it in, and every such
    replace was a 409."""
    body = {"q": "Stanfora mill", "replacement": "Stanford mill", "all": True}
    first = over_http(live_server, letters, alice, {**body, "preview": True}).json()
    hits = {c["line"]: c["hits"] for c in first["changed"]}
    unticked = [hits[mills[3].pk][0]["id"], hits[mills[-1].pk][0]["id"]]
    shown = over_http(
        live_server, letters, alice, {**body, "preview": True, "unticked": unticked}
    ).json()
    assert mills[3].pk in shown["unchanged"] and len(shown["changed"]) == 24
    # Ticked or not, the hits found are those of the first preview: one fingerprint.
    assert shown["fingerprint"] == first["fingerprint"]
    done = over_http(
        live_server,
        letters,
        alice,
        {**body, "unticked": unticked, "fingerprint": shown["fingerprint"]},
    )
    assert done.status_code == 200, done.text
    answer = done.json()
    assert len(answer["changed"]) == 24 and answer["skipped"] == []
    assert answer["unchanged"] == [mills[3].pk]
    assert text(mills[3]) == "3 at Stanfora mill" and text(mills[0]) == "0 at Stanford mill"
    assert text(mills[-1]) == "Stanfora mill and Stanford mill again"


@pytest.mark.django_db(transaction=True)
def test_a_fingerprint_of_a_preview_with_unticked_hits_is_refused_when_a_line_changed(
    live_server, alice, bob, letters, mills
):
    body = {"q": "Stanfora mill", "replacement": "Stanford mill", "all": True}
    first = over_http(live_server, letters, alice, {**body, "preview": True}).json()
    unticked = [first["changed"][3]["hits"][0]["id"]]
    shown = over_http(
        live_server, letters, alice, {**body, "preview": True, "unticked": unticked}
    ).json()
    # bob's save keeps the words where they were: only the line's version tells.
    actions.do_save_line(mills[7], bob, "7 at Stanfora mill pond", expected_version=1)
    refused = over_http(
        live_server,
        letters,
        alice,
        {**body, "unticked": unticked, "fingerprint": shown["fingerprint"]},
    )
    assert refused.status_code == 409 and "preview again" in refused.json()["error"]
    assert not Correction.objects.filter(user=alice).exists()
    assert text(mills[0]) == "0 at Stanfora mill"
    # So is a line whose only hit was unticked, changed since.
    again = over_http(
        live_server, letters, alice, {**body, "preview": True, "unticked": unticked}
    ).json()
    actions.do_save_line(mills[3], bob, "3 at Stanfora mill pond", expected_version=1)
    refused = over_http(
        live_server,
        letters,
        alice,
        {**body, "unticked": unticked, "fingerprint": again["fingerprint"]},
    )
    assert refused.status_code == 409
    assert not Correction.objects.filter(user=alice).exists()
