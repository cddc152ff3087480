"""The README's "Reviewing" section names every shortcut the editor's and the page view's help
dialogs list: a key added to a screen and not to the guide volunteers read fails here."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELP_DIALOGS = ["templates/review/_help.html", "templates/review/_page_help.html"]


def combos(text: str, key: str) -> set[str]:
    """Keys pressed together: runs of `key`-marked keys joined by a bare "+"."""
    found = set()
    for run in re.finditer(rf"{key}(?:\+{key})*", text):
        found.add("+".join(re.findall(key, run.group(0))))
    return found


def reviewing_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Reviewing\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("dialog", HELP_DIALOGS)
def test_the_reviewing_guide_names_every_shortcut_of(dialog):
    html = (ROOT / dialog).read_text(encoding="utf-8")
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if "mac-only" not in row]
    keys = set().union(*(combos(re.split(r"</td>", row)[0], r"<kbd>(.+?)</kbd>") for row in rows))
    assert keys, f"no shortcut found in {dialog}"
    documented = combos(reviewing_section(), r"`([^`]+)`")
    assert keys - documented == set()
