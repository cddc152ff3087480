"""Find and replace's matching at scale: the hits of a query among 100,000 candidate lines, as
the search page's count and a preview read them (find_replace.Pattern.hits on each line's
text), for lines of plain ASCII and lines with accents, ſ and combining marks.

    python -m bench.find_replace [--lines 100000] [--repeat 5]

No database: the lines are made here, the same each run (seeded), about one in ten holding the
query. Prints the best of --repeat runs per kind of line and query, in CPU seconds (this
process's: the machine is shared with training, whose load moves wall times by half), then
`inside_over_whole: X.XX`, the time inside words over whole words of the same query.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ocrreview.settings")
django.setup()

from ocrreview.review.find_replace import Options, Pattern  # noqa: E402

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "that",
    "was",
    "for",
    "on",
    "with",
    "his",
    "by",
    "at",
    "from",
    "mill",
    "lane",
    "house",
    "letter",
]
ACCENTED = ["église", "décédé", "Meſſieurs", "q̃ue", "ﬁn", "père", "où", "été", "Stanfòra", "naïve"]


def make_lines(count: int, accented: bool, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocabulary = WORDS + (ACCENTED if accented else [])
    lines = []
    for _ in range(count):
        words = rng.choices(vocabulary, k=rng.randint(6, 14))
        if rng.random() < 0.1:
            words.insert(rng.randrange(len(words)), "Stanfora mill")
        lines.append(" ".join(words))
    return lines


def best_time(pattern: Pattern, lines: list[str], repeat: int) -> tuple[float, int]:
    best, hits = float("inf"), 0
    for _ in range(repeat):
        started = time.process_time()
        hits = sum(len(pattern.hits(text)) for text in lines)
        best = min(best, time.process_time() - started)
    return best, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    queries = [
        ("Stanfora mill", Options()),
        ("Stanfora mill", Options(match_case=True)),
        ("Stanfora mill", Options(inside_words=True)),
        ("tanfor", Options(inside_words=True)),
    ]
    took = {}
    for accented in (False, True):
        lines = make_lines(args.lines, accented)
        for q, options in queries:
            seconds, hits = best_time(Pattern(q, options), lines, args.repeat)
            kind = "accented" if accented else "ascii"
            took[kind, q, options] = seconds
            print(f"{kind:8} {q!r:15} {options}: {seconds:.3f} s, {hits} hits")
    inside = sum(took[k, "Stanfora mill", queries[2][1]] for k in ("ascii", "accented"))
    whole = sum(took[k, "Stanfora mill", queries[0][1]] for k in ("ascii", "accented"))
    print(f"inside_over_whole: {inside / whole:.2f}")


if __name__ == "__main__":
    main()
