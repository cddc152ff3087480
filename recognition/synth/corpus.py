"""Text for synthetic lines: the project's own prose plus generated archival vocabulary.

Lines mix running prose (so the decoder learns English), shuffled dictionary words (so it must read
rather than guess from context) and archival material: dates, sums of money, names, abbreviations.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

CORPUS_PATH = Path(__file__).with_name("corpus.txt")
DICTIONARY_PATH = Path(
    "/usr/share/dict/words"
)  # Debian package wamerican, see requirements-apt.txt

MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]  # fmt: skip
MONTH_ABBREVIATIONS = [
    "Jan", "Jany", "Feb", "Mch", "Mar", "Apr", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec",
]  # fmt: skip
ABBREVIATIONS = [
    "inst.", "ult.", "prox.", "Esq.", "Mr.", "Mrs.", "Dr.", "Prof.", "Rev.", "Hon.", "Univ.",
    "Co.", "Bros.", "St.", "Ave.", "No.", "Jr.", "Sr.", "viz.", "etc.", "&c.", "do.", "recd",
    "yrs", "Yr", "obt", "servt", "Messrs.", "Capt.", "Col.", "Gen.", "Supt.", "Secy", "Treas.",
    "acct", "bal.", "P.S.", "N.B.", "A.M.", "P.M.", "a.m.", "p.m.", "Cal.", "N.Y.", "Mass.",
]  # fmt: skip
FIRST_NAMES = [
    "John", "William", "James", "George", "Charles", "Thomas", "Henry", "Edward", "Samuel",
    "Frederick", "Mary", "Anna", "Elizabeth", "Margaret", "Sarah", "Jane", "Emma", "Alice",
    "Leland", "David", "Horace", "Ellen", "Clara", "Harriet", "Walter", "Arthur", "Louisa",
]  # fmt: skip
SURNAMES = [
    "Smith", "Jordan", "Branner", "Whitman", "Carter", "Hopkins", "Crocker", "Huntington",
    "Fletcher", "Morrison", "Kellogg", "Ashley", "Davenport", "McKenzie", "O'Brien", "Lowell",
    "Prescott", "Baldwin", "Sherman", "Wheeler", "Quincy", "Vaughan", "Young", "Ingersoll",
]  # fmt: skip
PUNCTUATION = [".", ",", ";", ":", "!", "?", " -", "'s", ")", '"']


@lru_cache(maxsize=1)
def prose_words() -> tuple[str, ...]:
    lines = CORPUS_PATH.read_text(encoding="utf-8").splitlines()
    return tuple(" ".join(ln for ln in lines if ln and not ln.startswith("#")).split())


@lru_cache(maxsize=1)
def dictionary_words() -> tuple[str, ...]:
    """Dictionary words when the system has them, else the corpus vocabulary."""
    words: set[str] = {re.sub(r"[^\w'-]", "", w) for w in prose_words()}
    if DICTIONARY_PATH.exists():
        for word in DICTIONARY_PATH.read_text(encoding="utf-8", errors="ignore").split():
            if word.isascii() and word.isalpha():
                words.add(word)
    return tuple(sorted(w for w in words if w))


def date(rng: random.Random) -> str:
    day, year = rng.randint(1, 31), rng.randint(1780, 1935)
    month_number = rng.randint(1, 12)
    forms = [
        f"{MONTHS[month_number - 1]} {day}, {year}",
        f"{rng.choice(MONTH_ABBREVIATIONS)} {day} - {year}",
        f"{rng.choice(MONTH_ABBREVIATIONS)}. {day}th {year}",
        f"{day}/{month_number}/{year % 100:02d}",
        f"{month_number}-{day}-{year}",
        f"the {day}th of {MONTHS[month_number - 1]}",
        f"{day} {MONTHS[month_number - 1]} {year}",
    ]
    return rng.choice(forms)


def money(rng: random.Random) -> str:
    pounds, shillings, pence = rng.randint(0, 999), rng.randint(0, 19), rng.randint(0, 11)
    dollars, cents = rng.choice([rng.randint(0, 99), rng.randint(0, 9999)]), rng.randint(0, 99)
    forms = [
        f"£{pounds} {shillings}s {pence}d",
        f"£{pounds}.{shillings}.{pence}",
        f"${dollars}.{cents:02d}",
        f"${dollars:,}",
        f"{dollars} dollars",
        f"{shillings}/{pence}",
        f"{cents}¢",
        f"${dollars}.{cents:02d} recd",
    ]
    return rng.choice(forms)


def name(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    initial = rng.choice("ABCDEFGHJKLMNPRSTW")
    forms = [
        f"{first} {last}",
        f"{first[0]}. {initial}. {last}",
        f"{rng.choice(['Mr.', 'Mrs.', 'Dr.', 'Prof.', 'Rev.', 'Miss'])} {last}",
        f"{first} {initial}. {last}, Esq.",
        f"Messrs. {last} & {rng.choice(SURNAMES)}",
    ]
    return rng.choice(forms)


def number(rng: random.Random) -> str:
    forms = [
        str(rng.randint(0, 99)),
        str(rng.randint(100, 99999)),
        f"No. {rng.randint(1, 999)}",
        f"{rng.randint(1, 9)}.{rng.randint(0, 99)}",
        f"({rng.randint(1, 40)})",
        f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}",
        f"{rng.randint(1, 99)}%",
    ]
    return rng.choice(forms)


ARCHIVAL: tuple[Callable[[random.Random], str], ...] = (
    date,
    money,
    name,
    number,
    lambda rng: rng.choice(ABBREVIATIONS),
)


def _prose(rng: random.Random, target: int) -> list[str]:
    words = prose_words()
    start = rng.randrange(len(words))
    return [words[(start + i) % len(words)] for i in range(max(1, target // 5 + 2))]


def _shuffled_words(rng: random.Random, target: int) -> list[str]:
    words = dictionary_words()
    out = []
    for _ in range(max(1, target // 5 + 2)):
        word = rng.choice(words)
        if rng.random() < 0.15:
            word = word.capitalize()
        if rng.random() < 0.12:
            word += rng.choice(PUNCTUATION)
        out.append(word)
    return out


def _archival(rng: random.Random, target: int) -> list[str]:
    out: list[str] = []
    while sum(len(w) + 1 for w in out) < target:
        if rng.random() < 0.5:
            out.append(rng.choice(ARCHIVAL)(rng))
        else:
            out.extend(_shuffled_words(rng, 6))
    return out


def _fit(tokens: list[str], target: int, max_chars: int) -> str:
    """Join whole words up to about `target` characters, never beyond `max_chars`."""
    text = ""
    for token in tokens:
        candidate = f"{text} {token}" if text else token
        if len(candidate) > max_chars or (text and len(candidate) > target):
            break
        text = candidate
    return text or tokens[0][:max_chars]


def sample_text(rng: random.Random, max_chars: int, min_chars: int = 1) -> str:
    """One line of text of about uniform length in [min_chars, max_chars]."""
    target = rng.randint(min(min_chars, max_chars), max_chars)
    kind = rng.random()
    if kind < 0.35:
        tokens = _prose(rng, target)
    elif kind < 0.7:
        tokens = _shuffled_words(rng, target)
    else:
        tokens = _archival(rng, target)
    text = _fit(tokens, target, max_chars)
    if rng.random() < 0.05:
        text = text.upper()
    return text
