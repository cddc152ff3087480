from datetime import timedelta

from django import template
from django.utils.html import format_html

from ocrreview.corpus.calibration_guard import default_model_name
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


@register.simple_tag(takes_context=True)
def reading_model(context: template.Context, collection: Collection) -> str:
    """The model that reads the collection's lines, as the home page's list names it: its own
    version, else the site's default, or the starter where it reads in place of either (the
    fallbacks model_fallback_notice explains to admins). The fallbacks are read once a page,
    not once a collection."""
    fallbacks = context.render_context.get("reading_model_fallbacks")
    if fallbacks is None:
        fallbacks = {
            fallback.model_version.name: fallback for fallback in services.model_fallbacks()
        }
        context.render_context["reading_model_fallbacks"] = fallbacks
    chosen = collection.model_version
    name = chosen.name if chosen is not None else default_model_name()
    if name in fallbacks:
        return format_html(
            '<span title="{} could not be loaded">starter model (offline fallback)</span>', name
        )
    return name if chosen is not None else format_html("{} (site default)", name)
