from datetime import UTC, date, timedelta

from django import forms
from django.contrib.auth import get_user_model

from ocrreview.corpus import keyset, trail_people
from ocrreview.corpus.line_text import MAX_TEXT_LENGTH, nfc
from ocrreview.corpus.models import Collection, Document, Line
from ocrreview.review import actions, coordination, find_replace, reviewer_days, search
from ocrreview.review.models import ReviewerPreference

# The largest values PostgreSQL's integer and bigint columns hold: a number beyond them in a
# post is the client's mistake, to be answered with a form error rather than a database one.
MAX_INT, MAX_ID = 2**31 - 1, 2**63 - 1


def _version() -> forms.IntegerField:
    return forms.IntegerField(min_value=1, max_value=MAX_INT)


def _row_id() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)


def _milliseconds() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=0, max_value=MAX_INT)


class SaveForm(forms.Form):
    SAVE, ACCEPT = "save", "accept"

    # strip=False: leading and trailing spaces are the reviewer's to keep or remove.
    text = forms.CharField(required=False, strip=False, max_length=MAX_TEXT_LENGTH)
    expected_version = _version()
    hypothesis = _row_id()
    time_spent_ms = _milliseconds()
    action = forms.ChoiceField(choices=[(SAVE, SAVE), (ACCEPT, ACCEPT)], required=False)
    # The editor's second Enter on an empty text: the reviewer means the line to be empty.
    confirm_empty = forms.BooleanField(required=False)


class UnclearForm(forms.Form):
    unclear = forms.BooleanField(required=False)
    note = forms.CharField(required=False, max_length=200)


class DraftForm(forms.Form):
    text = forms.CharField(required=False, strip=False, max_length=MAX_TEXT_LENGTH)
    base_version = _version()
    hypothesis = _row_id()


class SkipForm(forms.Form):
    time_spent_ms = _milliseconds()


class RevertForm(forms.Form):
    expected_version = _version()
    before = forms.BooleanField(required=False)


class BoxForm(forms.Form):
    x0 = forms.FloatField()
    y0 = forms.FloatField()
    x1 = forms.FloatField()
    y1 = forms.FloatField()

    def bbox(self) -> list[float]:
        return [self.cleaned_data[k] for k in ("x0", "y0", "x1", "y1")]


class MoveForm(BoxForm):
    expected_version = _version()


class SplitForm(forms.Form):
    x = forms.FloatField()
    expected_version = _version()
    # The page view's split: the row's text as it stands, typing included, and where in it
    # the person cut it (in code points). Without them the saved text is cut where the box is.
    text = forms.CharField(required=False, strip=False, max_length=MAX_TEXT_LENGTH)
    at = forms.IntegerField(required=False, min_value=0, max_value=MAX_TEXT_LENGTH)

    def clean(self):
        data = super().clean()
        if data.get("at") is not None and "text" not in self.data:
            raise forms.ValidationError("A place in the text comes with the text.")
        return data

    def person_text(self) -> tuple[str, int | None] | None:
        if "text" not in self.data:
            return None
        return self.cleaned_data["text"], self.cleaned_data["at"]


class VersionForm(forms.Form):
    expected_version = _version()


class ReorderForm(forms.Form):
    """Where a line goes in its page's reading order: one of a place (from 1), or the line of
    the page it goes just before or after."""

    expected_version = _version()
    position = forms.IntegerField(required=False, min_value=1, max_value=MAX_INT)
    before = _row_id()
    after = _row_id()

    def clean(self):
        data = super().clean()
        given = [name for name in ("position", "before", "after") if data.get(name) is not None]
        if not self.errors and len(given) != 1:
            raise forms.ValidationError(
                "Say where the line goes: one of position, before or after."
            )
        return data


class SortUndoForm(forms.Form):
    event = forms.IntegerField(min_value=1, max_value=MAX_ID)


class PageViewClaimForm(forms.Form):
    # The page view's own claim (actions.do_claim_page), given to it when it was opened.
    claim = forms.UUIDField()

    def clean_claim(self):
        claim = self.cleaned_data["claim"]
        if actions.claim_dated_after_now(claim):
            raise forms.ValidationError(
                "This page view's claim is dated after now, so this server did not give it: "
                "reload the page."
            )
        return claim


class PageReleaseForm(PageViewClaimForm):
    # Lines whose last typing the page sent as it went, in beacons beside this one that may
    # arrive after it: they stay the reviewer's, as lines with a draft do. Line ids, by commas.
    keep = forms.CharField(required=False, max_length=20_000)

    def clean_keep(self) -> list[int]:
        ids = [part.strip() for part in self.cleaned_data["keep"].split(",") if part.strip()]
        if not all(part.isascii() and part.isdigit() and len(part) < 10 for part in ids):
            raise forms.ValidationError("line ids separated by commas only.")
        return [int(part) for part in ids]


