"""Segmentation on the `segment` queue, fetching IIIF images on `default`. Thin wrappers over
segmentation.py and iiif.py."""

from celery import shared_task

from ocrreview.corpus.iiif import do_fetch_iiif_images, give_up_fetching
from ocrreview.corpus.remote import FetchUnavailable
from ocrreview.corpus.segmentation import do_segment_document

IIIF_RETRIES = 4


@shared_task(autoretry_for=(OSError,), retry_backoff=10, max_retries=3)
def segment_document(document_id: int) -> None:
    do_segment_document(document_id)


@shared_task(bind=True, max_retries=IIIF_RETRIES)
def fetch_iiif_images(self, document_id: int) -> None:
    """A server that fails for now is tried again, 10 s later, then 20, 40 and 80; each try
    starts at the first canvas not fetched yet."""
    try:
        do_fetch_iiif_images(document_id)
    except FetchUnavailable as exc:
        if self.request.retries >= IIIF_RETRIES:
            give_up_fetching(document_id, str(exc))
            return
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from None
    except Exception as exc:
        # Left FETCHING, the document could be neither deleted nor imported again.
        give_up_fetching(document_id, f"{type(exc).__name__}: {exc}")
        raise
