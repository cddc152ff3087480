"""The HTTP API of lines: read them with their n-best and history, take them from the review
queue under a lease, and correct them with the version read, as the editor does (a stale
version is a 409 carrying both texts). Permissions as in the web: any member of the line's
collection may read, claim and correct it; its admins also list its corrections by person and
undo one person's saves."""

from django.db.models import Prefetch
from django.http import FileResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus import keyset
from ocrreview.corpus.access import (
    admin_collection_for,
    collection_for,
    is_collection_admin,
    visible_collections,
)
from ocrreview.corpus.api_base import (
    RequestSerializer,
    ServesFile,
    TextJSONParser,
    bind_form,
    error,
)
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.line_text import MAX_TEXT_LENGTH
from ocrreview.corpus.models import Line, Page
from ocrreview.review import (
    actions,
    coordination,
    images,
    queue,
    reviewer_days,
    saves_undo,
    search,
)
from ocrreview.review.forms import (
    ReorderForm,
    RevertUserForm,
    ReviewerDaysForm,
    SearchForm,
    SortUndoForm,
    TrailFilterForm,
    first_error,
)
from ocrreview.review.models import Correction, SavesUndo
from ocrreview.transcription.models import Hypothesis
from recognition.preprocess import ImageError


class HypothesisSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hypothesis
        fields = ["id", "rank", "text", "confidence", "calibrated_confidence", "share", "tokens"]


class CorrectionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", allow_null=True, default=None)

    class Meta:
        model = Correction
        fields = [
            "id",
            "action",
            "user",
            "created_at",
            "text_before",
            "text_after",
            "hypothesis",
            "line_version",
            "note",
        ]


class LineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Line
        fields = [
            "id",
            "collection",
            "document",
            "page",
            "order",
            "text",
            "status",
            "confidence",
            "human_text",
            "unclear",
            "unclear_note",
            "model_version",
            "version",
            "bbox",
            "polygon",
            "baseline",
            "updated_at",
        ]


class LineDetailSerializer(LineSerializer):
    hypotheses = HypothesisSerializer(many=True, source="current_hypotheses")
    history = CorrectionSerializer(many=True, source="trail")

    class Meta(LineSerializer.Meta):
        fields = [*LineSerializer.Meta.fields, "hypotheses", "history"]


class SaveSerializer(RequestSerializer):
    text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT_LENGTH
    )
    expected_version = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="the line's `version` you read"
    )
    hypothesis = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="the reading you started from"
    )

    def validate_text(self, text: str) -> str:
        # The editor's rules for a line's text, refused under `text` as this field's own are.
        try:
            return actions.clean_text(text)
        except actions.ReviewError as exc:
            raise serializers.ValidationError(str(exc)) from None


READING = "reading"


class LastChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[*Correction.Action.choices, (READING, "Read by a model")],
        help_text="what a person did (as in a line's history), or `reading`: a model read it",
    )
    user = serializers.CharField(allow_null=True, help_text="who; null for a model's reading")
    model_version = serializers.IntegerField(
        allow_null=True, help_text="the model that read it; null for a person's change"
    )
    at = serializers.DateTimeField()


class ConflictSerializer(serializers.Serializer):
    error = serializers.CharField()
    version = serializers.IntegerField(help_text="the line's version now")
    text = serializers.CharField(help_text="the line's text now (theirs)")
    attempted_text = serializers.CharField(help_text="the text you sent (yours)")
    last_change = LastChangeSerializer(
        allow_null=True,
        help_text="who or what made the line's version now; null when that was no save nor "
        "reading (a box moved, a threshold applied)",
    )


def _last_change(line: Line) -> dict | None:
    change = actions.last_change(line)
    if "last" in change:
        last = change["last"]
        user = last.user.get_username() if last.user else None
        change = {"action": last.action, "user": user, "model_version": None, "at": last.created_at}
    elif "reading" in change:
        reading = change["reading"]
        change = {
            "action": READING,
            "user": None,
            "model_version": reading.model_version_id,
            "at": reading.created_at,
        }
    else:
        return None
    return LastChangeSerializer(change).data


