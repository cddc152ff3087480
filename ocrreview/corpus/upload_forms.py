from django import forms
from django.conf import settings

from ocrreview.corpus.iiif import SEGMENTATIONS, IiifError, do_import_iiif
from ocrreview.corpus.ingestion import FileResult, Upload, do_ingest
from ocrreview.corpus.models import Document
from ocrreview.corpus.remote import FetchError, FetchUnavailable


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
        "PAGE XML or ALTO files beside their images. A Transkribus export makes a document of "
        "each of its folders (a folder with its mets.xml)."
    )
    segmentation = forms.ChoiceField(
        choices=Document.Segmentation.choices, initial=Document.Segmentation.KRAKEN
    )
    import_text = forms.BooleanField(
        required=False,
        label="Take the text of PAGE/ALTO files as reviewed ground truth",
    )
    folders = forms.BooleanField(
        required=False,
        label="Each folder of images in a ZIP archive is one document, its pages in name order",
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
            folders=data["folders"],
        )


class IiifImportForm(forms.Form):
    manifest = forms.URLField(
        label="IIIF manifest URL",
        max_length=2000,
        assume_scheme="https",
        help_text="A IIIF Presentation manifest (version 2 or 3): its canvases become the "
        "document's pages, in order.",
    )
    segmentation = forms.ChoiceField(
        choices=[c for c in Document.Segmentation.choices if c[0] in SEGMENTATIONS],
        initial=Document.Segmentation.KRAKEN,
    )

    # Whether the import failed because the manifest's server could not be reached (for now,
    # perhaps), not because of what it answered.
    unreachable = False

    def __init__(self, *args, **kwargs):
        # It shares the upload page with UploadForm, whose fields' ids it would repeat.
        kwargs.setdefault("auto_id", "iiif_%s")
        super().__init__(*args, **kwargs)

    def import_into(self, collection, user) -> tuple[Document, bool] | None:
        """The manifest's document and whether its images are being fetched now; None, with
        the reason as the form's error, when the manifest cannot be imported."""
        try:
            return do_import_iiif(
                collection,
                self.cleaned_data["manifest"],
                user=user,
                segmentation=self.cleaned_data["segmentation"],
            )
        except (IiifError, FetchError) as exc:
            self.unreachable = isinstance(exc, FetchUnavailable)
            self.add_error("manifest", str(exc))
            return None


def too_many_files_message() -> str:
    """For the request Django refuses as it parses it (TooManyFilesSent), before any view code
    could judge a file."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return (
        f"One upload takes at most {limit} file{'s' if limit != 1 else ''}: send the rest in "
        "another, or put them in a ZIP archive."
    )