class PageLeaseForm(PageViewClaimForm):
    # "Work in this tab": a later page view of the page holds its lines, and the reviewer
    # takes them back to this one, which gets a new claim, the latest.
    take_over = forms.BooleanField(required=False)


class QueueForm(forms.Form):
    document = _row_id()
    order = forms.ChoiceField(choices=ReviewerPreference.QueueOrder.choices, required=False)


class ThresholdForm(forms.Form):
    confidence_threshold = forms.FloatField(min_value=0.0, max_value=1.0)
    confirm_uncalibrated = forms.BooleanField(required=False)


def first_error(form: forms.Form) -> str:
    for field, errors in form.errors.items():
        label = field.replace("_", " ") if field != "__all__" else ""
        return f"{label}: {errors[0]}" if label else errors[0]
    return "The request was not valid."


class SearchForm(forms.Form):
    """A search of one collection's lines, from the search box and the API alike."""

    # Empty only to list the unclear lines, for an expert to work through.
    q = forms.CharField(max_length=search.MAX_QUERY_LENGTH, required=False)
    document = forms.ModelChoiceField(
        queryset=Document.objects.none(), required=False, empty_label="every document"
    )
    status = forms.ChoiceField(choices=[("", "any status"), *Line.Status.choices], required=False)
    confidence_below = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    confidence_at_least = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    unclear = forms.BooleanField(required=False, label="Unclear lines only")
    cursor = forms.CharField(required=False, max_length=200)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=search.MAX_PAGE_SIZE)

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = collection.documents.without_iiif_json().order_by(
            "title", "id"
        )

    def clean_q(self) -> str:
        # The lines' text is NFC: a query typed or pasted decomposed ("e" and a combining
        # acute, as some keyboards and macOS file names give) would match none of its words.
        q = nfc(self.cleaned_data["q"])
        problem = search.query_problem(q) if q else None
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return q

    def clean(self):
        data = super().clean()
        if data.get("q") == "" and not data.get("unclear"):
            self.add_error("q", forms.ValidationError(search.query_problem(""), code="required"))
        return data

    def clean_cursor(self) -> str:
        cursor = self.cleaned_data["cursor"]
        if cursor:
            try:
                search.decode_cursor(cursor)
            except search.BadCursor as exc:
                raise forms.ValidationError(str(exc), code="invalid") from exc
        return cursor

    def filters(self) -> search.Filters:
        data = self.cleaned_data
        return search.Filters(
            document=data["document"],
            status=data["status"] or None,
            confidence_below=data["confidence_below"],
            confidence_at_least=data["confidence_at_least"],
            unclear=data["unclear"],
        )


class MomentField(forms.DateTimeField):
    """A date and time: ISO 8601 (2026-05-01T14:30, with seconds, with an offset or Z), read
    in the site's time zone when it names none."""

    widget = forms.DateTimeInput(
        attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
    )

    def to_python(self, value):
        if isinstance(value, int | float):  # from JSON: no date Django's parsing takes
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        moment = super().to_python(value)
        try:
            # An offset at the calendar's ends (0001-01-01T00:00+01:00) is no time the
            # database can compare with.
            moment and moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("That date is out of range.", code="invalid") from None
        return moment


def _trail_user(**kwargs) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=None,  # the collection's: set by the form
        error_messages={
            "invalid_choice": "User %(value)s is no member of this collection and made no "
            "correction in it."
        },
        **kwargs,
    )


class TrailFilterForm(forms.Form):
    """A collection's corrections, as its coordinators look for one volunteer's work: on the
    page and in the API."""

    user = _trail_user(required=False, empty_label="everyone")
    document = forms.ModelChoiceField(
        queryset=None,  # the collection's: set by the form
        required=False,
        empty_label="every document",
        error_messages={"invalid_choice": "Document %(value)s is no document of this collection."},
    )
    since = MomentField(required=False, label="From")
    until = MomentField(required=False, label="Before")
    cursor = keyset.CursorField()
    page_size = forms.IntegerField(required=False, min_value=1, max_value=keyset.MAX_PAGE_SIZE)

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = collection.documents.without_iiif_json().order_by(
            "title", "id"
        )
        self.fields["user"].queryset = coordination.trail_users(collection)
        trail_people.offer_members(self, "user", collection)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until <= since:
            self.add_error("until", "The end of the range must come after its start.")
        return data

    def filters(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("user", "document", "since", "until")}


