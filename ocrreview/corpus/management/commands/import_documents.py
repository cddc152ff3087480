from collections import defaultdict
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection, Document


class Command(BaseCommand):
    help = (
        "Import images, TIFFs, PDFs and ZIP archives (folders recursively) into a collection. "
        "PAGE/ALTO files are matched to images of the same folder."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True, help="the collection's name")
        parser.add_argument("--create", action="store_true", help="create the collection")
        parser.add_argument(
            "--segmentation", choices=Document.Segmentation.values, default="kraken"
        )
        parser.add_argument(
            "--import-text",
            action="store_true",
            help="take the text of PAGE/ALTO files as reviewed ground truth",
        )
        parser.add_argument("--user", help="username recorded as the uploader")

    def handle(self, *args, **options):
        collection = self._collection(options["collection"], options["create"])
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        failed = 0
        # One ingestion per folder: its XML files meet their images, and memory holds
        # one folder at a time.
        for files in self._files_by_folder(options["paths"]).values():
            results = do_ingest(
                collection,
                [Upload.from_path(path, str(path)) for path in files],
                user=user,
                segmentation=options["segmentation"],
                import_text=options["import_text"],
            )
            for result in results:
                if result.duplicate:
                    # Running the import again after an interruption adds only what is new.
                    self.stdout.write(
                        f"kept   {result.name}: already document {result.document.pk}"
                    )
                elif result.error:
                    failed += 1
                    self.stderr.write(f"FAILED {result.name}: {result.error}")
                elif result.document:
                    self.stdout.write(
                        f"ok     {result.name} -> document {result.document.pk} "
                        f"({result.pages} pages, {result.lines} lines)"
                    )
        if failed:
            raise CommandError(f"{failed} file(s) could not be imported (see above).")

    def _collection(self, name: str, create: bool) -> Collection:
        if create:
            return Collection.objects.get_or_create(name=name)[0]
        try:
            return Collection.objects.get(name=name)
        except Collection.DoesNotExist:
            raise CommandError(f"No collection named {name!r} (add --create).") from None

    def _files_by_folder(self, paths: list[Path]) -> dict[Path, list[Path]]:
        folders: dict[Path, list[Path]] = defaultdict(list)
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
            for candidate in candidates:
                hidden = any(
                    part.startswith(".") for part in candidate.relative_to(path.parent).parts
                )
                if candidate.is_file() and not hidden:
                    folders[candidate.parent].append(candidate)
        return folders
