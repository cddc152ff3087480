from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ocrreview.corpus.access import admin_collection_for, collection_for, is_collection_admin
from ocrreview.transcription import ops
from ocrreview.transcription.forms import RerecognizeForm
from ocrreview.transcription.services import do_reread, document_progress


@login_required
def progress(request, pk: int):
    collection = collection_for(request.user, pk)
    rows = list(document_progress(collection.documents.all()).values())
    context = {
        "collection": collection,
        "rows": rows,
        # The fragment stops polling once every document is finished.
        "polling": any(not row["finished"] for row in rows),
        "form": RerecognizeForm(collection=collection)
        if is_collection_admin(request.user, collection)
        else None,
    }
    if request.headers.get("HX-Request"):
        return render(request, "transcription/_progress_rows.html", context)
    return render(request, "transcription/progress.html", context)


@login_required
@require_POST
def rerecognize(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = RerecognizeForm(request.POST, collection=collection)
    if not form.is_valid():
        messages.error(request, "Choose a model version (and, if you like, one document).")
        return redirect("recognition_progress", pk=collection.pk)
    version = form.cleaned_data["model_version"]
    queued = do_reread(
        collection, version, document=form.cleaned_data["document"], actor=request.user
    )
    messages.success(request, f"{queued} lines queued for recognition with {version}.")
    return redirect("recognition_progress", pk=collection.pk)


@login_required
def queues(request):
    # Not staff_member_required: it sent a signed-out admin (a bookmark, a session ended) to the
    # Django admin's login, and a reviewer to it too, asked to log in again as someone else.
    if not request.user.is_staff:
        raise PermissionDenied("Only site staff may see the queues and workers.")
    lengths = ops.queue_lengths()
    return render(
        request,
        "transcription/queues.html",
        {
            "queues": lengths,
            # No worker can answer through a broker that is down; asking would only wait out
            # kombu's connection retries. Those reading lines show all the same.
            "workers": ops.workers(ask=lengths is not None),
            "requests": ops.recognition_counts(),
        },
    )
