from collections import defaultdict
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ocrreview.corpus.actions import NameTaken, do_create_collection
from ocrreview.corpus.forms import NewCollectionForm
from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection, Document
from ocrreview.corpus.names import entered_name


class Command(BaseCommand):
    help = (
        "Import images, TIFFs, PDFs and ZIP archives (folders recursively) into a collection. "
        "PAGE/ALTO files are matched to images of the same folder, or of the folder above a "
        "folder of XML files alone (Transkribus's page/ and alto/). Each image is a document, "
        "but for a folder with a Transkribus mets.xml, on disk or in a ZIP archive, which is "
        "one; with --folders, any folder of images is."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True, help="the collection's name")
        parser.add_argument(
            "--create",
            action="store_true",
            help="create the collection unless it exists, with --admin as its admin",
        )
        parser.add_argument(
            "--admin",
            help="with --create: the username of the active account that becomes the new "
            "collection's admin",
        )
        parser.add_argument(
            "--segmentation", choices=Document.Segmentation.values, default="kraken"
        )
        parser.add_argument(
            "--import-text",
            action="store_true",
            help="take the text of PAGE/ALTO files as reviewed ground truth",
        )
        parser.add_argument(
            "--folders",
            action="store_true",
            help="each folder of images is one document, its pages in name order, as the "
            "upload's folders option makes a ZIP archive's folders (files named on the command "
            "line and images at a ZIP archive's root stay a document each)",
        )
        parser.add_argument("--user", help="username recorded as the uploader")

    def handle(self, *args, **options):
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        collection = self._collection(options, user)
        failed = 0
        # One ingestion per folder, and one for the files named: its XML files meet their
        # images, and memory holds one folder at a time.
        for files in self._files_by_folder(options["paths"]).values():
            results = do_ingest(
                collection,
                [
                    Upload.from_path(path, str(path), str(folder) if folder else None)
                    for path, folder in files
                ],
                user=user,
                segmentation=options["segmentation"],
                import_text=options["import_text"],
                folders=options["folders"],
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

    def _collection(self, options: dict, user) -> Collection:
        """The collection named, made by do_create_collection as the New collection page
        makes one (its admin a member, the creation in its history, by --user or the
        system) with --create; an existing one is kept, so that a run again goes on."""
        name = options["collection"]
        existing = Collection.objects.filter(name=entered_name(name)).first()
        if existing is not None:
            if options["create"] and options["admin"]:
                self.stdout.write(f"{name!r} exists already; --admin changes none of its members.")
            return existing
        if not options["create"]:
            raise CommandError(f"No collection named {name!r} (add --create and --admin).")
        if not options["admin"]:
            raise CommandError(
                "--create needs --admin USERNAME: the account that administers the new "
                "collection (without one, only site staff could run it)."
            )
        form = NewCollectionForm({"name": name, "admin": options["admin"]})
        if not form.is_valid():
            problems = [str(error) for errors in form.errors.values() for error in errors]
            raise CommandError(" ".join(problems))
        try:
            with transaction.atomic():
                created = do_create_collection(
                    form.save(commit=False), form.cleaned_data["admin"], actor=user
                )
        except NameTaken:  # made by another run meanwhile
            return Collection.objects.get(name=form.cleaned_data["name"])
        self.stdout.write(f"created collection {name!r}, administered by {options['admin']}")
        return created

    def _files_by_folder(
        self, paths: list[Path]
    ) -> dict[Path | None, list[tuple[Path, Path | None]]]:
        """The files to import, each with the folder it was found in, by the folder they are
        ingested with; those named on the command line under None, found in no folder.

        A folder of XML files alone goes with the folder above it, where the files it
        describes are: Transkribus exports a document's PAGE files to page/ (and ALTO to
        alto/) beside its images and mets.xml, and a ZIP archive of the export pairs them
        so (ingestion's _named_image looks one folder up)."""
        found: dict[Path, list[Path]] = defaultdict(list)
        folders: dict[Path | None, list[tuple[Path, Path | None]]] = defaultdict(list)
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            if not path.is_dir():
                folders[None].append((path, None))
                continue
            for candidate in sorted(path.rglob("*")):
                hidden = any(
                    part.startswith(".") for part in candidate.relative_to(path.parent).parts
                )
                if candidate.is_file() and not hidden:
                    found[candidate.parent].append(candidate)
        for folder, files in found.items():
            xml_alone = all(file.suffix.lower() == ".xml" for file in files)
            ingested_with = folder.parent if xml_alone and folder.parent in found else folder
            folders[ingested_with].extend((file, folder) for file in files)
        return folders
