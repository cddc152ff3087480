from django.core.management.base import BaseCommand, CommandError

from ocrreview.training import actions, cli
from ocrreview.training.exports import ExportError, export_file
from ocrreview.training.models import DatasetExport


class Command(BaseCommand):
    help = "Export a collection's ground truth as a fine-tuning dataset (a zip in the storage, exports/<id>-<claim>.zip)."

    def add_arguments(self, parser):
        parser.add_argument("collection", help="name or id")
        cli.add_export_arguments(parser)
        parser.add_argument("--user", help="recorded as the export's creator")
        parser.add_argument(
            "--queue", action="store_true", help="hand it to a worker instead of building it here"
        )

    def handle(self, *args, **options):
        collection = cli.collection_named(options["collection"])
        try:
            export = actions.do_start_export(
                collection,
                cli.export_options(options),
                user=cli.user_named(options["user"]),
                queue=options["queue"],
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        if options["queue"]:
            self.stdout.write(f"export {export.pk} queued")
            return
        export = actions.run_export(export.pk)
        if export.status != DatasetExport.Status.DONE:
            raise CommandError(f"export {export.pk} failed: {export.error}")
        self.stdout.write(f"export {export.pk}: {export_file(export)}")
        self.stdout.write(f"sha256 {export.checksum}")
        self.stdout.write(" ".join(f"{k}={v}" for k, v in export.counts.items()))
