from datetime import timedelta

from django import template

from ocrreview.corpus.models import Collection
from ocrreview.transcription import services

register = template.Library()


@register.inclusion_tag("transcription/_model_fallback.html")
def model_fallback_notice(collection: Collection | None = None) -> dict:
    """Which models the starter reads for, and why: the collection's, or (on the Queues page)
    every one. A tag, so that the collection page, whose view is corpus's and may not ask
    transcription, shows it too."""
    fallbacks = services.model_fallbacks(collection)
    return {
        "fallbacks": [
            # The first failure of the spell is worth naming once retries have failed too.
            (fallback, fallback.failed_at - fallback.since >= timedelta(minutes=1))
            for fallback in fallbacks
        ],
        "retry_minutes": services.FALLBACK_RETRY_SECONDS // 60,
    }
