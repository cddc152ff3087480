"""Text rules shared by the engine's readings and the platform's imports (no torch here)."""

import unicodedata

# Unicode categories that end a line: control characters (line breaks, tabs) and the line
# and paragraph separators.
BREAKING = {"Cc", "Zl", "Zp"}


def one_line(text: str) -> str:
    """A line's text is one line: a line break, a tab or any other control character, and
    the line and paragraph separators (U+2028, U+2029), become a space, one for one, so
    character offsets into the text still fit."""
    return "".join(" " if unicodedata.category(c) in BREAKING else c for c in text)


def nfc(text: str) -> str:
    # One spelling per character, so "ä" typed two ways counts as the same text in exports.
    return unicodedata.normalize("NFC", text)
