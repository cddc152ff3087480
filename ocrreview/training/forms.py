from django import forms
from django.conf import settings

from ocrreview.corpus import calibration_guard
from ocrreview.corpus.models import Collection, Document, ModelVersion
from ocrreview.training.actions import TrainingParams
from ocrreview.training.exports import FORMATS, UNITS, ExportOptions
from ocrreview.training.models import DatasetExport
from ocrreview.transcription.services import model_version_for

_defaults = ExportOptions()
_params = TrainingParams()


class ExportForm(forms.Form):
    documents = forms.ModelMultipleChoiceField(
        queryset=Document.objects.none(),
        required=False,
        help_text="None chosen: the whole collection.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    include_auto_accepted = forms.BooleanField(
        required=False,
        label="Also count auto-accepted lines as ground truth",
        help_text="They only train: validation and the evaluation split use reviewed lines.",
    )
    min_confidence = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        initial=_defaults.min_confidence,
        label="… when their confidence is at least",
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    unit = forms.ChoiceField(
        choices=[(u, f"by {u}") for u in UNITS],
        initial=_defaults.unit,
        label="Split",
        help_text="The frozen evaluation split keeps the unit it was frozen with.",
    )
    # The frozen evaluation split keeps its seed in a 32-bit column.
    seed = forms.IntegerField(initial=_defaults.seed, min_value=-(2**31), max_value=2**31 - 1)
    validation_fraction = forms.FloatField(
        min_value=0.0, max_value=0.9, initial=_defaults.validation_fraction
    )
    test_fraction = forms.FloatField(
        min_value=0.01,
        max_value=0.9,
        initial=_defaults.test_fraction,
        help_text=(
            "Used only when the evaluation split is drawn (the first export): later exports "
            "grow it only while it is under the promotion gate's minimum, by whole new documents."
        ),
    )
    formats = forms.MultipleChoiceField(
        choices=list(FORMATS.items()),
        initial=list(FORMATS),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, collection: Collection, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["documents"].queryset = collection.documents.without_iiif_json().order_by(
            "title"
        )

    def options(self) -> ExportOptions:
        data = dict(self.cleaned_data)
        data["documents"] = [d.pk for d in data["documents"]]
        return ExportOptions(**data)


class RedrawSplitForm(forms.Form):
    """Drawing the evaluation split again, as the first export would."""

    unit = forms.ChoiceField(
        choices=[(u, f"by {u}") for u in UNITS], initial=_defaults.unit, label="Draw"
    )
    seed = forms.IntegerField(initial=_defaults.seed, min_value=-(2**31), max_value=2**31 - 1)
    test_fraction = forms.FloatField(min_value=0.01, max_value=0.9, initial=_defaults.test_fraction)
    confirm = forms.BooleanField(
        label="Draw it again: the exports made under the current draw can no longer train",
    )


class TrainingForm(forms.Form):
    base = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), label="Base model")
    dataset = forms.ModelChoiceField(queryset=DatasetExport.objects.none(), label="Dataset export")
    train_part = forms.ChoiceField(
        choices=[("decoder", "Decoder only"), ("all", "Everything (encoder too)")],
        initial=_params.train_part,
        label="Train",
    )
    epochs = forms.IntegerField(min_value=1, max_value=1000, initial=_params.epochs)
    max_steps = forms.IntegerField(
        min_value=1, required=False, help_text="Optimiser steps; overrides epochs when set."
    )
    learning_rate = forms.FloatField(
        min_value=1e-8, max_value=0.5, initial=_params.learning_rate, widget=forms.TextInput
    )
    batch_size = forms.IntegerField(min_value=1, max_value=512, initial=_params.batch_size)
    grad_accum = forms.IntegerField(
        min_value=1, max_value=256, initial=_params.grad_accum, label="Gradient accumulation"
    )
    eval_every = forms.IntegerField(
        min_value=1, initial=_params.eval_every, label="Validate every (steps)"
    )
    patience = forms.IntegerField(
        min_value=1,
        required=False,
        initial=_params.patience,
        help_text="Stop after this many validations without a better CER; empty: never.",
    )

    def __init__(self, *args, collection: Collection, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base"].queryset = ModelVersion.objects.visible_to(collection)
        # The model the collection reads with: one that chose none reads with the default.
        self.fields["base"].initial = model_version_for(collection).pk
        # An export made under another split would train on lines the current one measures.
        finished = collection.exports.filter(
            status=DatasetExport.Status.DONE, evaluation_split__collection=collection
        )
        self.fields["dataset"].queryset = finished.select_related("collection")  # its label
        self.fields["dataset"].initial = finished.values_list("pk", flat=True).first()

    def params(self) -> TrainingParams:
        data = {k: v for k, v in self.cleaned_data.items() if k not in ("base", "dataset")}
        return TrainingParams(**data)


class OverrideForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded with your name in the promotion log.",
    )
    confirm_uncalibrated = forms.BooleanField(required=False, label=calibration_guard.CONFIRM_LABEL)

    def __init__(self, *args, calibrated: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if calibrated:  # nothing to confirm: shown, the box would ask for nothing
            del self.fields["confirm_uncalibrated"]


class ImportForm(forms.Form):
    archive = forms.FileField(
        label="Zip file",
        help_text=(
            "An export of another collection (of this site or another), "
            "or line images with a metadata.jsonl, zipped."
        ),
    )
    text_column = forms.CharField(max_length=100, initial="text")
    freeze_test = forms.BooleanField(
        required=False,
        label="Freeze the dataset's test split as this collection's evaluation split",
        help_text="Otherwise its test lines are held out of training.",
    )

    def clean_archive(self):
        # The rest of a file past the limit was never stored (ocrreview.upload_handlers).
        archive = self.cleaned_data["archive"]
        if archive.size > settings.OCRREVIEW_MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(
                f"The archive is {archive.size / 1024 / 1024:.1f} MB; the limit is "
                f"{settings.OCRREVIEW_MAX_UPLOAD_MB} MB (OCRREVIEW_MAX_UPLOAD_MB)."
            )
        return archive
