"""Transcript downloads on the web: a document's for every member of its collection, the
whole collection's for its admins (transcripts.py writes them)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

from ocrreview.corpus import transcripts
from ocrreview.corpus.access import admin_collection_for, visible_document

CHOICES = ", ".join(transcripts.FORMATS)


class TranscriptOptionsForm(forms.Form):
    """The query's options; `reviewed_only` leaves out the machine readings no one reviewed,
    each marked where it was."""

    reviewed_only = forms.TypedChoiceField(
        choices=[(value, value) for value in ("true", "false", "1", "0")],
        coerce=lambda value: value in ("true", "1"),
        required=False,
        empty_value=False,
        error_messages={"invalid_choice": "reviewed_only is true or false, not %(value)s."},
    )

    def first_error(self) -> str:
        return next(iter(self.errors.values()))[0]


class DocumentTranscriptForm(TranscriptOptionsForm):
    format = forms.ChoiceField(
        choices=list(transcripts.FORMATS.items()),
        error_messages={
            "required": f"Name a format: {CHOICES}.",
            "invalid_choice": f"Unknown format %(value)s: choose {CHOICES}.",
        },
    )


def _plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@login_required
def document_transcript(request, pk: int):
    document = visible_document(request.user, pk)
    form = DocumentTranscriptForm(request.GET)
    if not form.is_valid():
        return _plain(form.first_error(), 400)
    try:
        found = transcripts.transcript(document, reviewed_only=form.cleaned_data["reviewed_only"])
    except transcripts.NotSegmented as exc:
        return _plain(str(exc), 409)
    return transcripts.download(found, form.cleaned_data["format"])


@login_required
def collection_transcripts(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = TranscriptOptionsForm(request.GET)
    if not form.is_valid():
        return _plain(form.first_error(), 400)
    return transcripts.collection_download(
        collection, reviewed_only=form.cleaned_data["reviewed_only"]
    )
