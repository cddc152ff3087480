"""The HTTP API of collections and documents (Django REST framework; the schema and its
documentation page are at /api/schema/ and /api/docs/). Same rules as the web: collections
not yours are 404, admin actions 403. Authentication, pagination and the error shape: `api_base.py`."""

from django.core.exceptions import TooManyFilesSent
from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus import actions
from ocrreview.corpus.access import admin_collection_for, collection_for, visible_collections
from ocrreview.corpus.api_base import bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.forms import CollectionSettingsForm
from ocrreview.corpus.iiif_export import document_manifest
from ocrreview.corpus.models import Collection, Document
from ocrreview.corpus.upload_forms import IiifImportForm, UploadForm, too_many_files_message
from ocrreview.transcription.forms import RerecognizeForm
from ocrreview.transcription.services import do_rerecognize, document_progress


class CollectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "licence",
            "confidence_threshold",
            "nbest_size",
            "model_version",
            "special_characters",
            "created_at",
        ]


class CollectionSettingsSerializer(serializers.Serializer):
    """For the schema; the change itself is validated by the web's settings form."""

    description = serializers.CharField(required=False, allow_blank=True)
    confidence_threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    nbest_size = serializers.IntegerField(required=False, min_value=1, max_value=10)
    model_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="a shared model, or one of the collection's own that the promotion gate "
        "(or an override) let through",
    )
    special_characters = serializers.CharField(required=False, allow_blank=True, max_length=500)
    licence = serializers.CharField(required=False, allow_blank=True, max_length=200)


class DocumentProgressSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Document.Status.choices)
    status_display = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    pages = serializers.IntegerField(help_text="pages stored")
    pages_expected = serializers.IntegerField(
        help_text="the pages the document will have: a IIIF import's canvases"
    )
    lines_total = serializers.IntegerField()
    lines_done = serializers.IntegerField()
    lines_failed = serializers.IntegerField()
    percent = serializers.IntegerField(min_value=0, max_value=100)
    models = serializers.ListField(child=serializers.CharField())
    finished = serializers.BooleanField()


class UploadSerializer(serializers.Serializer):
    """For the schema; the upload itself is validated by the web's UploadForm."""

    files = serializers.ListField(
        child=serializers.FileField(),
        help_text="JPEG, PNG, TIFF, PDF, or ZIP archives of these; PAGE XML or ALTO files "
        "beside their images.",
    )
    segmentation = serializers.ChoiceField(
        choices=Document.Segmentation.choices, default=Document.Segmentation.KRAKEN
    )
    import_text = serializers.BooleanField(
        default=False, help_text="Take the text of PAGE/ALTO files as reviewed ground truth."
    )


class UploadResultSerializer(serializers.Serializer):
    file = serializers.CharField()
    document = serializers.IntegerField(allow_null=True)
    pages = serializers.IntegerField()
    lines = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class UploadResultsSerializer(serializers.Serializer):
    files = UploadResultSerializer(many=True)


class RecognizeSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    document = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="only this document"
    )


class QueuedSerializer(serializers.Serializer):
    queued_lines = serializers.IntegerField()


class CollectionList(generics.ListAPIView):
    """The collections you are a member of (all of them for site staff)."""

    serializer_class = CollectionSerializer

    def get_queryset(self):
        return visible_collections(self.request.user).order_by("id")


class CollectionDetail(generics.RetrieveAPIView):
    serializer_class = CollectionSerializer
    parser_classes = [JSONParser]

    def get_object(self):
        return collection_for(self.request.user, self.kwargs["pk"])

    @extend_schema(request=CollectionSettingsSerializer, responses=CollectionSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        """Change the collection's settings (collection admins only), as its settings page
        does; fields left out keep their values."""
        collection = admin_collection_for(request.user, pk)
        fields = CollectionSettingsForm._meta.fields
        form = bind_form(
            CollectionSettingsForm,
            request.data,
            defaults=model_to_dict(collection, fields),
            instance=collection,
        )
        if not form.is_valid():
            return error("Invalid settings.", fields=form.errors.get_json_data())
        form.save()
        return Response(CollectionSerializer(collection).data)


class DocumentFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)


