"""A line's text as every path into the database keeps it: the editor and the API refuse
what breaks these rules (a person can fix it); imports from files mend what they can."""

import unicodedata

from recognition.text import nfc, one_line

MAX_TEXT_LENGTH = 2000


def control_characters(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def imported_line_text(text: str) -> str:
    """A line's text read from a file (PAGE, ALTO, a dataset): one line (a line break or tab
    becomes a space; the text export writes a line a line), no control characters, NFC.
    ValueError when it is longer than a line's text may be."""
    mended = nfc(one_line(text).strip())
    if len(mended) > MAX_TEXT_LENGTH:
        raise ValueError(
            f"a line's text is at most {MAX_TEXT_LENGTH} characters (this one has {len(mended)})"
        )
    return mended
