"""Names people and files give, as pages, transcripts and exports show them: an uploaded file's
name, a document's or a collection's title (typed, or read from a METS file or metadata.xml)."""

import re

from ocrreview.corpus.line_text import nfc

# Characters a name can hold but no one means by it: control characters, which XML cannot
# carry (an export would write U+FFFD) and PostgreSQL refuses (NUL), unpaired surrogates and
# the noncharacters U+FFFE and U+FFFF, and the bidi controls, which show a name other than it
# is ("scan_\u202egpj.exe" shown as "scan_exe.jpg").
_UNMEANT_IN_NAMES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufeff\ufffe\uffff]"
)
# Those that look like a space, a run of which the name keeps as one: "Brief\t1873.jpg" is
# "Brief 1873.jpg", as a PAGE file's imageFilename attribute naming it reads.
_SPACES_IN_NAMES = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")


def clean_name(name: str) -> str:
    """A name as it is shown and exported: in NFC (macOS decomposes file names; an XML naming
    the file composes them), without the characters no one means in a name."""
    return nfc(_UNMEANT_IN_NAMES.sub("", _SPACES_IN_NAMES.sub(" ", name)))
