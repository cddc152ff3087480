from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Collection, Document

DEMO_DIR = Path(settings.BASE_DIR) / "demo" / "lathrop"
COLLECTION = "Lathrop letters (demo)"
# What demo/lathrop/NOTICE.md says a copy must carry, kept as a IIIF manifest would give it,
# so that the dataset and IIIF exports of the demo's lines carry it too.
SOURCE = {
    "rights": "http://creativecommons.org/licenses/by/4.0/",
    "requiredStatement": {
        "label": {"en": ["Attribution"]},
        "value": {
            "en": [
                "Ingrid Guimarães, Perrine Maurel, Yagmur Ozturk (transcription and alignment), "
                'Alix Chagué (quality control), Thibault Clérice (support), "Memorials for '
                'Jane Lathrop Stanford", DOI 10.5281/zenodo.6126625. Page images: Stanford '
                "University Archives (via FromThePage)."
            ]
        },
    },
}


class Command(BaseCommand):
    help = (
        f"Create the collection {COLLECTION!r} from the pages in demo/lathrop/ with their "
        "ALTO lines, and queue their recognition. Running it again adds no page."
    )

    def handle(self, *args, **options):
        collection, _ = Collection.objects.get_or_create(
            name=COLLECTION,
            defaults={
                "description": "Three letters of 1905 from the Stanford University Archives.",
                "licence": "CC-BY-4.0 (see demo/lathrop/NOTICE.md)",
            },
        )
        demo_pages = sorted(DEMO_DIR.glob("*.jpg"))
        present = set(collection.documents.values_list("title", flat=True))
        images = [p for p in demo_pages if p.stem not in present]
        if images:
            lines = self._load(collection, images)
            said = f"{COLLECTION!r}: {len(images)} pages, {lines} lines queued for recognition."
        else:
            said = f"{COLLECTION!r} already holds the demo pages."
        # Demo pages loaded before they carried what their NOTICE.md asks of a copy get it now.
        collection.documents.filter(
            title__in=[p.stem for p in demo_pages], iiif_manifest="", iiif_descriptive={}
        ).update(iiif_descriptive=SOURCE)
        self.stdout.write(said)

    def _load(self, collection: Collection, images: list[Path]) -> int:
        uploads = []
        for image in images:
            uploads += [Upload.from_path(image), Upload.from_path(image.with_suffix(".xml"))]
        results = do_ingest(collection, uploads, segmentation=Document.Segmentation.IMPORTED)
        errors = [f"{r.name}: {r.error}" for r in results if r.error]
        if errors:
            raise CommandError("Demo import failed: " + "; ".join(errors))
        return sum(r.lines for r in results if r.document)
