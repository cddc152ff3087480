"""Character diffs for a line's history: short texts, so a character-level diff reads best."""

from difflib import SequenceMatcher


def diff_spans(before: str, after: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind "same", "del" or "ins", in reading order."""
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
