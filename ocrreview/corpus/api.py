"""The HTTP API: `Authorization: Token <key>` (see `manage.py create_api_token`), JSON out.
Same rules as the web: collections not yours are 404, admin actions 403."""

from functools import wraps

from django.core.exceptions import PermissionDenied, TooManyFilesSent
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ocrreview.corpus.access import admin_collection_for, collection_for, visible_collections
from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document
from ocrreview.corpus.tokens import user_for_key
from ocrreview.corpus.upload_forms import UploadForm, too_many_files_message
from ocrreview.transcription.forms import RerecognizeForm
from ocrreview.transcription.services import do_rerecognize, document_progress


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def token_required(view):
    """Token auth only: a browser session must not be usable cross-site without CSRF."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        user = user_for_key(key.strip()) if scheme == "Token" and key.strip() else None
        if user is None:
            response = _error(401, "Send a valid API token: 'Authorization: Token <key>'.")
            response["WWW-Authenticate"] = "Token"
            return response
        request.user = user
        try:
            return view(request, *args, **kwargs)
        except Http404:
            return _error(404, "Not found.")
        except PermissionDenied as exc:
            return _error(403, str(exc) or "Forbidden.")

    return wrapper


@token_required
@require_http_methods(["GET", "POST"])
def collection_documents(request, pk: int):
    if request.method == "GET":
        collection = collection_for(request.user, pk)
        progress = document_progress(collection.documents.all())
        return JsonResponse({"documents": list(progress.values())})
    collection = admin_collection_for(request.user, pk)
    try:
        form = UploadForm(request.POST, request.FILES)
    except TooManyFilesSent:
        return _error(400, too_many_files_message())
    if not form.is_valid():
        return _error(400, "Invalid upload.", fields=form.errors.get_json_data())
    results = do_ingest(
        collection,
        [Upload.from_django(f) for f in form.cleaned_data["files"]],
        user=request.user,
        segmentation=form.cleaned_data["segmentation"],
        import_text=form.cleaned_data["import_text"],
    )
    status = 201 if any(r.document for r in results) else 400
    return JsonResponse({"files": [r.to_dict() for r in results]}, status=status)


@token_required
@require_http_methods(["GET"])
def document_detail(request, pk: int):
    document = get_object_or_404(
        Document.objects.filter(collection__in=visible_collections(request.user)), pk=pk
    )
    return JsonResponse(document_progress(Document.objects.filter(pk=document.pk))[document.pk])


@token_required
@require_http_methods(["POST"])
def collection_recognize(request, pk: int):
    """Re-run recognition of the collection, or of one `document`, with `model_version`."""
    collection = admin_collection_for(request.user, pk)
    form = RerecognizeForm(request.POST, collection=collection)
    if not form.is_valid():
        return _error(400, "Invalid request.", fields=form.errors.get_json_data())
    document = form.cleaned_data["document"]
    documents = collection.documents.filter(pk=document.pk) if document else collection.documents
    queued = do_rerecognize(documents.all(), form.cleaned_data["model_version"])
    return JsonResponse({"queued_lines": queued}, status=202)
