from django.core.management.base import BaseCommand, CommandError

from ocrreview.training import cli, recalibration


class Command(BaseCommand):
    help = (
        "Calibrate a model version's confidences on reviewers' first answers to its readings, "
        "and recalibrate every stored confidence of its readings (the threshold is not applied "
        "again: preview and apply it on the collection's settings page)."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", help="model version name or id")

    def handle(self, *args, **options):
        version = cli.model_version_named(options["version"])
        try:
            fit = recalibration.do_calibrate_from_reviews(version)
        except recalibration.CalibrationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{version}: calibrated on {fit['n']} reviewed readings "
            f"({fit['accepted_rate']:.0%} kept unchanged); log loss "
            f"{fit['log_loss_before']:.3f} → {fit['log_loss_after']:.3f}"
        )