def _line_for(request: Request, pk: int) -> Line:
    lines = Line.objects.filter(collection__in=visible_collections(request.user))
    return get_object_or_404(
        lines.prefetch_related(
            Prefetch("corrections", Correction.objects.select_related("user"), to_attr="trail")
        ),
        pk=pk,
    )


def _line_detail(line: Line) -> dict:
    line.current_hypotheses = Hypothesis.objects.filter(
        line=line, model_version_id=line.model_version_id
    ).order_by("rank")
    return LineDetailSerializer(line).data


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, enum=Line.Status.values),
        OpenApiParameter("document", int),
        OpenApiParameter("confidence_below", OpenApiTypes.FLOAT),
        OpenApiParameter("confidence_at_least", OpenApiTypes.FLOAT),
        OpenApiParameter("unclear", bool, description="true: only lines marked unclear"),
    ]
)
class CollectionLines(generics.ListAPIView):
    """The collection's lines in id order, filtered by status, document, confidence and the
    unclear mark."""

    serializer_class = LineSerializer

    def get_queryset(self):
        collection = collection_for(self.request.user, self.kwargs["pk"])
        filters = LineFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        lines = Line.objects.filter(collection=collection)
        wanted = filters.validated_data
        if "status" in wanted:
            lines = lines.filter(status=wanted["status"])
        if "document" in wanted:
            lines = lines.filter(document_id=wanted["document"])
        if "confidence_below" in wanted:
            lines = lines.filter(confidence__lt=wanted["confidence_below"])
        if "confidence_at_least" in wanted:
            lines = lines.filter(confidence__gte=wanted["confidence_at_least"])
        if wanted.get("unclear") is not None:
            lines = lines.filter(unclear=wanted["unclear"])
        return lines


class LineFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Line.Status.choices, required=False)
    document = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    confidence_below = serializers.FloatField(required=False, min_value=0, max_value=1)
    confidence_at_least = serializers.FloatField(required=False, min_value=0, max_value=1)
    # Null when not asked for (a form's missing checkbox would read as false).
    unclear = serializers.BooleanField(required=False, allow_null=True)


