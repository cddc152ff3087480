"""Auto-accepting lines on an uncalibrated model's confidences is an admin's explicit choice:
such a model's confidences are raw products of token probabilities, over-confident, so a
threshold accepts more wrong lines unseen than its number says. The settings form, the API
that binds it and applying a threshold to the lines already read ask for the confirmation."""

from django.conf import settings

from ocrreview.corpus.models import ModelVersion

CONFIRM_FIELD = "confirm_uncalibrated"
CONFIRM_LABEL = "Accept lines automatically although the model's confidences are not calibrated"


def model_name(source: str, revision: str) -> str:
    """The name of the version made for a hub id or folder (and pinned revision)."""
    return source + (f"@{revision}" if revision else "")


def default_model_name() -> str:
    """The name of the version for settings.OCRREVIEW_MODEL, made or not yet."""
    return model_name(settings.OCRREVIEW_MODEL, settings.OCRREVIEW_MODEL_REVISION or "")


def uncalibrated_model(version: ModelVersion | None) -> str | None:
    """The name of the model that reads new lines with `version` chosen (None: the site's
    default model), when no calibration was fitted for it; None when one was."""
    if version is None:
        version = ModelVersion.objects.filter(name=default_model_name()).first()
        if version is None:  # made at its first reading, without a calibration
            return default_model_name()
    return None if version.calibration else version.name


def uncalibrated_auto_accept(threshold: float, version: ModelVersion | None) -> str | None:
    """What to tell an admin setting this threshold for lines `version` reads, where its
    confidences are not calibrated; None where they are. Every threshold asks, 1 included:
    such a model gives many a line a raw confidence of exactly 1."""
    name = uncalibrated_model(version)
    return None if name is None else confirmation_needed(name, threshold)


def confirmation_needed(reader: str, threshold: float) -> str:
    return (
        f"The confidences of {reader} are not calibrated: at a threshold of {threshold:.2f} "
        "lines are accepted unseen on raw confidences, which overstate how often the model "
        "is right, so more wrong lines are accepted than the threshold suggests. "
        f"Tick “{CONFIRM_LABEL}” (in the API, {CONFIRM_FIELD}: true) to go ahead, or have "
        "the site's operator calibrate it on your reviews first (manage.py calibrate_model)."
    )
