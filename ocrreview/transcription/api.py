"""The HTTP API of documents: upload, IIIF import, deletion and re-recognition, each
answering with the documents' recognition progress. The rules are corpus/api.py's."""

from django.core.exceptions import TooManyFilesSent
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus import actions, workflow
from ocrreview.corpus.access import (
    admin_collection_for,
    collection_for,
    is_collection_admin,
    visible_collections,
    visible_document,
)
from ocrreview.corpus.api_base import RequestSerializer, TextJSONParser, bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.forms import AssigneesForm, ReviewStateForm
from ocrreview.corpus.models import Collection, Document
from ocrreview.corpus.upload_forms import IiifImportForm, UploadForm, too_many_files_message
from ocrreview.transcription.forms import RerecognizeForm
from ocrreview.transcription.services import do_reread, document_progress


class AssigneeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


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
    review_state = serializers.ChoiceField(
        choices=Document.ReviewState.choices,
        help_text="where people say its review stands; a final document's lines are locked",
    )
    assignees = AssigneeSerializer(
        many=True,
        help_text="the members it is assigned to, whose queue offers it first; to a member "
        "who is no admin of the collection, only themselves",
    )


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
    folders = serializers.BooleanField(
        default=False,
        help_text="Each folder of images in a ZIP archive is one document, its pages in name "
        "order (a Transkribus export's folder, with its mets.xml, always is).",
    )


class UploadResultSerializer(serializers.Serializer):
    file = serializers.CharField()
    document = serializers.IntegerField(
        allow_null=True, help_text="the document made, or the one a `duplicate` is already"
    )
    pages = serializers.IntegerField()
    lines = serializers.IntegerField()
    error = serializers.CharField(
        allow_blank=True, help_text="why the file was not added; empty when it was"
    )
    duplicate = serializers.BooleanField(
        help_text="the same bytes are in the collection already, as `document`: not added twice"
    )


class UploadResultsSerializer(serializers.Serializer):
    files = UploadResultSerializer(many=True)


class UploadRefusedSerializer(ErrorSerializer):
    files = UploadResultSerializer(
        many=True, required=False, help_text="when the files were read: what became of each"
    )


class RecognizeSerializer(RequestSerializer):
    model_version = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    document = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="only this document"
    )


class QueuedSerializer(serializers.Serializer):
    queued_lines = serializers.IntegerField()


class DocumentFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)


@extend_schema_view(get=extend_schema(parameters=[DocumentFilters]))
class CollectionDocuments(generics.ListAPIView):
    """Every document of the collection, optionally in one `status`, with its recognition
    progress, oldest first."""

    serializer_class = DocumentProgressSerializer

    def get_queryset(self):
        self.collection = collection_for(self.request.user, self.kwargs["pk"])
        filters = DocumentFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        documents = self.collection.documents.all()
        if "status" in filters.validated_data:
            documents = documents.filter(status=filters.validated_data["status"])
        return documents

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        progress = document_progress(Document.objects.filter(pk__in=[d.pk for d in page]))
        # A document deleted since the page was read is left out, not a KeyError.
        rows = [progress[d.pk] for d in page if d.pk in progress]
        return self.get_paginated_response(as_seen_by(request.user, self.collection, rows))

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={
            201: UploadResultsSerializer,
            200: UploadResultsSerializer,
            400: UploadRefusedSerializer,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        """Upload files as the web's upload page does (collection admins only). 201 when at
        least one document was made, 200 when every file was in the collection already (a
        retried upload: each names its `document`); each file says what became of it, and
        so does a 400 when none could be added."""
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
        files = [r.to_dict() for r in results]
        if any(r.document and not r.duplicate for r in results):
            return Response({"files": files}, status=status.HTTP_201_CREATED)
        if all(r.ok or r.duplicate for r in results):
            return Response({"files": files})
        return error("No file was added; each file says why.", files=files)


def as_seen_by(user, collection: Collection, rows: list[dict]) -> list[dict]:
    """Who works on what is the coordinators' to see, as on the web's pages: a member who is
    no admin of the collection is shown of a document's assignees only themselves."""
    if is_collection_admin(user, collection):
        return rows
    return [
        {**row, "assignees": [each for each in row["assignees"] if each["id"] == user.pk]}
        for row in rows
    ]


def progress_of(document: Document, user) -> dict:
    """404 for a document deleted since it was looked up (another request, an admin)."""
    progress = document_progress(Document.objects.filter(pk=document.pk)).get(document.pk)
    if progress is None:
        raise Http404
    return as_seen_by(user, document.collection, [progress])[0]


class DocumentDetail(APIView):
    @extend_schema(responses=DocumentProgressSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """A document's state and recognition progress."""
        visible = Document.objects.filter(collection__in=visible_collections(request.user))
        document = get_object_or_404(visible, pk=pk)
        return Response(progress_of(document, request.user))

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


class ReviewStateSerializer(RequestSerializer):
    """For the schema; the request itself is validated by the web's form."""

    review_state = serializers.ChoiceField(choices=Document.ReviewState.choices)
    expected_review_state = serializers.ChoiceField(
        choices=Document.ReviewState.choices,
        required=False,
        help_text="the state you saw, which a change made meanwhile makes a 409; left out, the "
        "state the document has as the request is read",
    )


class AssigneesSerializer(RequestSerializer):
    """For the schema; the request itself is validated by the web's form."""

    assignees = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        help_text="user ids of members of the collection: all the document's assignees "
        "(an empty list: nobody)",
    )
    expected_assignees = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        help_text="the assignees you saw (an empty list: nobody): a 409, and nothing changed, "
        "when they are no longer the document's; left out, not checked",
    )


