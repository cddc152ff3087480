from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ocrreview.corpus import audit, keyset
from ocrreview.corpus.access import admin_collection_for
from ocrreview.corpus.audit_forms import EventFilterForm


@login_required
@require_GET
def collection_history(request, pk: int):
    """Who changed what in the collection, newest first, for its admins."""
    collection = admin_collection_for(request.user, pk)
    form = EventFilterForm(request.GET, collection=collection)
    context = {"collection": collection, "form": form}
    if form.is_valid():
        data = form.cleaned_data
        page = audit.events_page(
            audit.events(collection, **form.filters()),
            data["cursor"],
            data["page_size"] or keyset.PAGE_SIZE,
        )
        context["rows"] = audit.history_rows(page.rows)
        context["pages"] = audit.pages_still_there(collection, page.rows)
        context["older_url"] = keyset.page_query(request.GET, page.older, newer=False)
        context["newer_url"] = keyset.page_query(request.GET, page.newer, newer=True)
    return render(request, "corpus/history.html", context, status=400 if form.errors else 200)
