"""The HTTP API of collections (Django REST framework; the schema and its documentation page
are at /api/schema/ and /api/docs/). Same rules as the web: collections not yours are 404,
admin actions 403. Authentication, pagination and the error shape: `api_base.py`. Documents,
whose answers carry their recognition progress, are in `transcription/api.py`."""

from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus.access import admin_collection_for, collection_for, visible_collections
from ocrreview.corpus.actions import do_save_collection_settings
from ocrreview.corpus.api_base import TextJSONParser, bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.forms import CollectionSettingsForm
from ocrreview.corpus.iiif_export import IIIF_JSON, NoCanvases, document_manifest
from ocrreview.corpus.models import Collection, Document


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
            "language",
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
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=35, help_text="a BCP 47 tag: fr, la, en-GB"
    )


class CollectionList(generics.ListAPIView):
    """The collections you are a member of (all of them for site staff)."""

    serializer_class = CollectionSerializer

    def get_queryset(self):
        return visible_collections(self.request.user).order_by("id")


class CollectionDetail(generics.RetrieveAPIView):
    serializer_class = CollectionSerializer
    parser_classes = [TextJSONParser]

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
        saved = do_save_collection_settings(form, [name for name in fields if name in request.data])
        return Response(CollectionSerializer(saved).data)


class IiifManifestRenderer(JSONRenderer):
    """JSON-LD, for a IIIF viewer or client that asks for a manifest by its media type."""

    media_type = "application/ld+json"


class DocumentIiifManifest(APIView):
    renderer_classes = [JSONRenderer, IiifManifestRenderer]

    @extend_schema(
        operation_id="documents_iiif_manifest",
        responses={200: OpenApiTypes.OBJECT, 409: ErrorSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        """The document's transcription as a IIIF Presentation 3 manifest: every line with
        text a `supplementing` Web Annotation on its page's canvas (polygon as SvgSelector,
        else an `#xywh=` box), with its reviewed text, or the model's text and confidence.
        A document imported from IIIF keeps its source's canvas ids and image services."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible.select_related("collection"), pk=pk)
        try:
            manifest = document_manifest(
                document,
                request.build_absolute_uri,
                image_path=lambda page: reverse("api_page_image", args=[page.pk]),
            )
        except NoCanvases as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        if isinstance(request.accepted_renderer, IiifManifestRenderer):
            return Response(manifest, content_type=IIIF_JSON)
        return Response(manifest)
