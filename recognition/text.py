"""Text rules shared by the engine's readings and the platform's imports (no torch here)."""

import unicodedata


def one_line(text: str) -> str:
    """A line's text is one line: a line break, a tab or any other control character becomes
    a space, one for one, so character offsets into the text still fit."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)


def nfc(text: str) -> str:
    # One spelling per character, so "ä" typed two ways counts as the same text in exports.
    return unicodedata.normalize("NFC", text)
