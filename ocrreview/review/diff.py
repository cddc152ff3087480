"""Character diffs for a line's history: short texts, so a character-level diff reads best."""

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

# SequenceMatcher without its junk heuristic takes time cubic in the length of repetitive
# text: 2,000 characters of "abab…" against "aaaa…" take about a minute, so one save would
# cost every later look at the history that much. Past this many character pairs in the part
# that changed (about two rewritten lines of 140 characters, some 30 ms at worst), it is
# matched word by word, and past as many pairs of words shown whole.
MAX_COMPARED_PAIRS = 20_000


def diff_spans(before: str, after: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind "same", "del" or "ins", in reading order."""
    head = 0
    while head < min(len(before), len(after)) and before[head] == after[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(before), len(after)) - head
        and before[len(before) - 1 - tail] == after[len(after) - 1 - tail]
    ):
        tail += 1
    old, new = before[head : len(before) - tail], after[head : len(after) - tail]
    spans: list[tuple[str, str]] = [("same", before[:head])]
    if len(old) * len(new) <= MAX_COMPARED_PAIRS:
        spans += _matched_spans(old, new)
    else:
        # A long line changed at both ends: word by word, the words between stay as they were.
        old_words, new_words = _WORDS.findall(old), _WORDS.findall(new)
        if len(old_words) * len(new_words) <= MAX_COMPARED_PAIRS:
            spans += _matched_spans(old_words, new_words)
        else:
            spans += [("del", old), ("ins", new)]
    spans.append(("same", before[len(before) - tail :]))
    return [(kind, text) for kind, text in spans if text]


_WORDS = re.compile(r"\s+|\S+")


def _matched_spans(before: Sequence[str], after: Sequence[str]) -> list[tuple[str, str]]:
    """Spans of two texts, or of two lists of their words."""
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
