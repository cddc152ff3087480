"""Character diffs for a line's history: short texts, so a character-level diff reads best.

A character is what a reader sees as one (a grapheme cluster): "q̃" is a q and a combining
tilde, with no precomposed form, and a diff that kept the q and swapped the tilde would draw
the tilde on nothing."""

from collections.abc import Sequence
from difflib import SequenceMatcher
from itertools import groupby

import regex

# SequenceMatcher without its junk heuristic takes time cubic in the length of repetitive
# text: 2,000 characters of "abab…" against "aaaa…" take about a minute, so one save would
# cost every later look at the history that much. Past this many character pairs in the part
# that changed (about two rewritten lines of 140 characters, some 30 ms at worst), it is
# matched word by word, and past as many pairs of words shown whole.
MAX_COMPARED_PAIRS = 20_000


def diff_spans(before: str, after: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind "same", "del" or "ins", in reading order."""
    before_chars, after_chars = _CHARACTERS.findall(before), _CHARACTERS.findall(after)
    head = 0
    while (
        head < min(len(before_chars), len(after_chars)) and before_chars[head] == after_chars[head]
    ):
        head += 1
    tail = 0
    while (
        tail < min(len(before_chars), len(after_chars)) - head
        and before_chars[len(before_chars) - 1 - tail] == after_chars[len(after_chars) - 1 - tail]
    ):
        tail += 1
    old = before_chars[head : len(before_chars) - tail]
    new = after_chars[head : len(after_chars) - tail]
    spans: list[tuple[str, str]] = [("same", "".join(before_chars[:head]))]
    if len(old) * len(new) <= MAX_COMPARED_PAIRS:
        spans += _matched_spans(old, new)
    else:
        # A long line changed at both ends: word by word, the words between stay as they were.
        old_words, new_words = _words(old), _words(new)
        if len(old_words) * len(new_words) <= MAX_COMPARED_PAIRS:
            spans += _matched_spans(old_words, new_words)
        else:
            spans += [("del", "".join(old)), ("ins", "".join(new))]
    spans.append(("same", "".join(before_chars[len(before_chars) - tail :])))
    return [(kind, text) for kind, text in spans if text]


_CHARACTERS = regex.compile(r"\X")


def _words(characters: list[str]) -> list[str]:
    """The runs of spaces and of other characters; a mark after a space stays with it."""
    return ["".join(run) for _, run in groupby(characters, key=lambda c: c[0].isspace())]


def _matched_spans(before: Sequence[str], after: Sequence[str]) -> list[tuple[str, str]]:
    """Spans of two lists of characters, or of words."""
    spans: list[tuple[str, str]] = []
    matcher = SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            spans.append(("same", "".join(before[a0:a1])))
            continue
        if op in ("delete", "replace"):
            spans.append(("del", "".join(before[a0:a1])))
        if op in ("insert", "replace"):
            spans.append(("ins", "".join(after[b0:b1])))
    return spans
