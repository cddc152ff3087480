"""Corpus-level character and word error rates.

Both are total edits over total reference characters (or words) across the
corpus, as jiwer computes them for lists. A mean of per-line rates would let a
two-character line weigh as much as an eighty-character one. Texts are compared
exactly: no case folding, no punctuation or whitespace normalisation beyond
jiwer's word splitting.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    _check(refs, hyps)
    return float(jiwer.cer(list(refs), list(hyps)))


def character_edits(refs: Sequence[str], hyps: Sequence[str]) -> tuple[int, int]:
    """The character edits and reference characters whose quotient is `cer`: exact counts,
    where two error rates can round to the same figure."""
    _check(refs, hyps)
    out = jiwer.process_characters(list(refs), list(hyps))
    return (
        out.substitutions + out.deletions + out.insertions,
        out.substitutions + out.deletions + out.hits,
    )


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    _check(refs, hyps)
    return float(jiwer.wer(list(refs), list(hyps)))


def _check(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("no lines to score")
    if not any(ref.strip() for ref in refs):
        raise ValueError("every reference is empty; the error rate is undefined")