@extend_schema(parameters=[DocumentFilters])
class CollectionDocuments(generics.ListAPIView):
    """Every document of the collection, optionally in one `status`, with its recognition
    progress, oldest first."""

    serializer_class = DocumentProgressSerializer

    def get_queryset(self):
        collection = collection_for(self.request.user, self.kwargs["pk"])
        filters = DocumentFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        documents = collection.documents.all()
        if "status" in filters.validated_data:
            documents = documents.filter(status=filters.validated_data["status"])
        return documents

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        progress = document_progress(Document.objects.filter(pk__in=[d.pk for d in page]))
        return self.get_paginated_response([progress[d.pk] for d in page])

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: UploadResultsSerializer, 400: UploadResultsSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Upload files as the web's upload page does (collection admins only). 201 when at
        least one document was made; each file says what became of it."""
        collection = admin_collection_for(request.user, pk)
        try:
            # The schema's default, which the web's form leaves to its page's initial value.
            fields = request.POST.copy()
            fields.setdefault("segmentation", Document.Segmentation.KRAKEN)
            form = UploadForm(fields, request.FILES)
        except TooManyFilesSent:
            return error(too_many_files_message())
        if not form.is_valid():
            return error("Invalid upload.", fields=form.errors.get_json_data())
        results = form.ingest(collection, request.user)
        code = status.HTTP_201_CREATED if any(r.document for r in results) else 400
        return Response({"files": [r.to_dict() for r in results]}, status=code)


class DocumentDetail(APIView):
    @extend_schema(responses=DocumentProgressSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """A document's state and recognition progress."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible, pk=pk)
        return Response(document_progress(Document.objects.filter(pk=document.pk))[document.pk])

    @extend_schema(request=None, responses={204: None, 409: ErrorSerializer})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete the document with its pages, lines and files (collection admins only). A
        409 while it is being segmented or recognised, and for a document whose lines carry
        corrections: the project keeps every correction with its history."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible, pk=pk)
        admin_collection_for(request.user, document.collection_id)
        try:
            actions.do_delete_document(document, request.user)
        except actions.DocumentInUse as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollectionRecognize(APIView):
    @extend_schema(request=RecognizeSerializer, responses={202: QueuedSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Re-run recognition of the collection, or of one `document`, with `model_version`
        (collection admins only)."""
        collection = admin_collection_for(request.user, pk)
        body = RecognizeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = RerecognizeForm(body.validated_data, collection=collection)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        document = form.cleaned_data["document"]
        documents = collection.documents
        if document:
            documents = documents.filter(pk=document.pk)
        queued = do_rerecognize(documents.all(), form.cleaned_data["model_version"])
        return Response({"queued_lines": queued}, status=status.HTTP_202_ACCEPTED)


class IiifImportSerializer(serializers.Serializer):
    """For the schema; the request itself is validated by the upload page's IIIF form."""

    manifest = serializers.URLField(
        max_length=2000, help_text="a IIIF Presentation manifest URL, version 2 or 3"
    )
    segmentation = serializers.ChoiceField(
        choices=IiifImportForm.base_fields["segmentation"].choices,
        default=Document.Segmentation.KRAKEN,
    )


class CollectionIiifImport(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=IiifImportSerializer,
        responses={200: DocumentProgressSerializer, 202: DocumentProgressSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Import a IIIF manifest (collection admins only): 202 with its new document, whose
        images a worker fetches (follow `pages` of `pages_expected`); 200 with the document an
        earlier import of the same URL made; 400 with the reason when the manifest cannot be
        imported, and nothing is stored."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(IiifImportForm, request.data)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        imported = form.import_into(collection, request.user)
        if imported is None:
            return error(form.errors["manifest"][0], fields=form.errors.get_json_data())
        document, fetching = imported
        progress = document_progress(Document.objects.filter(pk=document.pk))[document.pk]
        code = status.HTTP_202_ACCEPTED if fetching else status.HTTP_200_OK
        return Response(progress, status=code)


class DocumentIiifManifest(APIView):
    @extend_schema(operation_id="documents_iiif_manifest", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        """The document's transcription as a IIIF Presentation 3 manifest: every line with
        text a `supplementing` Web Annotation on its page's canvas (polygon as SvgSelector,
        else an `#xywh=` box), with its reviewed text, or the model's text and confidence.
        A document imported from IIIF keeps its source's canvas ids and image services."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible.select_related("collection"), pk=pk)
        return Response(document_manifest(document, request.build_absolute_uri))
