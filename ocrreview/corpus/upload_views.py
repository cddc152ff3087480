from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ocrreview.corpus.access import admin_collection_for
from ocrreview.corpus.upload_forms import UploadForm, too_many_files_message


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
    context = {
        "collection": collection,
        "form": form,
        "results": results,
        "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
        "too_many_files": too_many_files_message(),
    }
    status = 400 if request.method == "POST" and results is None else 200
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return render(request, "corpus/upload_results.html", context, status=status)
    return render(request, "corpus/upload.html", context, status=status)