class LineDetail(APIView):
    @extend_schema(responses=LineDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """A line with the n-best of the model that read it and its correction history."""
        return Response(_line_detail(_line_for(request, pk)))


class LineCorrections(APIView):
    @extend_schema(
        request=SaveSerializer,
        responses={201: CorrectionSerializer, 200: CorrectionSerializer, 409: ConflictSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Save the line's text, stating the version you read. An empty `text` empties the
        line (a box with no writing in it): the API does not ask again, as the editor does. If
        the line changed since, nothing is saved and the answer is a 409 with its text now and
        yours, and who or what changed it. The same save sent again (a retry after a lost
        answer) is a 200 with the correction the first one made."""
        line = _line_for(request, pk)
        form = SaveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            correction = actions.do_save_line(
                line,
                request.user,
                data["text"],
                expected_version=data["expected_version"],
                hypothesis=data.get("hypothesis"),
                # An API client's empty text is meant: the editor's second Enter is for people.
                allow_empty=True,
            )
        except actions.ReviewError as exc:
            return error(str(exc))
        except actions.VersionConflict as conflict:
            return Response(
                {
                    "error": "The line changed since you read it; nothing was saved.",
                    "version": conflict.line.version,
                    "text": conflict.line.text,
                    "attempted_text": conflict.attempted_text,
                    "last_change": _last_change(conflict.line),
                },
                status=status.HTTP_409_CONFLICT,
            )
        code = status.HTTP_200_OK if correction.replayed else status.HTTP_201_CREATED
        return Response(CorrectionSerializer(correction).data, status=code)


class UnclearSerializer(RequestSerializer):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=actions.UNCLEAR_NOTE_LENGTH,
        help_text="what could not be read (runs of spaces become one)",
    )


class LineUnclear(APIView):
    """A line's unclear mark: a line the reviewer could not read for sure, left out of
    training data and listed for experts (search's `unclear`). Any member of the line's
    collection may set or remove it, as they may save the line; neither changes its text,
    status or version. Recorded in its correction history."""

    parser_classes = [TextJSONParser]

    @extend_schema(request=UnclearSerializer, responses=LineSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Mark the line unclear, with an optional `note`; marking it again replaces the
        note. The line as it now is."""
        line = _line_for(request, pk)
        form = UnclearSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._answer(line, actions.do_mark_unclear, form.validated_data.get("note", ""))

    @extend_schema(request=None, responses=LineSerializer)
    def delete(self, request: Request, pk: int) -> Response:
        """Remove the line's unclear mark (someone read it); nothing is recorded where it had
        none. The line as it now is."""
        return self._answer(_line_for(request, pk), actions.do_clear_unclear)

    def _answer(self, line: Line, action, *args) -> Response:
        try:
            action(line, self.request.user, *args)
        except actions.ReviewError as exc:
            return error(str(exc))
        line.refresh_from_db()
        return Response(LineSerializer(line).data)


# A client working through a large queue skips many lines; more than this in one request is
# a client that should filter by document instead (each candidate line is checked against
# every excluded id).
MAX_EXCLUDED = 1_000


class ClaimSerializer(RequestSerializer):
    document = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="only this document's lines"
    )
    order = serializers.ChoiceField(
        choices=queue.QueueOrder.choices, default=queue.QueueOrder.CONFIDENCE
    )
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        default=list,
        max_length=MAX_EXCLUDED,
        help_text="lines not to be given, such as those you handed back (the review queue "
        "leaves out a reviewer's skipped lines the same way); a line you hold comes back "
        "all the same",
    )


class LeaseSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    claimed_until = serializers.DateTimeField()


class QueueClaim(APIView):
    @extend_schema(request=ClaimSerializer, responses={200: LineDetailSerializer, 204: None})
    def post(self, request: Request, pk: int) -> Response:
        """Lease the next line that needs a human (lowest confidence first, or in reading
        order), as the review queue does; a line you already hold comes back first. 204 when
        nothing is waiting. Renew the lease while you work on it; release it to hand it back."""
        collection = collection_for(request.user, pk)
        form = ClaimSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        document = form.validated_data.get("document")
        if document is not None and not collection.documents.filter(pk=document).exists():
            return error("No such document in this collection.")
        line_id = actions.do_claim_next_line(
            collection,
            request.user,
            document_id=document,
            order=form.validated_data["order"],
            exclude=form.validated_data["exclude"],
        )
        if line_id is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_line_detail(_line_for(request, line_id)))


class LineLease(APIView):
    @extend_schema(request=None, responses={200: LeaseSerializer, 409: ErrorSerializer})
    def put(self, request: Request, pk: int) -> Response:
        """Renew your lease on the line; a 409 when it was lost (it ran out and someone else
        took the line)."""
        line = _line_for(request, pk)
        if not actions.do_renew_lease(line, request.user):
            return error("You no longer hold this line.", status.HTTP_409_CONFLICT)
        line.refresh_from_db(fields=["claimed_until"])
        return Response({"line": line.pk, "claimed_until": line.claimed_until})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        """Hand the line back to the queue untouched (the editor's Esc). Nothing happens if
        you do not hold it."""
        actions.do_skip_line(_line_for(request, pk), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PageLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Line
        fields = ["id", "order", "text", "status", "confidence", "version", "bbox", "polygon"]


class PageSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    lines = PageLineSerializer(many=True, source="ordered_lines")

    class Meta:
        model = Page
        fields = ["id", "document", "index", "width", "height", "status", "image_url", "lines"]

    def get_image_url(self, page: Page) -> str:
        return self.context["request"].build_absolute_uri(reverse("api_page_image", args=[page.pk]))


def _page_for(request: Request, pk: int) -> Page:
    visible = Page.objects.filter(document__collection__in=visible_collections(request.user))
    return get_object_or_404(visible, pk=pk)


class PageDetail(APIView):
    @extend_schema(responses=PageSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """A page with its lines in reading order (boxes and polygons in its pixels)."""
        return Response(_page_in_order(request, _page_for(request, pk)))


def _page_in_order(request: Request, page: Page) -> dict:
    page.ordered_lines = page.lines.order_by("order", "id")
    return PageSerializer(page, context={"request": request}).data


class ReorderSerializer(serializers.Serializer):
    expected_version = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="the line's `version` you read"
    )
    position = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text="its place in the page's reading order, from 1 (the first line)",
    )
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="or: the line it goes before"
    )
    after = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="or: the line it goes after"
    )


