"""The HTTP API of find and replace (review/find_replace.py): preview, then replace, as the
search results page does."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus.access import collection_for, is_collection_admin
from ocrreview.corpus.api_base import TextJSONParser, bind_form, error
from ocrreview.corpus.line_text import MAX_TEXT_LENGTH
from ocrreview.corpus.models import Line
from ocrreview.review import actions, find_replace, search
from ocrreview.review.forms import MAX_ID, MAX_INT, ReplaceForm


# The request's shape for the schema; it is validated by the web's form.
class ReplaceRequestSerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=search.MAX_QUERY_LENGTH,
        help_text="the search: one word, or words joined by `or`, and `-word` to leave lines "
        "out; its words are found as search finds them (with other accents or ſ, and similar "
        "words)",
    )
    replacement = serializers.CharField(
        max_length=MAX_TEXT_LENGTH,
        help_text="what each word found becomes (NFC; tabs as spaces, invisible marks dropped)",
    )
    document = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    status = serializers.ChoiceField(choices=Line.Status.choices, required=False)
    confidence_below = serializers.FloatField(required=False, min_value=0, max_value=1)
    confidence_at_least = serializers.FloatField(required=False, min_value=0, max_value=1)
    unclear = serializers.BooleanField(required=False, help_text="true: only lines marked unclear")
    line_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=find_replace.MAX_LINES,
        help_text="the hits to replace in (lines of this collection); or `all`",
    )
    all = serializers.BooleanField(required=False, help_text="true: every hit of the search")
    versions = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_INT),
        required=False,
        max_length=find_replace.MAX_LINES,
        help_text="each line's version as the preview answered it, in the order of `line_ids`: "
        "a line at another version now is skipped (`changed`)",
    )
    preview = serializers.BooleanField(
        default=False, help_text="true: answer what it would change, and change nothing"
    )


class ChangeSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="line.pk")
    version = serializers.IntegerField(
        source="line.version", help_text="the line's version now (after the replace)"
    )
    text_before = serializers.CharField()
    text_after = serializers.CharField()


class SkippedSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="line_id")
    reason = serializers.ChoiceField(choices=list(find_replace.Skip.REASONS))
    because = serializers.CharField(help_text="the reason, in words")


class ReplacementSerializer(serializers.Serializer):
    changed = ChangeSerializer(
        many=True, help_text="the lines changed (or, previewed, that would be), each as your edit"
    )
    skipped = SkippedSerializer(many=True, help_text="lines left as they are, and why")
    unchanged = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="chosen lines with nothing to change (the words found are already the "
        "replacement, or the line no longer holds them)",
    )


class CollectionReplace(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(request=ReplaceRequestSerializer, responses=ReplacementSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Replace the words a search finds in some of its hits (`line_ids`) or all of them
        (`all`), as the search results page does: each changed line is saved as your edit,
        with its version checked (undoing your saves undoes it), its status kept. Lines
        someone else holds or has unsaved text in, lines of a final document and lines changed
        since the preview (`versions`) are skipped and listed. At most 2,000 lines at once;
        reviewers 50, admins of the collection the 2,000. Recorded in the collection's events.
        With preview, what it would do, done nothing."""
        collection = collection_for(request.user, pk)
        form = bind_form(ReplaceForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        filters = form.filters()
        limit = find_replace.line_limit(is_collection_admin(request.user, collection))
        try:
            chosen = find_replace.chosen_lines(collection, data["q"], filters, form.chosen(), limit)
        except actions.ReviewError as exc:
            return error(str(exc))
        args = (collection, request.user, data["q"], filters, chosen, data["replacement"])
        if data["preview"]:
            result = find_replace.replace_preview(*args)
        else:
            result = find_replace.do_replace(*args, versions=form.seen_versions())
        return Response(ReplacementSerializer(result).data)
