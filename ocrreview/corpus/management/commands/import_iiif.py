from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.iiif import SEGMENTATIONS, IiifError, do_import_iiif
from ocrreview.corpus.models import Collection
from ocrreview.corpus.names import entered_name
from ocrreview.corpus.remote import FetchError


class Command(BaseCommand):
    help = (
        "Import a IIIF Presentation manifest (version 2 or 3) into a collection: its canvases "
        "become a document's pages, whose images the workers fetch."
    )

    def add_arguments(self, parser):
        parser.add_argument("collection", help="the collection's name")
        parser.add_argument("url", help="the manifest's URL")
        parser.add_argument("--segmentation", choices=SEGMENTATIONS, default=SEGMENTATIONS[0])
        parser.add_argument("--user", help="username recorded as the uploader")

    def handle(self, *args, **options):
        try:
            collection = Collection.objects.get(name=entered_name(options["collection"]))
        except Collection.DoesNotExist:
            raise CommandError(f"No collection named {options['collection']!r}.") from None
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        try:
            document, fetching = do_import_iiif(
                collection, options["url"], user=user, segmentation=options["segmentation"]
            )
        except (IiifError, FetchError) as exc:
            raise CommandError(f"The manifest cannot be imported: {exc}") from None
        if fetching:
            self.stdout.write(
                f"document {document.pk} ({document.title}): the workers fetch its "
                f"{len(document.iiif_canvases)} images"
            )
        else:
            self.stdout.write(f"document {document.pk} ({document.title}): imported before")