class ReviewerDaysForm(forms.Form):
    """The days of the reviewer statistics per day: the last DEFAULT_DAYS up to today (in the
    zone the days are counted in) unless asked, at most MAX_DAYS."""

    since = forms.DateField(required=False, label="From")
    until = forms.DateField(required=False, label="To")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = reviewer_days.day_zone()
        self.today = reviewer_days.today(self.zone)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        until = data.get("until") or self.today
        last = reviewer_days.DEFAULT_DAYS - 1
        since = data.get("since")
        if since is None:
            # The calendar's first days have fewer before them.
            since = until - timedelta(days=last) if until.toordinal() > last else date.min
        if until < since:
            self.add_error("until", "The last day must not come before the first.")
        elif (until - since).days >= reviewer_days.MAX_DAYS:
            self.add_error(
                None, f"Choose at most {reviewer_days.MAX_DAYS} days ({since} to {until} is more)."
            )
        data["since"], data["until"] = since, until
        return data

    def report(self, collection: Collection, *, only=None) -> reviewer_days.ReviewerDays:
        """The days asked for, of everyone's work or `only` one person's."""
        data = self.cleaned_data
        return reviewer_days.reviewer_days(
            collection, data["since"], data["until"], zone=self.zone, only=only
        )


class ProgressFilterForm(forms.Form):
    """The progress page's documents, by review state and by the member assigned to them."""

    review_state = forms.ChoiceField(
        choices=[("", "any state"), *Document.ReviewState.choices], required=False, label="State"
    )
    assignee = forms.ModelChoiceField(
        queryset=None,  # the collection's members: set by the form
        required=False,
        empty_label="anyone",
        label="Assigned to",
        error_messages={"invalid_choice": "User %(value)s is no member of this collection."},
    )

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (
            get_user_model().objects.filter(memberships__collection=collection).order_by("username")
        )


class RevertUserForm(forms.Form):
    """Undo one person's saves in a collection since a time: the page's confirmation, and the
    API."""

    user = _trail_user()
    since = MomentField()
    # The API's: what it would do, without doing it (the page asks with a GET instead).
    preview = forms.BooleanField(required=False)

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = coordination.trail_users(collection)


class NumbersField(forms.TypedMultipleChoiceField):
    """Whole numbers from 0 to `highest`, as many as `most`: a form's repeated field, an API's
    JSON list (a multiple choice field, so that bind_form reads a list), with no choices."""

    def __init__(self, *, highest: int, most: int, **kwargs):
        super().__init__(coerce=int, required=False, **kwargs)
        self.highest, self.most = highest, most

    def valid_value(self, value) -> bool:
        # The length first: int() refuses a string of more than 4,300 digits with a ValueError.
        return (
            value.isascii()
            and value.isdigit()
            and len(value) <= len(str(self.highest))
            and int(value) <= self.highest
        )

    def validate(self, value) -> None:
        if len(value) > self.most:
            raise forms.ValidationError(f"At most {self.most:,}.", code="max_length")
        for item in value:
            if not self.valid_value(item):
                raise forms.ValidationError(f"{item[:20]!r} is no whole number.", code="invalid")


class HitsField(forms.MultipleChoiceField):
    """Hits as a replace's preview names them (`line:version:start`, find_replace.hit_id), as
    many as `most`: a form's checkboxes, an API's JSON list."""

    def __init__(self, *, most: int, **kwargs):
        super().__init__(required=False, **kwargs)
        self.most = most

    def valid_value(self, value) -> bool:
        return True

    def clean(self, value) -> frozenset[tuple[int, int, int]]:
        value = super().clean(value)
        if len(value) > self.most:
            raise forms.ValidationError(f"At most {self.most:,} hits.", code="max_length")
        hits = set()
        for item in value:
            parts = item.split(":")
            if not (
                len(parts) == 3
                and all(
                    part.isascii() and part.isdigit() and len(part) <= len(str(MAX_ID))
                    for part in parts
                )
                and 0 < int(parts[0]) <= MAX_ID
                and int(parts[1]) <= MAX_INT
                and int(parts[2]) < MAX_TEXT_LENGTH
            ):
                raise forms.ValidationError(
                    f"{item[:40]!r} is no hit (line:version:start, as the preview names it).",
                    code="invalid",
                )
            hits.add((int(parts[0]), int(parts[1]), int(parts[2])))
        versions: dict[int, int] = {}
        for line, version, _ in hits:
            if versions.setdefault(line, version) != version:
                raise forms.ValidationError(
                    f"Line {line}'s hits name two versions of it.", code="invalid"
                )
        return frozenset(hits)


