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


INSIDE = Options(inside_words=True)


def test_inside_words_a_part_of_a_word_is_a_hit_and_whole_words_stay_the_default():
    text = "tbe Tbey saw tbem, other"
    assert found("tbe", text) == ["tbe"]
    assert found("tbe", text, INSIDE) == ["tbe", "Tbe", "tbe"]
    assert found("tbe", text, Options(match_case=True, inside_words=True)) == ["tbe", "tbe"]
    # A suffix, and a phrase whose ends are inside words.
    assert found("ing", "a ſpelling, singing", INSIDE) == ["ing", "ing", "ing"]
    assert found("ra mi", "Stanfora mill, Stanfora  milk", INSIDE) == ["ra mi", "ra  mi"]
    hits = Pattern("tbe", INSIDE).hits(text)
    assert replaced(text, hits, "the") == "the they saw them, other"
    # An excluded word is still a whole word, as the search leaves lines out.
    assert found("tbe -saw", text, INSIDE) == []
    assert found("tbe -sa", text, INSIDE) == ["tbe", "Tbe", "tbe"]


def test_inside_words_long_s_accents_and_case_fold_as_for_whole_words():
    text = "Meſſieurs, MESSIEURS, l'Égliſe"
    # Folded, ſ is s: "ſ" finds every s, as "s" finds every ſ; as typed, only ſ.
    assert found("ſ", text, INSIDE) == ["ſ", "ſ", "s", "S", "S", "S", "ſ"]
    asked = Options(match_accents=True, inside_words=True)
    assert found("ſ", text, asked) == ["ſ", "ſ", "ſ"]
    assert replaced(text, Pattern("ſ", asked).hits(text), "s") == "Messieurs, MESSIEURS, l'Église"
    assert found("eglis", text, INSIDE) == ["Égliſ"]
    assert found("eglis", text, asked) == []
    assert found("glis", "une église, GLISSER", INSIDE) == ["glis", "GLIS"]
    assert found("cede", "il est décédé, précédent", INSIDE) == ["cédé", "céde"]


def test_inside_words_a_hit_is_of_whole_letters_marks_and_ligatures():
    # Folded, a combining mark goes with its letter into the hit; a hit that starts after a
    # letter leaves it its marks.
    assert found("q", "q\u0303ue", INSIDE) == ["q\u0303"]
    assert found("ue", "q\u0303ue", INSIDE) == ["ue"]
    text = "dixit q\u0303ue, atq\u0303"
    hits = Pattern("q", INSIDE).hits(text)
    assert replaced(text, hits, "k") == "dixit kue, atk"
    # Accents matched, "q" is not the letter q̃, and "q̃" (typed decomposed or not) is.
    asked = Options(match_accents=True, inside_words=True)
    assert found("q", "q\u0303ue atque", asked) == ["q"]
    assert found("q\u0303", "q\u0303ue atque", asked) == ["q\u0303"]
    assert found("e\u0301", "décédé", asked) == ["é", "é", "é"]
    # ﬁ is f and i, in a hit whole or not at all: "fi" and "ﬁn" take it, "i" alone does not.
    assert found("fi", "la ﬁn", INSIDE) == ["ﬁ"]
    assert found("i", "la ﬁn, si", INSIDE) == ["i"]
    assert found("in", "ﬁn", INSIDE) == []
    assert found("2", "½ et 2", INSIDE) == ["2"]
    assert found("2", "½ et 2") == ["2"]  # whole words too: "⁄" of 1⁄2 is no letter
    # Other scripts, and their marks kept with their letters.
    assert found("скв", "в Москве", INSIDE) == ["скв"]
    assert found("ש", "שָׁלוֹם", Options(match_accents=True, inside_words=True)) == []
