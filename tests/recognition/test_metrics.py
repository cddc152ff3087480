import pytest

from recognition.metrics import cer, character_edits, wer


def test_cer_is_total_edits_over_total_reference_characters() -> None:
    refs = ["a", "abcdefghij"]
    hyps = ["b", "abcdefghij"]
    # A mean of per-line CERs would give (1.0 + 0.0) / 2 = 0.5.
    assert cer(refs, hyps) == pytest.approx(1 / 11)


def test_the_character_edits_are_what_the_cer_divides() -> None:
    refs, hyps = [" abc ", "de", ""], ["abd", "d", "xy"]
    edits, characters = character_edits(refs, hyps)
    assert (edits, characters) == (4, 5)
    assert cer(refs, hyps) == edits / characters


def test_wer_is_corpus_level() -> None:
    refs = ["one", "two three four five"]
    hyps = ["uno", "two three four five"]
    assert wer(refs, hyps) == pytest.approx(1 / 5)


def test_perfect_and_empty_hypotheses() -> None:
    assert cer(["abc"], ["abc"]) == 0.0
    assert cer(["abc", "de"], ["", ""]) == pytest.approx(1.0)


def test_empty_reference_line_counts_insertions() -> None:
    assert cer(["", "ab"], ["x", "ab"]) == pytest.approx(0.5)


def test_mismatched_or_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="hypotheses"):
        cer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no lines"):
        wer([], [])
    with pytest.raises(ValueError, match="empty"):
        cer([""], ["x"])
