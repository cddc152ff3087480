"""The HTTP API of find and replace (review/find_replace.py): preview, then replace, as the
search results page does."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ocrreview.corpus.access import collection_for, is_collection_admin
from ocrreview.corpus.api_base import TextJSONParser, bind_form, error
from ocrreview.corpus.api_schema import ErrorSerializer
from ocrreview.corpus.line_text import MAX_TEXT_LENGTH
from ocrreview.corpus.models import Line
from ocrreview.review import actions, find_replace, search
from ocrreview.review.forms import MAX_ID, MAX_INT, ReplaceForm


# The request's shape for the schema; it is validated by the web's form.
class ReplaceRequestSerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=search.MAX_QUERY_LENGTH,
        help_text="what to replace: a word or words side by side (a phrase, quoted or not), "
        "alternatives joined by `or`, and `-word` to leave out the lines that hold it; whole "
        "words unless `inside_words`, found with other accents or ſ and in any case unless "
        "`match_accents` and `match_case` say otherwise",
    )
    replacement = serializers.CharField(
        max_length=MAX_TEXT_LENGTH,
        allow_blank=True,
        help_text="what each hit becomes (NFC; tabs as spaces, invisible marks dropped); empty "
        "deletes the hits, with one of the spaces around each, and needs `confirm_delete`",
    )
    confirm_delete = serializers.BooleanField(
        required=False, help_text="true: yes, an empty replacement deletes the words found"
    )
    match_case = serializers.BooleanField(required=False, help_text="true: only in the case typed")
    match_accents = serializers.BooleanField(
        required=False, help_text="true: only with the accents and ſ typed"
    )
    inside_words = serializers.BooleanField(
        required=False,
        help_text="true: inside words too (a misread letter, ſ, a suffix: `tbe` in `tbey`), "
        "never part of a letter (its accents, a ligature); false: whole words only",
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
    hits = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=find_replace.MAX_HITS,
        help_text="exactly these hits, as a preview named them (`line:version:start`), in place "
        "of `line_ids` or `all`: a line at another version now is skipped (`changed`)",
    )
    unticked = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=find_replace.MAX_HITS,
        help_text="with `line_ids` or `all`: hits a preview named to leave as they are; a line "
        "of one at another version now is skipped (`changed`)",
    )
    versions = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_INT),
        required=False,
        max_length=find_replace.MAX_LINES,
        help_text="each line's version as the preview answered it, in the order of `line_ids`: "
        "a line at another version now is skipped (`changed`)",
    )
    fingerprint = serializers.CharField(
        required=False,
        max_length=64,
        help_text="with `all` or `line_ids`: the `fingerprint` of the preview (with the same "
        "`unticked`, or none); if the hits are not those now (lines changed, came or went), a "
        "409 and nothing done, so that with `unticked` the replace is exactly what was seen",
    )
    preview = serializers.BooleanField(
        default=False, help_text="true: answer what it would change, and change nothing"
    )


class HitSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="`line:version:start`, for `hits` and `unticked`")
    start = serializers.IntegerField(help_text="where it starts in `text_before`")
    end = serializers.IntegerField()
    text = serializers.CharField()
    chosen = serializers.BooleanField(help_text="whether it is replaced (false: unticked)")


class ChangeSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="line.pk")
    version = serializers.IntegerField(
        source="line.version", help_text="the line's version now (after the replace)"
    )
    text_before = serializers.CharField()
    text_after = serializers.CharField()
    hits = HitSerializer(many=True, help_text="every hit in the line, chosen or not")


class SkippedSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="line_id")
    reason = serializers.ChoiceField(choices=list(find_replace.Skip.REASONS))
    because = serializers.CharField(help_text="the reason, in words")


class ReplacementSerializer(serializers.Serializer):
    fingerprint = serializers.CharField(
        help_text="every hit found in the chosen lines not skipped, ticked or not, in one word: "
        "send it back with the replace"
    )
    changed = ChangeSerializer(
        many=True, help_text="the lines changed (or, previewed, that would be), each as your edit"
    )
    skipped = SkippedSerializer(many=True, help_text="lines left as they are, and why")
    unchanged = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="chosen lines with nothing to change (no hit in them, every hit unticked, "
        "or the hits are already the replacement)",
    )


class CollectionReplace(APIView):
    parser_classes = [TextJSONParser]

    @extend_schema(
        request=ReplaceRequestSerializer,
        responses={200: ReplacementSerializer, 409: ErrorSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Replace the hits of a search in some of its lines (`line_ids`) or all of them
        (`all`), less the hits `unticked`, or exactly the `hits` a preview named, as the search
        results page does: each changed line is saved as your edit, with its version checked
        (undoing your saves undoes it), its status kept. Lines someone else holds or has
        unsaved text in, lines of a final document, lines changed since the preview
        (`versions`, or the version in a hit's name) and lines whose hits are not those named
        are skipped and listed. At most 2,000 lines at once; reviewers 50, admins of the
        collection the 2,000. Recorded in the collection's events. With preview, what it would
        do (every hit, each `chosen` or not), done nothing."""
        collection = collection_for(request.user, pk)
        form = bind_form(ReplaceForm, request.data, collection=collection)
        if not form.is_valid():
            return error("Invalid request.", fields=form.errors.get_json_data())
        data = form.cleaned_data
        filters = form.filters()
        limit = find_replace.line_limit(is_collection_admin(request.user, collection))
        problem = form.deletes_unconfirmed(not data["preview"])
        if problem:
            return error(
                problem, fields={"confirm_delete": [{"message": problem, "code": "required"}]}
            )
        try:
            chosen = find_replace.chosen_lines(
                collection, data["q"], filters, form.chosen(), limit, form.options()
            )
        except actions.ReviewError as exc:
            return error(str(exc))
        args = (collection, request.user, data["q"], filters, chosen, data["replacement"])
        options, ticks = form.options(), form.ticks()
        if data["preview"]:
            result = find_replace.replace_preview(*args, options=options, ticks=ticks)
        else:
            try:
                result = find_replace.do_replace(
                    *args,
                    versions=form.seen_versions(),
                    options=options,
                    ticks=ticks,
                    fingerprint=data["fingerprint"] or None,
                )
            except find_replace.HitsChanged as exc:
                return error(str(exc), status.HTTP_409_CONFLICT)
        return Response(ReplacementSerializer(result).data)