class StaleSerializer(serializers.Serializer):
    error = serializers.CharField()


class LineReorder(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(request=ReorderSerializer, responses={200: PageSerializer, 409: StaleSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Move a line in its page's reading order: to a `position`, or just `before` or
        `after` another line of the page (one of the three), stating the version you read of
        the line moved (a 409 if it changed since; moving it leaves its version as it is).
        The page's lines are numbered again from 0, so each line's `order` is its place less
        one. Any member of the collection; recorded in its events. The page with its lines in
        their new order."""
        line = _line_for(request, pk)
        form = bind_form(ReorderForm, request.data)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        try:
            actions.do_reorder_line(
                line,
                request.user,
                expected_version=data["expected_version"],
                position=data["position"],
                before=data["before"],
                after=data["after"],
            )
        except actions.VersionConflict:
            return Response(
                {"error": "The line changed since you read it; its place was not changed."},
                status=status.HTTP_409_CONFLICT,
            )
        except actions.ReviewError as exc:
            return error(str(exc))
        return Response(_page_in_order(request, line.page))


class PageSortResultSerializer(serializers.Serializer):
    event = serializers.IntegerField(
        allow_null=True,
        help_text="the sort's event, to undo it with; null when the lines were in that order "
        "already",
    )
    moved = serializers.IntegerField(help_text="how many lines changed places")
    page = PageSerializer()


class PageSort(APIView):
    @extend_schema(request=None, responses=PageSortResultSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Sort the page's lines by where their boxes are: columns (boxes overlapping
        horizontally) left to right, each top to bottom by the middle of its boxes, boxes side
        by side left to right. Any member of the collection; recorded in its events with the
        order before, which `sort/undo/` puts back."""
        page = _page_for(request, pk)
        result = actions.do_sort_page(page, request.user)
        return Response(
            {
                "event": result.event.pk if result.event else None,
                "moved": result.moved,
                "page": _page_in_order(request, page),
            }
        )


class SortUndoSerializer(serializers.Serializer):
    event = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="the sort's `event`"
    )


class PageSortUndo(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=SortUndoSerializer, responses={200: PageSerializer, 409: StaleSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        """Put back the reading order a sort of this page replaced, while the page's order is
        still the one the sort left (a 409 once a line moved, came or went since, and the
        order stays). The page with its lines in their order now."""
        page = _page_for(request, pk)
        form = bind_form(SortUndoForm, request.data)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        try:
            actions.do_undo_page_sort(page, request.user, form.cleaned_data["event"])
        except actions.OrderChanged as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
        except actions.ReviewError as exc:
            return error(str(exc))
        return Response(_page_in_order(request, page))


class PageImage(ServesFile, APIView):
    file_media_type = "image/*"

    @extend_schema(
        responses={
            (200, "image/*"): OpenApiTypes.BINARY,
            422: ErrorSerializer,
        }
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        """The page image as the editor shows it: the scan itself where browsers show its
        format (JPEG, PNG, WebP, ...), a JPEG rendition otherwise (TIFF, JPEG 2000)."""
        page = _page_for(request, pk)
        try:
            image = images.open_page_image(page)
        except (ImageError, OSError) as exc:
            return error(f"The page image cannot be shown: {exc}", 422)
        return FileResponse(image)


class SearchHitSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="line.pk")
    document = serializers.IntegerField(source="line.document_id")
    document_title = serializers.CharField(source="line.document.title")
    page = serializers.IntegerField(source="line.page_id")
    page_index = serializers.IntegerField(source="line.page.index", help_text="from 0")
    order = serializers.IntegerField(source="line.order")
    text = serializers.CharField(source="line.text")
    status = serializers.ChoiceField(source="line.status", choices=Line.Status.choices)
    confidence = serializers.FloatField(source="line.confidence", allow_null=True)
    version = serializers.IntegerField(source="line.version")
    bbox = serializers.ListField(source="line.bbox", child=serializers.IntegerField())
    match = serializers.ChoiceField(
        source="tier_name",
        choices=["exact", "folded", "similar"],
        help_text="`exact`: the words (or phrase) are in the line as typed; `folded`: with other "
        "accents or long s (eglise finds église); `similar`: words like them",
    )
    score = serializers.FloatField(
        help_text="rank of an exact or folded hit, similarity of a similar one"
    )
    snippet = serializers.CharField(
        source="snippet_html", help_text="the line's text, HTML-escaped, the matches in `<mark>`"
    )


class SearchResultsSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    fuzzy = serializers.BooleanField(
        help_text="whether similar lines were looked for too (not for words under 4 letters, "
        "nor on a server without pg_trgm)"
    )
    results = SearchHitSerializer(many=True)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "q",
            str,
            description='words, "a phrase", `or`, `-excluded`; at most 200 characters; empty or '
            "left out only with `unclear=true`, to list every unclear line (in id order)",
        ),
        OpenApiParameter("document", int),
        OpenApiParameter("status", str, enum=Line.Status.values),
        OpenApiParameter("confidence_below", OpenApiTypes.FLOAT),
        OpenApiParameter("confidence_at_least", OpenApiTypes.FLOAT),
        OpenApiParameter("unclear", bool, description="true: only lines marked unclear"),
        OpenApiParameter("cursor", str, description="`next` or `previous` of a page"),
        OpenApiParameter("page_size", int, description="1 to 100, default 20"),
    ],
    responses=SearchResultsSerializer,
)
class CollectionSearch(APIView):
    def get(self, request: Request, pk: int) -> Response:
        """The collection's lines whose current text matches `q`, best first: exact hits by
        rank, then those found with accents and long s folded, by rank, then lines with similar
        words (typos, misreadings), by similarity."""
        collection = collection_for(request.user, pk)
        form = SearchForm(request.query_params, collection=collection)
        if not form.is_valid():
            return error("Invalid search.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        results = search.search_lines(
            collection,
            data["q"],
            form.filters(),
            cursor=data["cursor"] or None,
            page_size=data["page_size"] or search.DEFAULT_PAGE_SIZE,
        )
        return Response(
            {
                "next": _page_url(request, results.next, before=False),
                "previous": _page_url(request, results.previous, before=True),
                "fuzzy": results.fuzzy,
                "results": SearchHitSerializer(results.hits, many=True).data,
            }
        )


def _page_url(request: Request, position: search.Position | None, *, before: bool) -> str | None:
    if position is None:
        return None
    params = request.query_params.copy()
    params["cursor"] = search.encode_cursor(position, before=before)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


class TrailCorrectionSerializer(CorrectionSerializer):
    user_id = serializers.IntegerField(
        allow_null=True, help_text="who, by id (`user` is their username); null: the system"
    )
    line = serializers.IntegerField(source="line_id")
    document = serializers.IntegerField(source="line.document_id")

    class Meta(CorrectionSerializer.Meta):
        fields = [*CorrectionSerializer.Meta.fields, "user_id", "line", "document"]


class TrailSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="older corrections")
    previous = serializers.URLField(allow_null=True, help_text="newer corrections")
    results = TrailCorrectionSerializer(many=True)