class ReplaceForm(SearchForm):
    """Replace the words a search finds in some of its hits (line_ids) or all of them, from the
    search results and the API; or exactly the hits a preview listed and the person left
    ticked (hits). versions: the lines' versions as the preview showed them, one for each of
    line_ids, so that a line changed since is skipped rather than changed unseen; unticked:
    hits of line_ids or all to leave as they are."""

    replacement = forms.CharField(strip=False, max_length=MAX_TEXT_LENGTH, required=False)
    line_ids = NumbersField(highest=MAX_ID, most=find_replace.MAX_LINES)
    all = forms.BooleanField(required=False, label="All hits")
    hits = HitsField(most=find_replace.MAX_HITS)
    unticked = HitsField(most=find_replace.MAX_HITS)
    versions = NumbersField(highest=MAX_INT, most=find_replace.MAX_LINES)
    # The preview's (Replacement.fingerprint): with unticked, the hits must still be those.
    fingerprint = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False)
    match_case = forms.BooleanField(required=False, label="Match case")
    match_accents = forms.BooleanField(required=False, label="Match accents and ſ")
    inside_words = forms.BooleanField(required=False, label="Match inside words")
    # An empty replacement deletes the words found: asked for in so many words.
    confirm_delete = forms.BooleanField(required=False, label="Delete the words found")
    # The API's: what it would do, without doing it (the page previews before its own post).
    preview = forms.BooleanField(required=False)

    def __init__(self, *args, collection: Collection, **kwargs):
        super().__init__(*args, collection=collection, **kwargs)
        self.collection = collection
        del self.fields["cursor"], self.fields["page_size"]

    def clean_q(self) -> str:
        q = super().clean_q()
        problem = find_replace.query_problem(q) if q else search.query_problem(q)
        if problem:
            raise forms.ValidationError(problem, code="invalid")
        return q

    def clean_replacement(self) -> str:
        if "replacement" not in self.data:
            # Absent is no deletion: an empty one is sent, and confirmed, on purpose.
            raise forms.ValidationError(
                "Type the text to replace the words with (an empty one deletes them).",
                code="required",
            )
        try:
            return find_replace.clean_replacement(self.cleaned_data["replacement"])
        except actions.ReviewError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None

    def clean_line_ids(self) -> list[int]:
        return self._theirs(self.cleaned_data["line_ids"])

    def clean_hits(self) -> frozenset[tuple[int, int, int]]:
        hits = self.cleaned_data["hits"]
        self._theirs(sorted({line for line, _, _ in hits}))
        return hits

    def _theirs(self, ids: list[int]) -> list[int]:
        theirs = set(
            Line.objects.filter(collection=self.collection, pk__in=ids).values_list("pk", flat=True)
        )
        unknown = [str(pk) for pk in ids if pk not in theirs]
        if unknown:
            raise forms.ValidationError(
                f"Not lines of this collection: {', '.join(unknown[:10])}"
                + (f" and {len(unknown) - 10} more." if len(unknown) > 10 else "."),
                code="invalid",
            )
        return ids

    def clean(self):
        data = super().clean()
        chosen = [bool(data.get(name)) for name in ("line_ids", "all", "hits")]
        if "line_ids" in data and "hits" in data and not any(chosen):
            raise forms.ValidationError(
                "Choose the hits to replace in, or all of them."
                if "preview" in self.data or "apply" not in self.data
                else "Every hit is unticked: nothing to replace."
            )
        if sum(chosen) > 1:
            raise forms.ValidationError("Choose some hits, or lines, or all of them, not two.")
        versions = data.get("versions")
        if versions and len(versions) != len(data.get("line_ids") or ()):
            self.add_error("versions", "One version for each of line_ids, in their order.")
        unticked = data.get("unticked")
        if unticked and data.get("line_ids"):
            strays = {line for line, _, _ in unticked} - set(data["line_ids"])
            if strays:
                self.add_error("unticked", f"Hits of lines not chosen: {sorted(strays)[:10]}.")
        if unticked and data.get("hits"):
            self.add_error("unticked", "Send the hits ticked, or those unticked, not both.")
        if data.get("fingerprint") and data.get("hits"):
            self.add_error("fingerprint", "The hits named are checked one by one: no fingerprint.")
        return data

    def chosen(self) -> list[int] | None:
        """The lines chosen; None for every hit of the search."""
        if self.cleaned_data["hits"]:
            return self.ticks().lines()
        return None if self.cleaned_data["all"] else self.cleaned_data["line_ids"]

    def seen_versions(self) -> dict[int, int] | None:
        versions = self.cleaned_data["versions"]
        return dict(zip(self.cleaned_data["line_ids"], versions, strict=True)) if versions else None

    def ticks(self) -> find_replace.Ticks:
        data = self.cleaned_data
        return find_replace.Ticks(data["hits"] or None, data["unticked"])

    def options(self) -> find_replace.Options:
        data = self.cleaned_data
        return find_replace.Options(data["match_case"], data["match_accents"], data["inside_words"])

    def deletes_unconfirmed(self, applying: bool) -> str | None:
        """Why an empty replacement is not applied yet: it deletes text, which the person
        confirms (confirm_delete)."""
        if (
            applying
            and self.cleaned_data["replacement"] == ""
            and not self.cleaned_data.get("confirm_delete")
        ):
            return (
                "The replacement is empty, which deletes the words found: confirm the deletion "
                "(confirm_delete) to go on."
            )
        return None
