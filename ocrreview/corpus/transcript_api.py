"""Transcript downloads through the API, as on the web (transcript_views.py)."""

from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from ocrreview.corpus import transcripts
from ocrreview.corpus.access import admin_collection_for, visible_document
from ocrreview.corpus.api_base import error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.transcript_views import DocumentTranscriptForm, TranscriptOptionsForm

REVIEWED_ONLY = OpenApiParameter(
    "reviewed_only",
    bool,
    description="leave out the machine readings no person reviewed, each marked where it was "
    "(`[not reviewed]`, a TEI `gap`, an empty PAGE/ALTO line with its status); by default "
    "they are in, marked in PAGE, ALTO and TEI with their confidence",
)


class ServesTranscript(APIView):
    def perform_content_negotiation(self, request, force=False):
        """`format` names the transcript's format, which REST framework would take for one of
        its renderers' (a 404 for any but json); and errors are JSON whatever is accepted."""
        renderer = JSONRenderer()
        return renderer, renderer.media_type


class DocumentTranscript(ServesTranscript):
    @extend_schema(
        operation_id="documents_transcript",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                required=True,
                enum=list(transcripts.FORMATS),
                description="; ".join(
                    f"`{name}`: {what}" for name, what in transcripts.FORMATS.items()
                ),
            ),
            REVIEWED_ONLY,
        ],
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            (200, "application/zip"): OpenApiTypes.BINARY,
            (200, "application/tei+xml"): OpenApiTypes.STR,
            409: OpenApiResponse(ErrorSerializer, description="still being cut into lines"),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        """The document's transcript, every line in reading order, for any member of its
        collection, named after its title: plain text, PAGE XML or ALTO (a zip of a file a
        page), or TEI P5. A line not read yet is marked, never left out; a 409 while the
        document is still being cut into lines."""
        document = visible_document(request.user, pk)
        form = DocumentTranscriptForm(request.query_params)
        if not form.is_valid():
            return error(form.first_error(), fields=form.errors.get_json_data())
        reviewed_only = form.cleaned_data["reviewed_only"]
        try:
            found = transcripts.transcript(document, reviewed_only=reviewed_only)
        except transcripts.NotSegmented as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        return transcripts.download(found, form.cleaned_data["format"])


class CollectionTranscripts(ServesTranscript):
    @extend_schema(
        operation_id="collections_transcripts",
        parameters=[REVIEWED_ONLY],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        """Every document's transcript in every format, a folder a document, in one zip sent
        as it is written (collection admins only); documents still being cut into lines are
        named in its `NOT-INCLUDED.txt`."""
        collection = admin_collection_for(request.user, pk)
        form = TranscriptOptionsForm(request.query_params)
        if not form.is_valid():
            return error(form.first_error(), fields=form.errors.get_json_data())
        return transcripts.collection_download(
            collection, reviewed_only=form.cleaned_data["reviewed_only"]
        )