def _ranged(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


@extend_schema(
    parameters=[
        OpenApiParameter(
            "user",
            _ranged(1, 2**31 - 1),
            description="only this person's corrections: a member's id, or anyone's whose "
            "corrections are in the collection (a former member's)",
        ),
        OpenApiParameter(
            "document", _ranged(1, 2**63 - 1), description="only the corrections of its lines"
        ),
        OpenApiParameter(
            "since",
            OpenApiTypes.DATETIME,
            description="from this time on (ISO 8601; without an offset, in the site's time zone)",
        ),
        OpenApiParameter("until", OpenApiTypes.DATETIME, description="before this time"),
        OpenApiParameter("cursor", str, description="`next` or `previous` of a page"),
        OpenApiParameter(
            "page_size",
            _ranged(1, keyset.MAX_PAGE_SIZE),
            description=f"default {keyset.PAGE_SIZE}",
        ),
    ],
    responses=TrailSerializer,
)
class CollectionCorrections(APIView):
    def get(self, request: Request, pk: int) -> Response:
        """The collection's corrections, newest first, by person and time (collection admins
        only), as the coordinators' page lists them: to find one volunteer's work."""
        collection = admin_collection_for(request.user, pk)
        form = TrailFilterForm(request.query_params, collection=collection)
        if not form.is_valid():
            return error("Invalid filter.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        page = coordination.trail_page(
            coordination.trail(collection, **form.filters()),
            data["cursor"],
            data["page_size"] or keyset.PAGE_SIZE,
        )
        return Response(
            keyset.api_page(request, page, TrailCorrectionSerializer(page.rows, many=True).data)
        )


class DayCountsSerializer(serializers.Serializer):
    lines = serializers.IntegerField(
        help_text="lines settled that day (accepted, edited, picked or reverted), each once"
    )
    changed = serializers.IntegerField(help_text="of those, lines a save that day changed")
    accepted = serializers.IntegerField(help_text="of those, lines no save that day changed")
    timed_lines = serializers.IntegerField(help_text="of those, lines the editor timed")
    time_spent_ms = serializers.IntegerField(help_text="the editor's time on them")


class ReviewerDayCountsSerializer(DayCountsSerializer):
    user = serializers.IntegerField(allow_null=True, help_text="null: a deleted account")
    username = serializers.CharField()


class ReviewerDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    total = DayCountsSerializer(
        allow_null=True,
        help_text="everyone's lines added up (a line two people settled counts for each); "
        "null where you see only your own work",
    )
    reviewers = ReviewerDayCountsSerializer(many=True, help_text="those who settled lines")


class ReviewerDaysSerializer(serializers.Serializer):
    zone = serializers.CharField(help_text="the time zone of the days")
    since = serializers.DateField()
    until = serializers.DateField()
    days = ReviewerDaySerializer(many=True, help_text="every day of the range, newest first")


@extend_schema(
    parameters=[
        OpenApiParameter(
            "since",
            OpenApiTypes.DATE,
            description=f"the first day; default: {reviewer_days.DEFAULT_DAYS - 1} days before "
            "`until`",
        ),
        OpenApiParameter(
            "until",
            OpenApiTypes.DATE,
            description=f"the last day; default: today. At most {reviewer_days.MAX_DAYS} days",
        ),
    ],
    responses={200: ReviewerDaysSerializer, 400: ErrorSerializer},
)
class CollectionReviewerDays(APIView):
    def get(self, request: Request, pk: int) -> Response:
        """What each reviewer settled in the collection per day, and each day's totals, as the
        progress page shows them: a member who is no admin gets their own work alone."""
        collection = collection_for(request.user, pk)
        form = ReviewerDaysForm(request.query_params)
        if not form.is_valid():
            return error(first_error(form), fields=form.errors.get_json_data())
        admin = is_collection_admin(request.user, collection)
        shown = form.report(collection, only=None if admin else request.user)
        return Response(ReviewerDaysSerializer(shown).data)


# The request's shape for the schema; it is validated by the web's confirmation form.
class RevertUserSavesSerializer(serializers.Serializer):
    user = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text="whose saves: a member's id, or anyone's whose corrections are in the "
        "collection (a former member's)",
    )
    since = serializers.DateTimeField(
        help_text="undo their saves from this time on (ISO 8601; without an offset, in the "
        "site's time zone)"
    )
    preview = serializers.BooleanField(
        default=False,
        help_text="true: answer what undoing would do now, and change nothing (a line may yet "
        "change before you undo; the undo decides again)",
    )


class SkippedLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="newest.line_id")
    reason = serializers.ChoiceField(
        choices=actions.LeftAlone.Reason.choices,
        help_text="changed: changed since by someone else or after the undo was asked for, "
        "or its box edited; final: its "
        "document is final, and a collection admin reopens it before its lines can be undone",
    )
    changed_by = serializers.CharField(
        source="newest.user.username",
        allow_null=True,
        default=None,
        help_text="who made the line's newest change; null: the system",
    )
    action = serializers.ChoiceField(
        source="newest.action",
        choices=Correction.Action.choices,
        help_text="the line's newest change",
    )
    at = serializers.DateTimeField(source="newest.created_at")


class UserRevertSerializer(serializers.Serializer):
    reverted = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="the lines put back to the text they had before the person's saves, each "
        "with your revert in its history",
    )
    requeued = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="of those, the lines whose earlier text was a model's reading: back in the "
        "review queue, for a person to check",
    )
    skipped = SkippedLineSerializer(
        many=True,
        help_text="lines left as they are, each with why and its newest change: changed since "
        "by someone else or their box edited, or of a final document",
    )


class SavesUndoSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(
        source="status",
        choices=SavesUndo.Status.choices,
        help_text="queued: waiting for a worker; running; done; failed: stopped, with `error` "
        "(the lines undone before stay undone)",
    )
    url = serializers.SerializerMethodField(help_text="where to follow it")
    user = serializers.IntegerField(source="person_id", help_text="whose saves")
    reverted_count = serializers.SerializerMethodField(help_text="lines put back so far")
    requeued_count = serializers.SerializerMethodField(
        help_text="of those, the lines back in the review queue"
    )
    skipped_count = serializers.SerializerMethodField(help_text="lines left alone so far")
    result = serializers.SerializerMethodField(
        help_text="once it is done or failed, what it did, as an undo within the request "
        "answers; null before"
    )

    class Meta:
        model = SavesUndo
        fields = [
            "id",
            "state",
            "url",
            "user",
            "since",
            "lines_total",
            "lines_done",
            "reverted_count",
            "requeued_count",
            "skipped_count",
            "error",
            "created_at",
            "finished_at",
            "result",
        ]

    def get_url(self, undo: SavesUndo) -> str:
        url = reverse("api_corrections_revert_job", args=[undo.collection_id, undo.pk])
        return self.context["request"].build_absolute_uri(url)

    def get_reverted_count(self, undo: SavesUndo) -> int:
        return len(undo.reverted)

    def get_requeued_count(self, undo: SavesUndo) -> int:
        return len(undo.requeued)

    def get_skipped_count(self, undo: SavesUndo) -> int:
        return len(undo.skipped)

    @extend_schema_field(UserRevertSerializer(allow_null=True))
    def get_result(self, undo: SavesUndo) -> dict | None:
        if not undo.finished:
            return None
        return UserRevertSerializer(saves_undo.outcome(undo)).data


