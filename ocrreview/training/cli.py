"""What the training app's management commands share: finding rows by name, the options
that map onto ExportOptions and TrainingParams, and how a score is printed."""

from argparse import ArgumentParser

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from ocrreview.corpus.models import Collection, ModelVersion
from ocrreview.corpus.names import entered_name
from ocrreview.training.actions import TrainingError, TrainingParams
from ocrreview.training.exports import FORMATS, UNITS, ExportError, ExportOptions


def collection_named(value: str) -> Collection:
    found = Collection.objects.filter(name=entered_name(value)).first()
    if found is None and value.isdigit():
        found = Collection.objects.filter(pk=int(value)).first()
    if found is None:
        raise CommandError(f"no collection is named (or numbered) {value!r}")
    return found


def model_version_named(value: str) -> ModelVersion:
    found = ModelVersion.objects.filter(name=entered_name(value)).first()
    if found is None and value.isdigit():
        found = ModelVersion.objects.filter(pk=int(value)).first()
    if found is None:
        raise CommandError(f"no model version is named (or numbered) {value!r}")
    return found


def user_named(username: str | None):
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


def add_export_arguments(parser: ArgumentParser) -> None:
    defaults = ExportOptions()
    parser.add_argument("--documents", type=int, nargs="*", default=[], help="document ids")
    parser.add_argument("--include-auto-accepted", action="store_true")
    parser.add_argument("--min-confidence", type=float, default=defaults.min_confidence)
    parser.add_argument("--unit", choices=UNITS, default=defaults.unit)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=defaults.test_fraction,
        help="used only when the collection's evaluation split is frozen by this export",
    )
    parser.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))


def export_options(options: dict) -> ExportOptions:
    try:
        return ExportOptions(
            documents=options["documents"],
            include_auto_accepted=options["include_auto_accepted"],
            min_confidence=options["min_confidence"],
            unit=options["unit"],
            seed=options["seed"],
            validation_fraction=options["validation_fraction"],
            test_fraction=options["test_fraction"],
            formats=options["formats"],
        )
    except ExportError as exc:
        raise CommandError(str(exc)) from exc


def add_training_arguments(parser: ArgumentParser, **overrides) -> None:
    defaults = TrainingParams(**overrides)
    parser.add_argument("--train-part", choices=["decoder", "all"], default=defaults.train_part)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--grad-accum", type=int, default=defaults.grad_accum)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)


def training_params(options: dict) -> TrainingParams:
    try:
        return TrainingParams(
            train_part=options["train_part"],
            epochs=options["epochs"],
            max_steps=options["max_steps"],
            learning_rate=options["learning_rate"],
            batch_size=options["batch_size"],
            grad_accum=options["grad_accum"],
            patience=options["patience"],
            eval_every=options["eval_every"],
            warmup_steps=options["warmup_steps"],
            seed=options["seed"],
        )
    except TrainingError as exc:
        raise CommandError(str(exc)) from exc


def score(value: float | None, digits: int = 4) -> str:
    """A CER or WER of a run's metrics: none where the evaluation split had no line left to
    score on (the model kept unmeasured)."""
    return "unmeasured" if value is None else f"{value:.{digits}f}"
