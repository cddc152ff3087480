"""Find and replace inside words (a misread letter, ſ, a suffix) through the API and the page:
the lines come from the collection's vocabulary, not from the search's whole words; the
preview's hits are the replace's, folded as whole words are; whole words stay the default."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review import find_replace
from tests import factories


def api(pk: int) -> str:
    return reverse("api_replace", args=[pk])


def texts(lines) -> list[str]:
    return [Line.objects.get(pk=line.pk).text for line in lines]


def post(client, user, collection, **body):
    return factories.post_json(client, api(collection.pk), user, {"all": True, **body})


@pytest.fixture
def misread(letters):
    page = factories.make_page(factories.make_document(letters, title="Letter"))
    lines = [
        "tbey saw tbem there",
        "Tbe end of it",
        "the other side",
        "Meſſieurs, l'Égliſe",
        "Messieurs, l'Eglise",
        "dixit q\u0303 atq\u0303 quod",
    ]
    return [factories.make_line(page, i, text=text) for i, text in enumerate(lines)]


@pytest.mark.django_db
def test_inside_words_finds_and_replaces_a_misreading_in_lines_the_search_does_not_find(
    client, alice, letters, misread
):
    whole = post(client, alice, letters, q="tbe", replacement="the", preview=True).json()
    assert [c["line"] for c in whole["changed"]] == [misread[1].pk]
    shown = post(
        client, alice, letters, q="tbe", replacement="the", inside_words=True, preview=True
    ).json()
    assert [c["line"] for c in shown["changed"]] == [misread[0].pk, misread[1].pk]
    assert [h["text"] for h in shown["changed"][0]["hits"]] == ["tbe", "tbe"]
    assert [(h["start"], h["end"]) for h in shown["changed"][0]["hits"]] == [(0, 3), (9, 12)]
    done = post(client, alice, letters, q="tbe", replacement="the", inside_words=True).json()
    assert [c["text_after"] for c in done["changed"]] == [c["text_after"] for c in shown["changed"]]
    assert texts(misread[:3]) == ["they saw them there", "the end of it", "the other side"]


@pytest.mark.django_db
def test_long_s_inside_words_as_typed_and_folded(client, alice, letters, misread):
    # As typed: only the ſ, in the lines that have it.
    done = post(
        client, alice, letters, q="ſ", replacement="s", inside_words=True, match_accents=True
    ).json()
    assert [c["line"] for c in done["changed"]] == [misread[3].pk]
    assert len(done["changed"][0]["hits"]) == 3
    assert texts(misread[3:5]) == ["Messieurs, l'Église", "Messieurs, l'Eglise"]
    # Folded, "eglis" is in the accented word and the plain one alike, in any case.
    shown = post(
        client, alice, letters, q="eglis", replacement="EGLIS", inside_words=True, preview=True
    ).json()
    assert [c["line"] for c in shown["changed"]] == [misread[3].pk, misread[4].pk]
    assert [c["text_after"] for c in shown["changed"]] == [
        "Messieurs, l'EGLISe",
        "Messieurs, l'EGLISe",
    ]


@pytest.mark.django_db
def test_a_letter_with_a_combining_mark_inside_words(client, alice, letters, misread):
    # Accents matched, q̃ (a mark with no precomposed letter) is not q: "quod" is left.
    body = {"q": "q\u0303", "replacement": "que", "inside_words": True, "match_accents": True}
    done = post(client, alice, letters, **body).json()
    assert [c["text_after"] for c in done["changed"]] == ["dixit que atque quod"]
    # Folded, "tq" finds "tq̃" with its mark, which the replacement takes.
    line = factories.make_line(misread[0].page, 10, text="atq\u0303 et atq")
    body = {"q": "tq", "replacement": "tque", "inside_words": True, "line_ids": [line.pk]}
    done = post(client, alice, letters, **{**body, "all": False}).json()
    assert [c["text_after"] for c in done["changed"]] == ["atque et atque"]
    assert texts([line]) == ["atque et atque"]


@pytest.mark.django_db
def test_a_part_in_too_many_words_reads_every_line(client, alice, letters, misread, monkeypatch):
    monkeypatch.setattr(find_replace, "INSIDE_WORDS_MOST", 1)
    shown = post(
        client, alice, letters, q="e", replacement="E", inside_words=True, preview=True
    ).json()
    changed = {c["line"] for c in shown["changed"]}
    assert changed == {line.pk for line in misread[:5]}  # "dixit q̃ atq̃ quod" has no e
    # A part in no word of the collection is in no line.
    none = post(client, alice, letters, q="zq", replacement="x", inside_words=True, preview=True)
    assert none.json()["changed"] == []


@pytest.mark.django_db
def test_the_page_carries_inside_words_from_the_search_to_the_replace(
    client, alice, letters, misread
):
    client.force_login(alice)
    results = client.get(reverse("collection_search", args=[letters.pk]), {"q": "bem"})
    html = results.content.decode()
    # No line holds the whole word: the form is there all the same, to match inside words.
    assert "No line matches." in html and 'id="replace-form"' in html
    assert 'name="inside_words" aria-describedby="inside-words-help"' in html
    url = reverse("collection_replace", args=[letters.pk])
    form = {"q": "bem", "replacement": "hem", "all": "on", "inside_words": "on"}
    shown = client.post(url, form).content.decode()
    assert "Replace “bem” inside words with “hem”?" in shown
    assert '<input type="hidden" name="inside_words" value="on">' in shown
    hit = f"{misread[0].pk}:1:10"
    assert f'value="{hit}" checked' in shown
    done = client.post(url, {**form, "all": "", "hits": [hit], "apply": "1"})
    assert "1 line changed" in done.content.decode()
    assert texts(misread[:1]) == ["tbey saw them there"]
