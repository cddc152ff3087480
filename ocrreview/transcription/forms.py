from django import forms

from ocrreview.corpus.models import Document, ModelVersion


class RerecognizeForm(forms.Form):
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(),
        help_text="Old hypotheses stay; reviewed lines keep their reviewed text.",
    )
    document = forms.ModelChoiceField(
        queryset=Document.objects.none(),
        required=False,
        empty_label="Every document of the collection",
    )

    def __init__(self, *args, collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = collection.documents.without_iiif_json()
        self.fields["model_version"].queryset = ModelVersion.objects.choosable_in(collection)
