from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from ocrreview.corpus.access import admin_collection_for, collection_for, visible_collections
from ocrreview.corpus.forms import CollectionSettingsForm
from ocrreview.corpus.progress import line_counts


@login_required
def home(request):
    collections = visible_collections(request.user).select_related("model_version")
    rows = [(c, line_counts(c.lines.all())) for c in collections]
    return render(request, "corpus/home.html", {"rows": rows})


@login_required
def collection_detail(request, pk: int):
    collection = collection_for(request.user, pk)
    documents = collection.documents.all()
    rows = [(d, line_counts(d.lines.all())) for d in documents]
    return render(
        request,
        "corpus/collection_detail.html",
        {"collection": collection, "rows": rows, "counts": line_counts(collection.lines.all())},
    )


@login_required
def collection_settings(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = CollectionSettingsForm(request.POST or None, instance=collection)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("collection_detail", pk=collection.pk)
    return render(
        request, "corpus/collection_settings.html", {"collection": collection, "form": form}
    )
