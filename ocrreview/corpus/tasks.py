"""CPU work on the `default` queue. Thin wrappers over segmentation.py."""

from celery import shared_task

from ocrreview.corpus.segmentation import do_segment_document


@shared_task(autoretry_for=(OSError,), retry_backoff=10, max_retries=3)
def segment_document(document_id: int) -> None:
    do_segment_document(document_id)
