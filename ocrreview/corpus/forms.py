from django import forms

from ocrreview.corpus.models import Collection


class CollectionSettingsForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = [
            "description",
            "confidence_threshold",
            "nbest_size",
            "model_version",
            "special_characters",
            "licence",
        ]
        widgets = {"confidence_threshold": forms.NumberInput(attrs={"step": "0.01"})}
