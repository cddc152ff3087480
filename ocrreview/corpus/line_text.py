"""A line's text as every path into the database keeps it: the editor and the API refuse
what breaks these rules (a person can fix it); imports from files mend what they can."""

import unicodedata

from recognition.text import nfc, one_line

MAX_TEXT_LENGTH = 2000


def typed_line_text(text: str) -> str:
    """A line's text as a person typed it (the editor, the API): a tab pasted from a table
    becomes a space and invisible marks go, as on import, since nobody can see them to remove
    them; a line break or another control character is refused (ValueError), which the person
    can see and fix. NFC."""
    text = text.replace("\t", " ").translate(INVISIBLE)
    if len(f"{text}.".splitlines()) > 1:  # every character that ends a line, U+2028 too
        raise ValueError("A line's text is one line: it cannot contain line breaks.")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("The text contains control characters; remove them and save again.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"A line's text is at most {MAX_TEXT_LENGTH} characters.")
    return nfc(text)


# Invisible marks that text pasted from PDFs and web editions carries (a zero-width space,
# a soft hyphen, a byte order mark, a word joiner): they split the word for search and the
# model while the reviewer sees nothing. Joiners that scripts need (U+200C, U+200D) stay.
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u00ad\ufeff\u2060"))


def imported_line_text(text: str) -> str:
    """A line's text read from a file (PAGE, ALTO, a dataset): one line (a line break or tab
    becomes a space; the text export writes a line a line), no control characters, no
    invisible marks, NFC. ValueError when it is longer than a line's text may be."""
    mended = nfc(one_line(text.translate(INVISIBLE)).strip())
    if len(mended) > MAX_TEXT_LENGTH:
        raise ValueError(
            f"a line's text is at most {MAX_TEXT_LENGTH} characters (this one has {len(mended)})"
        )
    return mended
