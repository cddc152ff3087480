"""The line editor page: the line, its unsure characters, its alternatives, its draft."""

import re

from django.urls import reverse

from ocrreview.review import actions, queue


def editor(client, collection, line):
    return client.get(reverse("review_line", args=[collection.pk, line.pk]))


def test_the_editor_shows_the_line_its_alternatives_and_palette(client, bob, letters, lines):
    client.force_login(bob)
    response = editor(client, letters, lines[1])
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="I recieved your"' in page
    assert reverse("review_line_image", args=[letters.pk, lines[1].pk]) in page
    assert "I received your" in page and "35%" in page
    assert "Alt+1" in page and "Alt+3" in page
    assert 'data-char="ſ"' in page and 'data-char="æ"' in page
    assert 'aria-label="latin small letter long s"' in page  # read as nothing, or as "s"
    assert "Keyboard shortcuts" in page
    assert f'data-next-url="{reverse("review_line", args=[letters.pk, lines[2].pk])}' in page


def test_the_palette_keeps_a_letter_with_its_combining_mark(client, bob, letters, lines):
    """q̃, p̄ and m̄ have no precomposed forms: split by code point they became a bare letter
    and a floating mark, and ſ became Alt+Shift+7 instead of 4."""
    letters.special_characters = "q\u0303 p\u0304 m\u0304 ſ ſ \u0303"
    letters.save()
    client.force_login(bob)
    page = editor(client, letters, lines[1]).content.decode()
    keys = re.findall(r'data-char="([^"]*)" aria-label="[^"]*"(?: title="([^"]*)")?', page)
    assert keys == [
        ("q\u0303", "Alt+Shift+1"),
        ("p\u0304", "Alt+Shift+2"),
        ("m\u0304", "Alt+Shift+3"),
        ("ſ", "Alt+Shift+4"),
        ("\u0303", "Alt+Shift+5"),  # typed after a space: a mark for the letter before the caret
    ]
    assert 'aria-label="latin small letter q combining tilde"' in page


def test_unsure_characters_are_marked_from_token_probabilities(client, bob, letters, lines):
    client.force_login(bob)
    page = editor(client, letters, lines[1]).content.decode()
    assert '<span class="low">recieved</span>' in page
    assert '<span class="mid">your</span>' in page


def test_marked_spans_cut_the_text_by_token_confidence():
    tokens = [
        {"start": 0, "end": 2, "prob": 0.99},
        {"start": 2, "end": 4, "prob": 0.3},
        {"start": 4, "end": 6, "prob": 0.6},
        {"start": 99, "end": 120, "prob": 0.1},
        {"start": "bad"},
    ]
    spans = queue.marked_spans("abcdef", tokens)
    assert [(s.text, s.level) for s in spans] == [("ab", ""), ("cd", "low"), ("ef", "mid")]


def test_a_letter_and_its_combining_mark_are_marked_as_one():
    """The model's tokens count code points: one may end between q and its tilde."""
    tokens = [{"start": 0, "end": 1, "prob": 0.99}, {"start": 1, "end": 2, "prob": 0.3}]
    spans = queue.marked_spans("q\u0303ue", tokens)
    assert [(s.text, s.level) for s in spans] == [("q\u0303", "low"), ("ue", "")]
    tokens = [{"start": 0, "end": 1, "prob": 0.3}, {"start": 1, "end": 4, "prob": 0.6}]
    spans = queue.marked_spans("q\u0303ue", tokens)
    assert [(s.text, s.level) for s in spans] == [("q\u0303", "low"), ("ue", "mid")]


def test_a_server_draft_comes_back_in_the_editor(client, bob, letters, lines):
    actions.do_save_draft(lines[1], bob, "I received yo", base_version=1)
    client.force_login(bob)
    page = editor(client, letters, lines[1]).content.decode()
    assert 'data-draft-text="I received yo"' in page
    assert 'data-draft-version="1"' in page


def test_another_reviewers_draft_is_not_shown(client, alice, bob, letters, lines):
    actions.do_save_draft(lines[1], alice, "alice's words", base_version=1)
    client.force_login(bob)
    assert "alice&#x27;s words" not in editor(client, letters, lines[1]).content.decode()


def test_a_line_without_hypotheses_can_be_typed(client, bob, letters, page):
    from tests import factories

    blank = factories.make_line(page, 9, status="needs_review")
    client.force_login(bob)
    response = editor(client, letters, blank)
    assert response.status_code == 200
    assert 'class="alternatives"' not in response.content.decode()


def test_opening_a_line_whose_lease_lapsed_takes_it_over(client, alice, bob, letters, lines):
    from datetime import timedelta

    from django.utils import timezone

    from ocrreview.corpus.models import Line

    actions.do_claim_line(lines[2], alice)
    Line.objects.filter(pk=lines[2].pk).update(claimed_until=timezone.now() - timedelta(minutes=1))
    client.force_login(bob)
    page = editor(client, letters, lines[2]).content.decode()
    assert "is working on this line" not in page
    assert Line.objects.get(pk=lines[2].pk).claimed_by == bob


def test_the_line_texts_are_marked_with_the_collections_language(client, bob, letters, lines):
    """For screen readers, which otherwise read Latin or French lines in the page's English."""
    import lxml.html

    client.force_login(bob)
    assert ' lang="' not in editor(client, letters, lines[1]).content.decode().split("<body")[1]
    letters.language = "la"
    letters.save()
    actions.do_save_line(lines[1], bob, "Anno domini", expected_version=1)
    pages = {
        "editor": editor(client, letters, lines[2]),
        "page view": client.get(reverse("review_page", args=[letters.pk, lines[1].page_id])),
        "history": client.get(reverse("review_history", args=[letters.pk, lines[1].pk])),
        "search": client.get(reverse("collection_search", args=[letters.pk]), {"q": "domini"}),
    }
    marked = {
        name: {
            element.get("class") or element.get("id")
            for element in lxml.html.fromstring(response.content).xpath('//*[@lang="la"]')
        }
        for name, response in pages.items()
    }
    assert marked == {
        "editor": {"marked", "line-text", "alt-text"},
        "page view": {"pl-text"},
        "history": {"diff"},
        "search": {"snippet"},
    }


def test_the_line_confidence_and_the_alternatives_shares_are_told_apart(
    client, bob, letters, lines
):
    """Two percentages that disagree (a line at 0 % whose best reading holds 72 % of the
    alternatives) read as a contradiction when unnamed: each says what it is."""
    client.force_login(bob)
    page = editor(client, letters, lines[1]).content.decode()
    header = re.search(r'<span class="line-confidence" title="([^"]+)">([^<]+)</span>', page)
    assert header[2] == "line confidence (calibrated) 40%"
    assert "whole line is exactly this reading" in header[1]
    shares = re.findall(r'<span class="prob" title="([^"]+)">([^<]+)</span>', page)
    assert [text for _, text in shares] == [
        "share among the alternatives 40%",
        "share among the alternatives 35%",
        "share among the alternatives 10%",
    ]
    assert "not how likely the line is right" in shares[0][0]