class DocumentReviewState(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=ReviewStateSerializer,
        responses={
            200: DocumentProgressSerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def put(self, request: Request, pk: int) -> Response:
        """Move the document to another review state: collection admins to any, a member it is
        assigned to from open to in progress and from in progress to in QA (403 otherwise); a
        409 when its state is no longer `expected_review_state`."""
        document = visible_document(request.user, pk)
        form = bind_form(ReviewStateForm, request.data)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        try:
            workflow.do_set_review_state(
                document,
                form.cleaned_data["review_state"],
                actor=request.user,
                expected=form.cleaned_data["expected_review_state"] or None,
            )
        except workflow.NotAllowed as exc:
            return error(str(exc), status.HTTP_403_FORBIDDEN)
        except workflow.StateConflict as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        except workflow.WorkflowError as exc:
            return error(str(exc))
        return Response(progress_of(document, request.user))


class DocumentAssignees(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=AssigneesSerializer,
        responses={
            200: DocumentProgressSerializer,
            400: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def put(self, request: Request, pk: int) -> Response:
        """Assign the document to these members, and to no one else (collection admins only):
        their review queue offers its lines first. A 409 when `expected_assignees` are no
        longer its assignees."""
        document = visible_document(request.user, pk)
        collection = admin_collection_for(request.user, document.collection_id)
        if isinstance(request.data, dict) and "assignees" not in request.data:
            # Left out, the form would read nobody, and take the document from everyone.
            required = [{"message": "This field is required.", "code": "required"}]
            return error("Invalid request.", fields={"assignees": required})
        form = bind_form(AssigneesForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        # Left out, the list is set whatever it replaces, as before the check was offered.
        expected = form.cleaned_data["expected_assignees"]
        try:
            workflow.do_set_assignees(
                document,
                form.cleaned_data["assignees"],
                actor=request.user,
                expected=expected if "expected_assignees" in request.data else None,
            )
        except workflow.AssigneesConflict as exc:
            return error(str(exc), status.HTTP_409_CONFLICT)
        except workflow.WorkflowError as exc:
            return error(str(exc))
        return Response(progress_of(document, request.user))


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
        queued = do_reread(
            collection,
            form.cleaned_data["model_version"],
            document=form.cleaned_data["document"],
            actor=request.user,
        )
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
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=IiifImportSerializer,
        responses={
            200: DocumentProgressSerializer,
            202: DocumentProgressSerializer,
            502: ErrorSerializer,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        """Import a IIIF manifest (collection admins only): 202 with its new document, whose
        images a worker fetches (follow `pages` of `pages_expected`); 200 with the document an
        earlier import of the same URL made; 400 with the reason when the manifest cannot be
        imported, 502 when its server cannot be reached (no such host, no answer in time, a
        5xx), and nothing is stored."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(IiifImportForm, request.data)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        imported = form.import_into(collection, request.user)
        if imported is None:
            code = status.HTTP_502_BAD_GATEWAY if form.unreachable else status.HTTP_400_BAD_REQUEST
            return error(form.errors["manifest"][0], code, fields=form.errors.get_json_data())
        document, fetching = imported
        progress = progress_of(document, request.user)
        code = status.HTTP_202_ACCEPTED if fetching else status.HTTP_200_OK
        return Response(progress, status=code)
