"""Segmentation on the `segment` queue, fetching IIIF images on `default`, invitations' and
password resets' mail on `mail` (ocrreview/celery.py routes mail_*). Thin wrappers over
segmentation.py, iiif.py and invitations.py."""

import uuid

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.mail import BadHeaderError

from ocrreview.corpus import claims
from ocrreview.corpus.iiif import (
    do_fetch_iiif_images,
    give_up_fetching,
    lost_fetches,
)
from ocrreview.corpus.invitations import (
    MAIL_ERRORS,
    password_reset_accounts,
    record_mail_failure,
    requeue_lost_mail,
    send_invitation,
    send_password_reset,
)
from ocrreview.corpus.models import Page
from ocrreview.corpus.remote import FetchUnavailable
from ocrreview.corpus.segmentation import (
    do_segment_document,
    lost_segmentations,
    wait_for_storage,
)
from ocrreview.sweep import consumes, start_sweeping

IIIF_RETRIES = 4
# A mail server that fails is tried again OCRREVIEW_MAIL_RETRY_SECONDS later, then twice as long
# at each try (nine in all: some 40 minutes at the default 10 s); the links are made at each try.
MAIL_RETRIES = 8


# A run claims its document under a token of its own, which its retries carry on: a copy of
# the message (given again by the broker after an hour while the first still runs) has one of
# its own and finds the document held. Acknowledged on receipt, unlike most tasks: a worker
# that dies mid-document is covered by the sweep, not by a message given back an hour later.
@shared_task(bind=True, max_retries=None, acks_late=False)
def segment_document(self, document_id: int, claim: str = "", tries: int = 0) -> None:
    """An error of the storage or the disk (a page's image it does not give, too) is tried
    again for about 50 minutes (segmentation.wait_for_storage), each try going on from the
    first page not segmented yet."""
    claim = claim or uuid.uuid4().hex
    try:
        do_segment_document(document_id, claim)
    except OSError as exc:
        countdown = wait_for_storage(document_id, claim, exc, tries)
        if countdown is None:
            return
        # expires=None: a retry would keep the sweep's short expiry, and be dropped unrun.
        raise self.retry(
            exc=exc, countdown=countdown, kwargs={"claim": claim, "tries": tries + 1}, expires=None
        ) from None


def sweep_segmentation() -> None:
    """Queue again the documents whose segmentation fell silent or whose message was lost.
    Each message expires by the next sweep, so sweeps do not pile up behind a busy worker; the
    first to run takes the segmentation over, and any other finds it alive and stops."""
    for document_id in lost_segmentations():
        segment_document.apply_async((document_id,), expires=settings.OCRREVIEW_SWEEP_SECONDS)


# Claimed and acknowledged as segment_document is, and for the same reasons.
@shared_task(bind=True, max_retries=None, acks_late=False)
def fetch_iiif_images(
    self, document_id: int, claim: str = "", failures: int = 0, fetched: int = 0
) -> None:
    """A server that fails for now is tried again, 10 s later, then 20, 40 and 80; each try
    starts at the first canvas not fetched yet. The budget is a canvas's: a try that fetched
    pages before failing starts it again, so that a large register from a server that
    hiccups now and then is not given up for its fifth hiccup."""
    fetcher = claim or uuid.uuid4().hex
    try:
        do_fetch_iiif_images(document_id, fetcher)
    except FetchUnavailable as exc:
        now_fetched = Page.objects.filter(document_id=document_id).count()
        if now_fetched > fetched:
            failures = 0
        if failures >= IIIF_RETRIES:
            give_up_fetching(document_id, fetcher, str(exc))
            return
        countdown = 10 * 2**failures
        claims.postpone(document_id, fetcher, countdown)
        # expires=None: a retry would keep the sweep's short expiry, and be dropped unrun.
        raise self.retry(
            exc=exc,
            countdown=countdown,
            kwargs={"claim": fetcher, "failures": failures + 1, "fetched": now_fetched},
            expires=None,
        ) from None
    except Exception as exc:
        # Left FETCHING, the document could be neither deleted nor imported again.
        give_up_fetching(document_id, fetcher, f"{type(exc).__name__}: {exc}")
        raise


def sweep_fetches() -> None:
    """Queue a fetch for the IIIF imports whose fetch fell silent (the broker was down when
    they were imported, or their worker died). Each message expires by the next sweep, which
    sends another while the fetch stays silent; the first to run takes the fetch over, and any
    other finds it alive and stops."""
    for document_id in lost_fetches():
        fetch_iiif_images.apply_async((document_id,), expires=settings.OCRREVIEW_SWEEP_SECONDS)


def mail_retry_wait(retries: int) -> int:
    """Seconds before the next try of a mail that failed `retries` times already."""
    return settings.OCRREVIEW_MAIL_RETRY_SECONDS * 2**retries


@shared_task
def mail_password_reset(email: str, domain: str, use_https: bool) -> None:
    """Queued by the password reset form for every address asked for, known or not: a task
    for each account that uses it, so that a mail server failing on one account retries that
    account's mail alone, not the others' already sent."""
    for user_id in password_reset_accounts(email):
        mail_password_reset_link.delay(user_id, domain, use_https)


@shared_task(bind=True, max_retries=MAIL_RETRIES)
def mail_password_reset_link(self, user_id: int, domain: str, use_https: bool) -> None:
    try:
        send_password_reset(user_id, domain, use_https)
    except BadHeaderError:
        raise  # the same mail would be refused at every try
    except MAIL_ERRORS as exc:
        raise self.retry(exc=exc, countdown=mail_retry_wait(self.request.retries)) from None


@shared_task(bind=True, max_retries=MAIL_RETRIES)
def mail_invitation(self, invitation_id: int, domain: str, use_https: bool) -> None:
    """Tried again as a password reset's mail is; each failure is recorded on the invitation,
    for its admins to see, and the last one fails it."""
    try:
        send_invitation(invitation_id, domain, use_https)
    except ValueError as exc:
        # A header injection (BadHeaderError is one) or an address the mail cannot carry:
        # refused at every try.
        record_mail_failure(invitation_id, exc, final=True)
        raise
    except MAIL_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        countdown = mail_retry_wait(self.request.retries)
        record_mail_failure(invitation_id, exc, final=final, retry_in=countdown)
        if final:
            raise
        raise self.retry(exc=exc, countdown=countdown) from None
    except Exception as exc:
        # Left queued, its admins would wait for a mail nothing sends.
        record_mail_failure(invitation_id, exc, final=True)
        raise


@worker_ready.connect
def _sweep_while_serving(sender, **kwargs) -> None:
    if consumes(sender, "segment"):
        start_sweeping("segmentation", sweep_segmentation)
    if consumes(sender, "default"):
        start_sweeping("iiif-fetch", sweep_fetches)
    # An invitation whose mail's message was lost is sent again by a worker of its queue.
    if consumes(sender, "mail"):
        start_sweeping("invitation-mail", requeue_lost_mail)
