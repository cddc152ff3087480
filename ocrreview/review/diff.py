"""Character diffs for a line's history: short texts, so a character-level diff reads best."""

from difflib import SequenceMatcher

# SequenceMatcher without its junk heuristic takes time cubic in the length of repetitive
# text: 2,000 characters of "abab…" against "aaaa…" take about a minute, so one save would
# cost every later look at the history that much. Past this many character pairs in the part
# that changed (about two rewritten lines of 140 characters, some 30 ms at worst), the change
# is shown whole.
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
    if len(old) * len(new) > MAX_COMPARED_PAIRS:
        spans += [("del", old), ("ins", new)]
    else:
        spans += _matched_spans(old, new)
    spans.append(("same", before[len(before) - tail :]))
    return [(kind, text) for kind, text in spans if text]


def _matched_spans(before: str, after: str) -> list[tuple[str, str]]:
    spans: list[tuple[str, str]] = []
    matcher = SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            spans.append(("same", before[a0:a1]))
            continue
        if op in ("delete", "replace"):
            spans.append(("del", before[a0:a1]))
        if op in ("insert", "replace"):
            spans.append(("ins", after[b0:b1]))
    return spans
