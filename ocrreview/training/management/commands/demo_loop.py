"""The loop on a folder of line images, for a demonstration or a benchmark:

    python manage.py demo_loop ../shared/data/lathrop_stanford/lines --text-column text_plain

The folder's train (and validation) rows stand in for reviewers' corrections, its test rows
become the frozen evaluation split, and the base model (the shipped starter model unless
--base says otherwise) is fine-tuned, measured against itself on the test rows, and gated.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ocrreview import storage
from ocrreview.corpus.models import Collection, ModelVersion
from ocrreview.training import actions, cli
from ocrreview.training.exports import ExportOptions
from ocrreview.training.imports import DatasetImportError, do_import_ground_truth, read_dataset
from ocrreview.training.models import DatasetExport, TrainingRun
from recognition.loading import STARTER_MODEL_DIR, missing_files


class Command(BaseCommand):
    help = "Import a line dataset, fine-tune on its train split and print CER before and after."

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="line images with a metadata.jsonl")
        parser.add_argument("--base", default=str(STARTER_MODEL_DIR), help="model dir or hub id")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--validation-fraction", type=float, default=0.15)
        parser.add_argument("--seed", type=int, default=0)
        cli.add_training_arguments(parser, max_steps=600, learning_rate=1e-4, patience=3)

    def handle(self, *args, **options):
        base_source = options["base"]
        local = Path(base_source).is_dir() or Path(base_source).is_absolute()
        if local and missing_files(base_source):
            raise CommandError(
                f"no usable model at {base_source} (missing {', '.join(missing_files(base_source))})"
                "; pass --base with a model directory or hub id"
            )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        try:
            rows = read_dataset(options["folder"], text_column=options["text_column"])
        except DatasetImportError as exc:
            raise CommandError(str(exc)) from exc
        if not any(row.split == "test" for row in rows):
            raise CommandError("the dataset has no rows with split 'test' to evaluate on")
        name = f"{Path(base_source).name}-demo-{stamp}"
        if local:
            # A snapshot: the parent is scored after training, and a directory that is
            # replaced meanwhile (the starter model, say) would be a different parent.
            base_source = storage.model_source(
                storage.put_directory(f"models/{name}", Path(base_source))
            )
        base = ModelVersion.objects.create(name=name, source=base_source)
        collection = Collection.objects.create(
            name=f"Demo loop: {options['folder'].name} {stamp}", model_version=base
        )
        result = do_import_ground_truth(
            collection, rows, user=None, title=options["folder"].name, freeze_test=True
        )
        self.stdout.write(
            f"imported {len(result.lines)} lines into {collection}; "
            f"{len(result.lines_by_split['test'])} test lines frozen"
        )
        export_options = ExportOptions(
            seed=options["seed"],
            validation_fraction=options["validation_fraction"],
            formats=["imagefolder"],
        )
        export = actions.do_start_export(collection, export_options, user=None, queue=False)
        export = actions.run_export(export.pk)
        if export.status != DatasetExport.Status.DONE:
            raise CommandError(f"export failed: {export.error}")
        self.stdout.write(f"export {export.pk}: {export.counts}")
        run = actions.do_start_training(
            base, export, cli.training_params(options), user=None, queue=False
        )
        run = actions.run_training(run.pk)
        self.stdout.write(run.log)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run {run.pk} {run.status}: {run.error}")
        metrics = run.result_model.metrics
        self.stdout.write(
            f"WER before {cli.score(metrics['parent']['wer'], 3)} "
            f"after {cli.score(metrics['wer'], 3)} "
            f"on {metrics['lines']} frozen lines; {run.result_model} "
            + ("promoted" if run.promoted else "kept inactive")
        )
        self.stdout.write(
            f"cer_before: {cli.score(metrics['parent']['cer'], 3)} "
            f"cer_after: {cli.score(metrics['cer'], 3)}"
        )
