from django import forms

from ocrreview.review.actions import MAX_TEXT_LENGTH
from ocrreview.review.models import ReviewerPreference

# The largest values PostgreSQL's integer and bigint columns hold: a number beyond them in a
# post is the client's mistake, to be answered with a form error rather than a database one.
MAX_INT, MAX_ID = 2**31 - 1, 2**63 - 1


def _version() -> forms.IntegerField:
    return forms.IntegerField(min_value=1, max_value=MAX_INT)


def _row_id() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)


def _milliseconds() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=0, max_value=MAX_INT)


class SaveForm(forms.Form):
    SAVE, ACCEPT = "save", "accept"

    # strip=False: leading and trailing spaces are the reviewer's to keep or remove.
    text = forms.CharField(required=False, strip=False, max_length=MAX_TEXT_LENGTH)
    expected_version = _version()
    hypothesis = _row_id()
    time_spent_ms = _milliseconds()
    action = forms.ChoiceField(choices=[(SAVE, SAVE), (ACCEPT, ACCEPT)], required=False)


class DraftForm(forms.Form):
    text = forms.CharField(required=False, strip=False, max_length=MAX_TEXT_LENGTH)
    base_version = _version()
    hypothesis = _row_id()


class SkipForm(forms.Form):
    time_spent_ms = _milliseconds()


class RevertForm(forms.Form):
    expected_version = _version()
    before = forms.BooleanField(required=False)


class BoxForm(forms.Form):
    x0 = forms.FloatField()
    y0 = forms.FloatField()
    x1 = forms.FloatField()
    y1 = forms.FloatField()

    def bbox(self) -> list[float]:
        return [self.cleaned_data[k] for k in ("x0", "y0", "x1", "y1")]


class MoveForm(BoxForm):
    expected_version = _version()


class SplitForm(forms.Form):
    x = forms.FloatField()
    expected_version = _version()


class VersionForm(forms.Form):
    expected_version = _version()


class QueueForm(forms.Form):
    document = _row_id()
    order = forms.ChoiceField(choices=ReviewerPreference.QueueOrder.choices, required=False)


class ThresholdForm(forms.Form):
    confidence_threshold = forms.FloatField(min_value=0.0, max_value=1.0)


def first_error(form: forms.Form) -> str:
    for field, errors in form.errors.items():
        label = field.replace("_", " ") if field != "__all__" else ""
        return f"{label}: {errors[0]}" if label else errors[0]
    return "The request was not valid."
