from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ocrreview.corpus.access import admin_collection_for
from ocrreview.corpus.upload_forms import IiifImportForm, UploadForm, too_many_files_message


@login_required
def upload(request, pk: int):
    """The form, and its results: the script posts with XMLHttpRequest (one request, so
    XML files meet their images) and swaps in the results fragment."""
    collection = admin_collection_for(request.user, pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    results = None
    if request.method == "POST" and form.is_valid():
        results = form.ingest(collection, request.user)
        form = UploadForm()
    status = 400 if request.method == "POST" and results is None else 200
    context = _context(collection, form, IiifImportForm(), results)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return render(request, "corpus/upload_results.html", context, status=status)
    return render(request, "corpus/upload.html", context, status=status)


@login_required
@require_POST
def import_iiif(request, pk: int):
    """A IIIF manifest URL: its document, whose images a worker fetches, in the collection's
    list; or the upload page again with the reason the manifest was refused."""
    collection = admin_collection_for(request.user, pk)
    form = IiifImportForm(request.POST)
    imported = form.import_into(collection, request.user) if form.is_valid() else None
    if imported is None:
        context = _context(collection, UploadForm(), form, None)
        return render(request, "corpus/upload.html", context, status=400)
    document, fetching = imported
    if fetching:
        messages.success(
            request,
            f"“{document.title}”: fetching {len(document.iiif_canvases)} images from the "
            "manifest's server.",
        )
    else:
        messages.info(request, f"This manifest is already in the collection as “{document.title}”.")
    return redirect("collection_detail", pk=collection.pk)


def _context(collection, form, iiif_form, results) -> dict:
    return {
        "collection": collection,
        "form": form,
        "iiif_form": iiif_form,
        "results": results,
        "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
        "too_many_files": too_many_files_message(),
    }
