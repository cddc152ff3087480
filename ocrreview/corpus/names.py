"""Names people and files give, as pages, transcripts and exports show them: an uploaded file's
name, a document's or a collection's title (typed, or read from a METS file or metadata.xml)."""

import re

from django import forms
from django.db import models

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


def holds_unmeant_characters(name: str) -> bool:
    """Whether `name` holds a character that clean_name drops or turns into a space."""
    return bool(_UNMEANT_IN_NAMES.search(name) or _SPACES_IN_NAMES.search(name))


def entered_name(name: str) -> str:
    """A name as it is stored when typed or imported: cleaned, and without the spaces at its
    ends that cleaning can leave ("\u202e Anna" is " Anna")."""
    return clean_name(name).strip()


class NameFormField(forms.CharField):
    """A name typed in a form (the admin's, a page's, the API's): stored as it is shown. One of
    only unmeant characters is refused, saying so: it would be stored as no name at all."""

    default_error_messages = {
        "no_visible_characters": "This name is only control characters, line breaks or bidi "
        "controls, which names do not keep: type a name that shows.",
    }

    def to_python(self, value) -> str:
        typed = super().to_python(value)
        name = entered_name(typed)
        if typed and not name:
            raise forms.ValidationError(
                self.error_messages["no_visible_characters"], code="no_visible_characters"
            )
        return name


class NameField(models.CharField):
    """A collection's, a document's, a model version's or a token's name: its forms (and so
    the admin and the API, which validate with them) use NameFormField, and every save stores
    it cleaned, whichever code set it (an upload, a IIIF manifest, a dataset import)."""

    def pre_save(self, model_instance, add) -> str:
        name = entered_name(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, name)
        return name

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": NameFormField, **kwargs})

    def deconstruct(self):
        # The column is a CharField's; the cleaning is Python's. Migrations see a CharField,
        # and so neither change for it nor import this module.
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs
