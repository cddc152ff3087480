"""The HTTP API of a collection's events (audit.py), for its admins."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus import audit, keyset
from ocrreview.corpus.access import admin_collection_for
from ocrreview.corpus.api_base import error
from ocrreview.corpus.audit_forms import EventFilterForm
from ocrreview.corpus.models import CollectionEvent


class EventSerializer(serializers.ModelSerializer):
    acting_user = serializers.IntegerField(
        source="acting_user_id",
        allow_null=True,
        help_text="who, by id; null: the system (the promotion gate), or an account deleted since",
    )
    acting_username = serializers.SerializerMethodField()
    document = serializers.IntegerField(
        source="document_id", allow_null=True, help_text="its id, kept once it is deleted"
    )
    page = serializers.IntegerField(source="page_id", allow_null=True)
    line = serializers.IntegerField(source="line_id", allow_null=True)
    extra_data = serializers.JSONField(
        help_text="old and new values and what the event is about, by type: see "
        "ocrreview/corpus/audit.py"
    )
    description = serializers.SerializerMethodField()

    class Meta:
        model = CollectionEvent
        fields = [
            "id",
            "event_type",
            "event_time",
            "acting_user",
            "acting_username",
            "document",
            "page",
            "line",
            "extra_data",
            "description",
        ]

    def get_acting_username(self, event: CollectionEvent) -> str | None:
        """Who, named as they were when they made the change, once their account is deleted
        too; null: the system (the promotion gate)."""
        actor = audit.actor_label(event)
        return None if actor is None else actor["username"]

    def get_description(self, event: CollectionEvent) -> str:
        """The event as the History page says it: "alice changed the review threshold from
        0.80 to 0.85"."""
        return audit.sentence(event)


class EventsSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="older events")
    previous = serializers.URLField(allow_null=True, help_text="newer events")
    results = EventSerializer(many=True)


@extend_schema(
    parameters=[
        OpenApiParameter("event_type", str, enum=CollectionEvent.Type.values),
        OpenApiParameter(
            "user",
            {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            description="only this person's changes: a member's id, or anyone's who changed "
            "the collection (a former member's)",
        ),
        OpenApiParameter("cursor", str, description="`next` or `previous` of a page"),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": keyset.MAX_PAGE_SIZE},
            description=f"default {keyset.PAGE_SIZE}",
        ),
    ],
    responses=EventsSerializer,
)
class CollectionEvents(APIView):
    def get(self, request: Request, pk: int) -> Response:
        """Who changed the collection and how, newest first (collection admins only), as its
        History page lists it: settings, thresholds applied, models promoted, re-reads,
        documents deleted or segmented again, members, undone saves, and edits of lines that
        leave no correction (added, moved and deleted boxes)."""
        collection = admin_collection_for(request.user, pk)
        form = EventFilterForm(request.query_params, collection=collection)
        if not form.is_valid():
            return error("Invalid filter.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        page = audit.events_page(
            audit.events(collection, **form.filters()),
            data["cursor"],
            data["page_size"] or keyset.PAGE_SIZE,
        )
        return Response(keyset.api_page(request, page, EventSerializer(page.rows, many=True).data))