class RevertUserSaves(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=RevertUserSavesSerializer,
        responses={200: UserRevertSerializer, 202: SavesUndoSerializer, 503: ErrorSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Undo what a person saved in the collection's lines since a time (collection admins
        only), as the coordinators' page does: each line whose newest change is still theirs
        goes back to the text it had before their saves, recorded as your revert; a line whose
        earlier text was a model's goes back to the review queue. Lines changed since by
        anyone else, and lines of a final document, are left as they are, and listed with
        why. With preview, what it would do, done nothing. An undo of more lines than one
        batch runs on a worker: a 202 with the job to follow at its `url` (also `Location`);
        with the task queue down, a 503 and nothing undone."""
        collection = admin_collection_for(request.user, pk)
        form = bind_form(RevertUserForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        if data["preview"]:
            result = actions.revert_user_saves_preview(collection, data["user"], data["since"])
            return Response(UserRevertSerializer(result).data)
        try:
            result = saves_undo.do_undo_saves(collection, data["user"], data["since"], request.user)
        except saves_undo.UndoNotQueued:
            return error(
                "The undo cannot be started just now (the task queue is down); nothing was "
                "undone. Try again in a few minutes.",
                status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        if isinstance(result, SavesUndo):
            body = SavesUndoSerializer(result, context={"request": request}).data
            return Response(body, status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
        return Response(UserRevertSerializer(result).data)


class SavesUndoDetail(APIView):
    @extend_schema(responses=SavesUndoSerializer)
    def get(self, request: Request, pk: int, undo_id: int) -> Response:
        """An undo a worker runs (the 202 of corrections/revert/): its state, the lines done
        of all, and once it finished what it did; the collection's admins only."""
        collection = admin_collection_for(request.user, pk)
        undo = get_object_or_404(SavesUndo, pk=undo_id, collection=collection)
        return Response(SavesUndoSerializer(undo, context={"request": request}).data)
