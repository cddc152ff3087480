from django import forms
from django.conf import settings

from ocrreview.corpus.ingestion import FileResult, Upload, do_ingest
from ocrreview.corpus.models import Document


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        # Each file is judged by ingestion, which reports empty or bad files one by one
        # instead of refusing the whole upload as FileField would.
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files and self.required:
            raise forms.ValidationError("Choose at least one file.")
        return files


class UploadForm(forms.Form):
    files = MultipleFileField(
        help_text="JPEG, PNG, TIFF, PDF, or ZIP archives of these; "
        "PAGE XML or ALTO files beside their images."
    )
    segmentation = forms.ChoiceField(
        choices=Document.Segmentation.choices, initial=Document.Segmentation.KRAKEN
    )
    import_text = forms.BooleanField(
        required=False,
        label="Take the text of PAGE/ALTO files as reviewed ground truth",
    )

    def ingest(self, collection, user) -> list[FileResult]:
        """The valid form's files into the collection, each with what became of it."""
        data = self.cleaned_data
        return do_ingest(
            collection,
            [Upload.from_django(f) for f in data["files"]],
            user=user,
            segmentation=data["segmentation"],
            import_text=data["import_text"],
        )


def too_many_files_message() -> str:
    """For the request Django refuses as it parses it (TooManyFilesSent), before any view code
    could judge a file."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return (
        f"One upload takes at most {limit} file{'s' if limit != 1 else ''}: send the rest in "
        "another, or put them in a ZIP archive."
    )
