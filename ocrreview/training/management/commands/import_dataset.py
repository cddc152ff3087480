from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ocrreview.training import cli, splits
from ocrreview.training.imports import DatasetImportError, do_import_ground_truth, read_dataset


class Command(BaseCommand):
    help = (
        "Import line images with their text as reviewed ground truth: an image folder with "
        "metadata.jsonl (flat or one folder per split) or a saved Hugging Face dataset."
    )

    def add_arguments(self, parser):
        parser.add_argument("collection", help="name or id")
        parser.add_argument("path", type=Path)
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--user", help="recorded as the importer")
        parser.add_argument(
            "--freeze-test-split",
            action="store_true",
            help="freeze the rows whose split is 'test' as the collection's evaluation split",
        )

    def handle(self, *args, **options):
        collection = cli.collection_named(options["collection"])
        try:
            rows = read_dataset(options["path"], text_column=options["text_column"])
            result = do_import_ground_truth(
                collection,
                rows,
                user=cli.user_named(options["user"]),
                title=options["path"].name,
                freeze_test=options["freeze_test_split"],
            )
        except (DatasetImportError, splits.SplitError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result.summary())
