from django.core.management.base import BaseCommand, CommandError

from ocrreview.training import actions, cli
from ocrreview.training.models import DatasetExport, TrainingRun


class Command(BaseCommand):
    help = (
        "Fine-tune a model version on a dataset export, measure it against its parent on the "
        "frozen evaluation split, and promote it if it is better."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base", required=True, help="model version name or id")
        parser.add_argument("--dataset", required=True, type=int, help="dataset export id")
        cli.add_training_arguments(parser)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--user", help="recorded as the run's creator")
        parser.add_argument(
            "--queue", action="store_true", help="hand it to the training queue instead"
        )

    def handle(self, *args, **options):
        base = cli.model_version_named(options["base"])
        dataset = DatasetExport.objects.filter(pk=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset export {options['dataset']}")
        try:
            run = actions.do_start_training(
                base,
                dataset,
                cli.training_params(options),
                user=cli.user_named(options["user"]),
                queue=options["queue"],
            )
        except actions.TrainingError as exc:
            raise CommandError(str(exc)) from exc
        if options["queue"]:
            self.stdout.write(f"training run {run.pk} queued")
            return
        run = actions.run_training(run.pk)
        self.stdout.write(run.log)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run {run.pk} {run.status}: {run.error}")
        metrics = run.result_model.metrics
        verdict = "promoted" if run.promoted else "kept inactive"
        self.stdout.write(
            f"{run.result_model}: cer {cli.score(metrics['cer'])} "
            f"(parent {cli.score(metrics['parent']['cer'])}), {verdict}"
        )
