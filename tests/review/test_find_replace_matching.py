"""Find and replace's hits, the one function its preview and its replace both read: phrases of
whole words, accents, ſ and case folded as the search folds them or matched as typed, hits that
would overlap, `or` and `-word`; and what an empty replacement leaves of a line's spaces."""

import pytest

from ocrreview.review.find_replace import Options, Pattern, replaced


def found(q: str, text: str, options: Options | None = None) -> list[str]:
    return [text[start:end] for start, end in Pattern(q, options or Options()).hits(text)]


def test_a_phrase_is_its_words_side_by_side_not_each_wherever_it_is():
    text = "Mr John  Smith and john smith, John Smithson met Smith John"
    assert found("John Smith", text) == ["John  Smith", "john smith"]
    assert found('"John Smith"', text) == ["John  Smith", "john smith"]
    # Punctuation between the words breaks the phrase; in the query it is part of it.
    assert found("Smith John", "Smith, John") == []
    assert found("Smith, John", "Smith, John") == ["Smith, John"]


def test_whole_words_only():
    assert found("Smith", "Smithson Smith's Goldsmith Smith-Jones") == ["Smith", "Smith"]
    assert found("Stancord's", "the Stancord's house") == ["Stancord's"]


def test_accents_long_s_and_case_are_folded_as_the_search_folds_them_unless_asked():
    text = "A Meſſieurs les MESSIEURS, Messieurs"
    assert found("Messieurs", text) == ["Meſſieurs", "MESSIEURS", "Messieurs"]
    assert found("Messieurs", text, Options(match_case=True)) == ["Meſſieurs", "Messieurs"]
    assert found("Messieurs", text, Options(match_accents=True)) == ["MESSIEURS", "Messieurs"]
    assert found("Messieurs", text, Options(True, True)) == ["Messieurs"]
    assert found("decede", "il est décédé hier") == ["décédé"]
    assert found("église", "une eglise, l'Église") == ["eglise", "Église"]
    assert found("église", "une eglise, l'Église", Options(match_accents=True)) == ["Église"]


def test_unicode_a_hit_keeps_its_combining_marks_and_ligatures():
    # A mark with no precomposed letter stays after its letter, and is the hit's.
    assert found("que", "q\u0303ue dixit que") == ["q\u0303ue", "que"]
    assert found("que", "q\u0303ue dixit que", Options(match_accents=True)) == ["que"]
    # ﬁ is f and i, folded: the whole ligature is in the hit.
    assert found("fin", "la ﬁn finale") == ["ﬁn"]
    # A query typed decomposed finds the line's NFC text.
    assert found("de\u0301ce\u0301de\u0301", "il est décédé", Options(match_accents=True)) == [
        "décédé"
    ]
    # Other scripts' words are words too.
    assert found("Москва", "в Москве, Москва") == ["Москва"]


def test_hits_never_overlap_and_the_longest_alternative_wins_at_one_place():
    assert found("la la", "la la la la la") == ["la la", "la la"]
    assert found("John or John Smith", "John Smith John") == ["John Smith", "John"]
    assert found("Smith Jones or John Smith", "John Smith Jones") == ["John Smith"]


def test_or_and_excluded_words():
    assert found("Stanfora or Stancord", "Stanfora and Stancord") == ["Stanfora", "Stancord"]
    # Quoted, `or` is a word of the phrase.
    assert found('"for or against"', "for or against it") == ["for or against"]
    # A line with an excluded word has no hit, folded as the search excludes it.
    assert found("Smith -draft", "Smith draft") == []
    assert found("Smith -eglise", "Smith, église") == []
    assert found("Smith -eglise", "Smith x") == ["Smith"]
    assert Pattern("-Smith").alternatives == []


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("Mr Smith came", "Mr came"),
        ("Smith and Jones", "and Jones"),
        ("John Smith", "John"),
        ("Mr Smith, Esq", "Mr, Esq"),
        ("Mr Smith. Then", "Mr. Then"),
        ("Smith Smith x", "x"),
        ("a  Smith  b", "a  b"),
        ("(Smith) x", "() x"),
        ("x Smith Smith", "x"),
        ("Smith", ""),
    ],
)
def test_an_empty_replacement_deletes_a_word_and_one_of_its_spaces(text, after):
    assert replaced(text, Pattern("Smith").hits(text), "") == after


def test_only_the_spans_given_are_replaced():
    text = "Smith and Smith and Smith"
    hits = Pattern("Smith").hits(text)
    assert replaced(text, [hits[0], hits[2]], "Smyth") == "Smyth and Smith and Smyth"
    assert replaced(text, [hits[1]], "") == "Smith and and Smith"
    assert replaced(text, [], "") == text


def test_a_spacing_accent_is_itself_never_a_space():
    text = "dixit q´ uod q b, q´"
    assert found("q´", text) == ["q´", "q´"]
    assert found("´", "a b ´") == ["´"]
    hits = Pattern("q´", Options()).hits(text)
    assert replaced(text, hits, "que") == "dixit que uod q b, que"
