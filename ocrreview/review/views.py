"""Thin views over ocrreview.review.actions. Requests from the editor's script carry
X-Requested-With: fetch and get HTML fragments back; plain form posts get redirects, so the
editor still works, more slowly, without JavaScript."""

import csv
import re
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.encoding import iri_to_uri
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ocrreview.corpus import calibration_guard, keyset, workflow
from ocrreview.corpus.access import (
    admin_collection_for,
    collection_for,
    is_collection_admin,
    visible_collections,
)
from ocrreview.corpus.forms import AssigneesForm, ReviewStateForm
from ocrreview.corpus.models import Collection, Document, Line, Page, iiif_json_through
from ocrreview.review import (
    actions,
    assets,
    coordination,
    find_replace,
    images,
    progress,
    queue,
    saves_undo,
    search,
)
from ocrreview.review.diff import diff_spans
from ocrreview.review.forms import (
    BoxForm,
    DraftForm,
    MoveForm,
    PageLeaseForm,
    PageReleaseForm,
    ProgressFilterForm,
    QueueForm,
    ReorderForm,
    ReplaceForm,
    RevertForm,
    RevertUserForm,
    ReviewerDaysForm,
    SaveForm,
    SearchForm,
    SkipForm,
    SortUndoForm,
    SplitForm,
    ThresholdForm,
    TrailFilterForm,
    UnclearForm,
    VersionForm,
    first_error,
)
from ocrreview.review.models import Correction, SavesUndo
from recognition.preprocess import ImageError

S = Line.Status
SKIPPED = "review-skipped-{}"
# Crops and page images are addressed by a version in the URL, so browsers may keep them.
IMMUTABLE = "private, max-age=31536000, immutable"


def _is_fetch(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _line(request, pk: int, line_id: int) -> Line:
    """The line, if it belongs to collection pk and the user may see that collection (404
    otherwise), with its collection and page, in one query."""
    visible = visible_collections(request.user)
    return get_object_or_404(
        Line.objects.select_related("collection", "page").filter(collection__in=visible),
        pk=line_id,
        collection_id=pk,
    )


def _queue_params(request, collection: Collection, *, trail: bool = True) -> dict:
    """The reviewer's queue filter (document) and order, and the search results they came
    from (see _search_trail), carried from page to page: in the query string, or for a POST
    in its body (the editor's save form) or its URL (skip and revert post only their own
    fields to a URL that carries the filter)."""
    data = request.GET.copy()
    if request.method == "POST":
        for key in ("document", "order", "back", "hits"):
            if key in request.POST:
                data[key] = request.POST[key]
    form = QueueForm(data)
    if not form.is_valid():
        raise Http404(first_error(form))
    document_id = form.cleaned_data["document"]
    order = form.cleaned_data["order"] or queue.queue_order_for(request.user)
    params = {"document": document_id, "order": order}
    return {**params, **_search_trail(data, collection)} if trail else params


# The line ids of one page of search results, in their order.
HIT_IDS = re.compile(rf"[0-9]{{1,19}}(,[0-9]{{1,19}}){{0,{search.MAX_PAGE_SIZE - 1}}}")


def _search_trail(data, collection: Collection) -> dict:
    """The page of search results a line was opened from (`back`) and its hits' line ids
    (`hits`), so that a save or a skip opens the next hit, or goes back to the results, and
    not to the queue. None of it unless `back` is this collection's search page on this site:
    a crafted link would send a reviewer elsewhere (`//evil.example`, `javascript:`) after
    their save. Nor unless it is ASCII, with no control characters (iri_to_uri would quote
    them): urlsplit drops a newline or a tab before the path is compared, but the address goes
    into a header (X-Leave-To), where a newline fails the response of a save already committed
    and anything else not ASCII is MIME-encoded into an address the browser cannot follow."""
    back, hits = data.get("back", ""), data.get("hits", "")
    parts = urlsplit(back)
    if not (
        back == iri_to_uri(back)
        and url_has_allowed_host_and_scheme(back, allowed_hosts=None)
        and not parts.scheme
        and not parts.netloc
        and parts.path == reverse("collection_search", args=[collection.pk])
    ):
        return {}
    return {"back": back, "hits": hits if HIT_IDS.fullmatch(hits) else ""}


def _hit_ids(params: dict) -> list[int]:
    return [int(pk) for pk in params["hits"].split(",")] if params.get("hits") else []


def _query(params: dict) -> str:
    present = {k: v for k, v in params.items() if v}
    return f"?{urlencode(present)}" if present else ""


def _editor_url(collection: Collection, line_id: int, params: dict) -> str:
    return reverse("review_line", args=[collection.pk, line_id]) + _query(params)


def _editor_context(
    request, collection: Collection, line: int | queue.EditorLine, params: dict
) -> dict:
    editor_line = queue.editor_line(line, request.user) if isinstance(line, int) else line
    if editor_line is None:
        raise Http404(actions.LINE_GONE)
    trail = None
    if params.get("back"):
        hits = _hit_ids(params)
        line_id = editor_line.line.pk
        trail = {
            "back": params["back"],
            "position": hits.index(line_id) + 1 if line_id in hits else None,
            "count": len(hits),
        }
    return {
        "collection": collection,
        "ed": editor_line,
        "params": params,
        "trail": trail,
        "query": _query(params),
        "palette": collection.palette,
        "lease_seconds": settings.OCRREVIEW_LEASE_SECONDS,
    }


def _error(request, message: str, status: int = 400) -> HttpResponse:
    if _is_fetch(request):
        return JsonResponse({"error": message}, status=status)
    return HttpResponseBadRequest(message)


# --- The queue and the editor -----------------------------------------------------------


@login_required
@require_GET
def review_queue(request, pk: int):
    """Opening the queue claims the next line and opens it in the editor."""
    collection = collection_for(request.user, pk)
    params = _queue_params(request, collection, trail=False)
    if params["document"] and not collection.documents.filter(pk=params["document"]).exists():
        raise Http404("No such document in this collection.")
    if request.GET.get("order"):
        actions.do_set_queue_order(request.user, params["order"])
    line_id = _claim_next(request, collection, params)
    if line_id is not None:
        return redirect(_editor_url(collection, line_id, params))
    return render(
        request,
        "review/queue_done.html",
        {
            **_done_context(request, collection, params),
            "documents": collection.documents.values("id", "title"),
        },
    )


def _done_context(request, collection: Collection, params: dict) -> dict:
    """What is left when the queue gives nothing: lines others hold, and lines this reviewer
    skipped, which the queue leaves out for the rest of the session unless asked again."""
    waiting = queue.waiting_lines(collection, params["document"])
    skipped = waiting.filter(pk__in=request.session.get(SKIPPED.format(collection.pk), [])).count()
    return {
        "collection": collection,
        "params": params,
        "query": _query(params),
        "held": waiting.count() - skipped,
        "skipped": skipped,
    }


@login_required
@require_POST
def review_skipped_again(request, pk: int):
    collection = collection_for(request.user, pk)
    params = _queue_params(request, collection, trail=False)
    request.session.pop(SKIPPED.format(collection.pk), None)
    return redirect(reverse("review_queue", args=[collection.pk]) + _query(params))


def _claim_next(request, collection: Collection, params: dict) -> int | None:
    return actions.do_claim_next_line(
        collection, request.user, **_claim_args(request, collection, params)
    )


def _claim_args(request, collection: Collection, params: dict) -> dict:
    # Skipped lines stay out of this reviewer's queue for the session, or the lowest-
    # confidence line would come straight back.
    return {
        "document_id": params["document"],
        "order": params["order"],
        "exclude": request.session.get(SKIPPED.format(collection.pk), []),
    }


def _open_next(request, collection: Collection, params: dict, after: int) -> HttpResponse:
    if params.get("back"):
        return _open_hit(request, collection, params, after)
    if not _is_fetch(request):
        line_id = _claim_next(request, collection, params)
        if line_id is None:
            return redirect(reverse("review_queue", args=[collection.pk]) + _query(params))
        return redirect(_editor_url(collection, line_id, params))
    editor_line = actions.do_claim_and_open_next_line(
        collection, request.user, **_claim_args(request, collection, params)
    )
    if editor_line is None:
        response = render(
            request, "review/_queue_done.html", _done_context(request, collection, params)
        )
        response["X-Line-Url"] = reverse("review_queue", args=[collection.pk]) + _query(params)
        return response
    context = _editor_context(request, collection, editor_line, params)
    response = render(request, "review/_editor.html", context)
    response["X-Line-Url"] = _editor_url(collection, editor_line.line.pk, params)
    return response


def _open_hit(request, collection: Collection, params: dict, after: int) -> HttpResponse:
    """The hit after line `after` in the search results the reviewer came from, opened as the
    editor opens a line; past the last one (or a line that was no hit: a neighbour reached
    with Alt+Down), the results again. A fetch is told to go there (X-Leave-To): the results
    are a page of their own, not a fragment of the editor."""
    hits = _hit_ids(params)
    rest = hits[hits.index(after) + 1 :] if after in hits else []
    # Hits merged or deleted since, or not of this collection, are passed over.
    statuses = dict(
        Line.objects.filter(collection=collection, pk__in=rest).values_list("pk", "status")
    )
    line_id = next((pk for pk in rest if pk in statuses), None)
    if line_id is None:
        if not _is_fetch(request):
            return redirect(params["back"])
        response = HttpResponse(status=204)
        response["X-Leave-To"] = params["back"]
        return response
    if statuses[line_id] in (S.NEEDS_REVIEW, S.IN_REVIEW):
        actions.do_claim_line(line_id, request.user)
    url = _editor_url(collection, line_id, params)
    if not _is_fetch(request):
        return redirect(url)
    context = _editor_context(request, collection, line_id, params)
    response = render(request, "review/_editor.html", context)
    response["X-Line-Url"] = url
    return response


@login_required
@require_GET
def line_editor(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    collection = line.collection
    params = _queue_params(request, collection)
    # Opened from the coordinators' list of corrections, to see the line's history: an audit,
    # which takes no line from the volunteers' queue and releases none of the auditor's own.
    open_history = "history" in request.GET
    if line.status in (S.NEEDS_REVIEW, S.IN_REVIEW) and not open_history:
        actions.do_claim_line(line, request.user)
    context = _editor_context(request, collection, line_id, params)
    context["documents"] = collection.documents.values("id", "title")
    context["open_history"] = open_history
    return render(request, "review/editor.html", context)


@login_required
@require_POST
def save_line(request, pk: int, line_id: int):
    """Enter (save) and Ctrl+Enter (accept), then the next line of the queue; from the page
    view (stay=1), the saved line again."""
    line = _line(request, pk, line_id)
    collection = line.collection
    params = _queue_params(request, collection)
    form = SaveForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    data = form.cleaned_data
    try:
        if data["action"] == SaveForm.ACCEPT:
            actions.do_accept_line(
                line,
                request.user,
                expected_version=data["expected_version"],
                hypothesis=data["hypothesis"],
                time_spent_ms=data["time_spent_ms"] or 0,
            )
        else:
            actions.do_save_line(
                line,
                request.user,
                data["text"],
                expected_version=data["expected_version"],
                hypothesis=data["hypothesis"],
                time_spent_ms=data["time_spent_ms"] or 0,
                allow_empty=data["confirm_empty"],
            )
    except actions.ReviewError as exc:
        return _error(request, str(exc))
    except actions.VersionConflict as conflict:
        if data["action"] == SaveForm.ACCEPT:
            # An accept confirms the text the reviewer saw, as it is (an imported text may hold
            # what a save refuses); that, not the line's new text (theirs), is what "keep
            # mine" must keep.
            conflict = actions.VersionConflict(conflict.line, data["text"])
        return _conflict(request, collection, conflict, params)
    if request.POST.get("stay"):
        return _page_line(request, collection, line_id)
    return _open_next(request, collection, params, line_id)


def _conflict(request, collection, conflict: actions.VersionConflict, params) -> HttpResponse:
    context = {
        "collection": collection,
        "line": conflict.line,
        "mine": conflict.attempted_text,
        **actions.last_change(conflict.line),
        "query": _query(params),
    }
    if _is_fetch(request):
        return render(request, "review/_conflict.html", context, status=409)
    context.update(_editor_context(request, collection, conflict.line.pk, params))
    context["conflict"] = True
    return render(request, "review/editor.html", context, status=409)


@login_required
@require_POST
def skip_line(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    collection = line.collection
    params = _queue_params(request, collection)
    form = SkipForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    actions.do_skip_line(line, request.user, time_spent_ms=form.cleaned_data["time_spent_ms"] or 0)
    key = SKIPPED.format(collection.pk)
    request.session[key] = [*request.session.get(key, [])[-500:], line.pk]
    return _open_next(request, collection, params, line.pk)


@login_required
@require_POST
def save_draft(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    form = DraftForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    try:
        draft = actions.do_save_draft(
            line,
            request.user,
            form.cleaned_data["text"],
            base_version=form.cleaned_data["base_version"],
            hypothesis=form.cleaned_data["hypothesis"],
        )
    except actions.ReviewError as exc:
        return _error(request, str(exc))
    return JsonResponse({"saved": draft is not None, "lease": _lease_state(line_id, request.user)})


@login_required
@require_POST
def discard_draft(request, pk: int, line_id: int):
    actions.do_discard_draft(_line(request, pk, line_id), request.user)
    return JsonResponse({"discarded": True})


@login_required
@require_POST
def renew_lease(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    actions.do_renew_lease(line, request.user)
    return JsonResponse({"lease": _lease_state(line_id, request.user)})


def _lease_state(line_id: int, user) -> str:
    """held: ours; lost: someone else has it now; none: the line is not in review, or gone."""
    found = Line.objects.filter(pk=line_id).values_list("status", "claimed_by_id").first()
    if found is None:  # merged or deleted since the request found it
        return "none"
    status, holder = found
    if status != S.IN_REVIEW:
        return "none"
    return "held" if holder == user.pk else "lost"


@login_required
@require_POST
def mark_unclear(request, pk: int, line_id: int):
    """Alt+U: mark the line unclear, with a note, or remove the mark; the mark as it now is."""
    line = _line(request, pk, line_id)
    form = UnclearForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    try:
        if form.cleaned_data["unclear"]:
            actions.do_mark_unclear(line, request.user, form.cleaned_data["note"])
        else:
            actions.do_clear_unclear(line, request.user)
    except actions.ReviewError as exc:
        return _error(request, str(exc))
    if not _is_fetch(request):
        return redirect(reverse("review_line", args=[pk, line_id]))
    line.refresh_from_db(fields=["unclear", "unclear_note"])
    return render(request, "review/_unclear.html", {"collection": line.collection, "line": line})


# --- History ----------------------------------------------------------------------------


@login_required
@require_GET
def line_history(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    collection = line.collection
    corrections = list(
        Correction.objects.filter(line=line).select_related("user").order_by("-created_at", "-id")
    )
    rows = [(c, diff_spans(c.text_before, c.text_after)) for c in corrections]
    return render(
        request, "review/_history.html", {"collection": collection, "line": line, "rows": rows}
    )


@login_required
@require_POST
def revert_line(request, pk: int, line_id: int, correction_id: int):
    line = _line(request, pk, line_id)
    collection = line.collection
    params = _queue_params(request, collection)
    form = RevertForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    try:
        actions.do_revert_line(
            line,
            request.user,
            correction_id,
            expected_version=form.cleaned_data["expected_version"],
            before=form.cleaned_data["before"],
        )
    except actions.ReviewError as exc:
        return _error(request, str(exc))
    except actions.VersionConflict as conflict:
        return _conflict(request, collection, conflict, params)
    if _is_fetch(request):
        response = render(
            request, "review/_editor.html", _editor_context(request, collection, line_id, params)
        )
        response["X-Line-Url"] = _editor_url(collection, line_id, params)
        return response
    return redirect(_editor_url(collection, line_id, params))


# --- Images -----------------------------------------------------------------------------


@login_required
@require_GET
def line_image(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    try:
        image = images.open_line_crop(line)
    except (ImageError, OSError) as exc:
        return HttpResponse(f"The line image cannot be shown: {exc}", status=422)
    response = FileResponse(image, content_type="image/png")
    response["Cache-Control"] = IMMUTABLE
    return response


@login_required
@require_GET
def page_image(request, pk: int, page_id: int):
    collection = collection_for(request.user, pk)
    page = get_object_or_404(Page, pk=page_id, document__collection=collection)
    try:
        image = images.open_page_image(page)
    except (ImageError, OSError) as exc:
        return HttpResponse(f"The page image cannot be shown: {exc}", status=422)
    response = FileResponse(image)
    response["Cache-Control"] = IMMUTABLE
    return response


# --- The page view and segmentation -----------------------------------------------------


@login_required
@require_GET
def page_view(request, pk: int, page_id: int):
    collection = collection_for(request.user, pk)
    page = get_object_or_404(
        Page.objects.select_related("document"), pk=page_id, document__collection=collection
    )
    claim = actions.new_page_view_claim()
    actions.do_claim_page(page, request.user, claim=claim, opening=True)
    lines = queue.page_lines(page, request.user)
    siblings = list(page.document.pages.order_by("index").values_list("id", flat=True))
    index = siblings.index(page.pk)
    return render(
        request,
        "review/page.html",
        {
            "collection": collection,
            "page": page,
            "lines": lines,
            "claim": claim,
            "lease_seconds": settings.OCRREVIEW_LEASE_SECONDS,
            "previous_page": siblings[index - 1] if index > 0 else None,
            "next_page": siblings[index + 1] if index + 1 < len(siblings) else None,
            "palette": collection.palette,
        },
    )


@login_required
@require_POST
def renew_page_leases(request, pk: int, page_id: int):
    """The open page view keeps its lines, takes those a colleague let go, and learns which
    lines colleagues hold now, and whether a later page view of the reviewer (another tab)
    holds its lines."""
    page = _page_of(request, pk, page_id)
    if "claim" not in request.POST:
        # page.js from before claims, in a tab left open over a deploy: it ignores a refusal,
        # and its lines would run out under the reviewer.
        until = actions.do_renew_page_unclaimed(page, request.user)
        return JsonResponse(
            {"until": until.isoformat() if until else None, "held": _held(page, request.user)}
        )
    form = PageLeaseForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    claim = form.cleaned_data["claim"]
    if form.cleaned_data["take_over"]:
        claim = actions.new_page_view_claim()
    leases = actions.do_claim_page(page, request.user, claim=claim, opening=False)
    held = _held(page, request.user)
    if leases and leases.superseded:
        # "by" as page.js before this answer's other fields words it: "… is working on this
        # line (until 10:42): read-only here until they leave it."
        for line_id, until in leases.mine_elsewhere.items():
            held[line_id] = {"by": "your other tab", "until": _clock(until), "tab": True}
    return JsonResponse(
        {
            "until": leases.until.isoformat() if leases and leases.until else None,
            "held": held,
            "superseded": bool(leases and leases.superseded),
            "claim": str(claim),
            # The version of the page view's scripts now, to a tab opened before a deploy.
            "scripts": assets.version(*assets.PAGE_VIEW_SCRIPTS),
        }
    )


def _held(page: Page, user) -> dict[int, dict]:
    """The page's lines colleagues hold now."""
    return {
        line.pk: {"by": line.claimed_by.get_username(), "until": _clock(line.claimed_until)}
        for line in queue.page_lines(page, user)
        if line.held_by_other
    }


@login_required
@require_POST
def release_page(request, pk: int, page_id: int):
    """The page view's tab was closed or left (a beacon)."""
    page = _page_of(request, pk, page_id)
    form = PageReleaseForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    released = actions.do_release_page(
        page, request.user, claim=form.cleaned_data["claim"], keep=form.cleaned_data["keep"]
    )
    return JsonResponse({"released": released})


def _clock(moment: datetime) -> str:
    return dateformat.format(timezone.localtime(moment), "H:i")


def _page_line(request, collection: Collection, line_id: int) -> HttpResponse:
    return render(
        request,
        "review/_page_line.html",
        {"collection": collection, "line": _line(request, collection.pk, line_id)},
    )


def _segmentation(request, run) -> JsonResponse:
    try:
        result = run()
    except actions.ReviewError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except actions.VersionConflict:
        return JsonResponse(
            {"error": "Someone changed this line meanwhile; the page is reloaded."}, status=409
        )
    if result is None:  # a line deleted
        return JsonResponse({"ok": True, "line": None})
    # The line the edit made or changed, as it now is: the page view keeps a moved box in place.
    return JsonResponse(
        {"ok": True, "line": result.pk, "version": result.version, "bbox": result.bbox}
    )


def _versioned_segmentation(request, pk: int, line_id: int, action) -> JsonResponse:
    """A segmentation edit whose only input is the line version the reviewer saw."""
    line = _line(request, pk, line_id)
    form = VersionForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    expected_version = form.cleaned_data["expected_version"]
    return _segmentation(
        request, lambda: action(line, request.user, expected_version=expected_version)
    )


@login_required
@require_POST
def move_line(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    return _segmentation(
        request,
        lambda: actions.do_move_line(
            line, request.user, form.bbox(), expected_version=form.cleaned_data["expected_version"]
        ),
    )


@login_required
@require_POST
def split_line(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    form = SplitForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    text, at_char = form.person_text() or (None, None)
    return _segmentation(
        request,
        lambda: actions.do_split_line(
            line,
            request.user,
            at_x=form.cleaned_data["x"],
            expected_version=form.cleaned_data["expected_version"],
            text=text,
            at_char=at_char,
        ),
    )


@login_required
@require_POST
def merge_line(request, pk: int, line_id: int):
    return _versioned_segmentation(request, pk, line_id, actions.do_merge_lines)


@login_required
@require_POST
def delete_line(request, pk: int, line_id: int):
    return _versioned_segmentation(request, pk, line_id, actions.do_delete_line)


def _page_of(request, pk: int, page_id: int) -> Page:
    collection = collection_for(request.user, pk)
    return get_object_or_404(
        Page.objects.select_related("document"), pk=page_id, document__collection=collection
    )


@login_required
@require_POST
def add_line(request, pk: int, page_id: int):
    page = _page_of(request, pk, page_id)
    form = BoxForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    return _segmentation(request, lambda: actions.do_add_line(page, request.user, form.bbox()))


def _reading_order(run) -> JsonResponse:
    """A change of a page's reading order: the page's line ids in their order now, which the
    page view puts its rows and box numbers in, focus and typing kept."""
    try:
        return JsonResponse({"ok": True, **run()})
    except actions.VersionConflict:
        return JsonResponse(
            {"error": "Someone changed this line meanwhile; the page is reloaded."}, status=409
        )
    except actions.OrderChanged as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    except actions.ReviewError as exc:
        return JsonResponse({"error": str(exc)}, status=400)


@login_required
@require_POST
def reorder_line(request, pk: int, line_id: int):
    line = _line(request, pk, line_id)
    form = ReorderForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    data = form.cleaned_data
    return _reading_order(
        lambda: {
            "lines": actions.do_reorder_line(
                line,
                request.user,
                expected_version=data["expected_version"],
                position=data["position"],
                before=data["before"],
                after=data["after"],
            )
        }
    )


@login_required
@require_POST
def sort_page(request, pk: int, page_id: int):
    page = _page_of(request, pk, page_id)

    def run() -> dict:
        result = actions.do_sort_page(page, request.user)
        event = result.event.pk if result.event else None
        return {"lines": result.order, "moved": result.moved, "event": event}

    return _reading_order(run)


@login_required
@require_POST
def undo_page_sort(request, pk: int, page_id: int):
    page = _page_of(request, pk, page_id)
    form = SortUndoForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": first_error(form)}, status=400)
    return _reading_order(
        lambda: {"lines": actions.do_undo_page_sort(page, request.user, form.cleaned_data["event"])}
    )


# --- Admin and progress -----------------------------------------------------------------


@login_required
@require_GET
def threshold_preview(request, pk: int):
    collection = admin_collection_for(request.user, pk)
    form = ThresholdForm(request.GET)
    if not form.is_valid():
        return render(
            request, "review/_threshold_preview.html", {"error": first_error(form)}, status=400
        )
    preview = queue.threshold_preview(collection, form.cleaned_data["confidence_threshold"])
    return render(request, "review/_threshold_preview.html", {"preview": preview})


@login_required
@require_POST
def apply_threshold(request, pk: int):
    """ "Save and apply to existing lines" on the settings page posts the settings form here."""
    collection = admin_collection_for(request.user, pk)
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing was changed: {first_error(form)}")
        return redirect("collection_settings", pk=collection.pk)
    threshold = form.cleaned_data["confidence_threshold"]
    # Lines read already by an uncalibrated model, or to be read by the collection's.
    problem = calibration_guard.uncalibrated_auto_accept(threshold, collection.model_version)
    if problem is None and queue.threshold_preview(collection, threshold).accepted_uncalibrated:
        problem = calibration_guard.confirmation_needed("a model that read some lines", threshold)
    if problem and not form.cleaned_data[calibration_guard.CONFIRM_FIELD]:
        messages.error(request, f"Nothing was changed: {problem}")
        return redirect("collection_settings", pk=collection.pk)
    moved = actions.do_apply_threshold(collection, threshold, actor=request.user)
    messages.success(
        request,
        f"Threshold set to {collection.confidence_threshold:.2f}: "
        f"{moved['to_humans']} line(s) sent to reviewers, {moved['accepted']} accepted.",
    )
    return redirect("collection_settings", pk=collection.pk)


@login_required
@require_GET
def progress_view(request, pk: int):
    collection = collection_for(request.user, pk)
    is_admin = is_collection_admin(request.user, collection)
    filters = ProgressFilterForm(request.GET, collection=collection)
    if not is_admin:
        # Who works on what is the coordinators' to see; a volunteer finds their own.
        filters.fields["assignee"].queryset = get_user_model().objects.filter(pk=request.user.pk)
    if not filters.is_valid():
        return render(
            request,
            "review/progress.html",
            {"collection": collection, "filters": filters, "is_admin": is_admin},
            status=400,
        )
    report = progress.collection_progress(
        collection,
        request.user,
        is_admin=is_admin,
        review_state=filters.cleaned_data["review_state"] or None,
        assignee=filters.cleaned_data["assignee"],
        page=request.GET.get("page"),
    )
    if not is_admin:
        # A volunteer's speed is theirs and the coordinators' to see, not their colleagues'.
        mine = [r for r in report.reviewers if r.username == request.user.get_username()]
        report = replace(report, reviewers=mine)
    context = {"collection": collection, "report": report, "is_admin": is_admin}
    context.update(filters=filters, states=Document.ReviewState.choices)
    shown = report.page
    context["newer_url"] = _page_query(request, shown.has_previous() and shown.number - 1)
    context["older_url"] = _page_query(request, shown.has_next() and shown.number + 1)
    if is_admin:
        context["members"] = filters.fields["assignee"].queryset
    # A volunteer sees their own days, as their own running totals.
    days = ReviewerDaysForm(request.GET)
    context["days_form"] = days
    if not days.is_valid():
        return render(request, "review/progress.html", context, status=400)
    context["days"] = days.report(collection, only=None if is_admin else request.user)
    context["days_query"] = urlencode(
        {name: days.cleaned_data[name].isoformat() for name in ("since", "until")}
    )
    return render(request, "review/progress.html", context)


# Cells a spreadsheet would read as a formula (a username may begin with + - or @).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


@login_required
@require_GET
def reviewer_days_csv(request, pk: int):
    """The progress page's reviewer statistics per day as CSV, oldest day first: a row per
    person and day they settled lines, and each day's totals as "(all reviewers)" (to admins;
    a volunteer gets their own rows)."""
    collection = collection_for(request.user, pk)
    is_admin = is_collection_admin(request.user, collection)
    form = ReviewerDaysForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(first_error(form), content_type="text/plain; charset=utf-8")
    shown = form.report(collection, only=None if is_admin else request.user)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"reviewers-per-day-{collection.pk}-{shown.since}-{shown.until}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            f"day ({shown.zone})",
            "reviewer",
            "lines_reviewed",
            "lines_changed",
            "lines_accepted_unchanged",
            "timed_lines",
            "time_spent_minutes",
            "lines_per_hour",
        ]
    )
    for day in reversed(shown.days):
        for stats in ([day.total] if day.total else []) + day.reviewers:
            rate = stats.lines_per_hour
            writer.writerow(
                [
                    day.day.isoformat(),
                    _cell(stats.username),
                    stats.lines,
                    stats.changed,
                    stats.accepted,
                    stats.timed_lines,
                    f"{stats.time_spent_ms / 60_000:.1f}",
                    "" if rate is None else f"{rate:.1f}",
                ]
            )
    return response


def _page_query(request, number: int | bool) -> str | None:
    """The query string of another page of the progress view, its filters kept."""
    if not number:
        return None
    params = request.GET.copy()
    params["page"] = str(number)
    return f"?{params.urlencode()}"


def _back_to_progress(request, collection: Collection):
    """To the progress page as it was filtered, whence the form came."""
    shown = QueryDict(request.POST.get("filters", ""))
    query = urlencode(
        {key: shown[key] for key in ("review_state", "assignee", "page") if shown.get(key)}
    )
    url = reverse("review_progress", args=[collection.pk])
    return redirect(f"{url}?{query}" if query else url)


@login_required
@require_POST
def set_document_state(request, pk: int, document_id: int):
    """A document's review state, by an admin, or by a member it is assigned to for their
    own steps (corpus/workflow.py)."""
    collection = collection_for(request.user, pk)
    document = get_object_or_404(collection.documents.without_iiif_json(), pk=document_id)
    form = ReviewStateForm(request.POST)
    if not form.is_valid():
        return _error(request, first_error(form))
    try:
        workflow.do_set_review_state(
            document,
            form.cleaned_data["review_state"],
            actor=request.user,
            expected=form.cleaned_data["expected_review_state"] or None,
        )
    except workflow.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except workflow.StateConflict as exc:
        messages.error(request, str(exc))
    except workflow.WorkflowError as exc:
        return _error(request, str(exc))
    else:
        messages.success(
            request, f"'{document.title}' is {document.get_review_state_display().lower()} now."
        )
    return _back_to_progress(request, collection)


@login_required
@require_POST
def set_document_assignees(request, pk: int, document_id: int):
    collection = admin_collection_for(request.user, pk)
    document = get_object_or_404(collection.documents.without_iiif_json(), pk=document_id)
    form = AssigneesForm(request.POST, collection=collection)
    if not form.is_valid():
        return _error(request, first_error(form))
    try:
        # The form lists those it showed as assigned, none when nobody was.
        assigned = workflow.do_set_assignees(
            document,
            form.cleaned_data["assignees"],
            actor=request.user,
            expected=form.cleaned_data["expected_assignees"],
        )
    except workflow.AssigneesConflict as exc:
        # Back to the page, which shows who it is assigned to now, to choose again.
        messages.error(request, str(exc))
    except workflow.WorkflowError as exc:
        return _error(request, str(exc))
    else:
        names = ", ".join(user.get_username() for user in assigned) or "nobody"
        messages.success(request, f"'{document.title}' is assigned to {names}.")
    return _back_to_progress(request, collection)


@login_required
@require_GET
def search_view(request, pk: int):
    collection = collection_for(request.user, pk)
    form = SearchForm(request.GET if "q" in request.GET else None, collection=collection)
    context = {"collection": collection, "form": form, "results": None}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        results = search.search_lines(collection, data["q"], form.filters(), cursor=data["cursor"])
        context["results"] = results
        if data["q"] and not find_replace.query_problem(data["q"]):
            limit = find_replace.line_limit(is_collection_admin(request.user, collection))
            found = find_replace.hit_lines(
                collection,
                data["q"],
                form.filters(),
                limit + 1,
                read_most=find_replace.COUNT_READ_MOST,
            )
            context.update(replace_limit=limit, hit_count=None if found is None else len(found))
        # The editor's links carry the way back, and the hits to go through one by one.
        context["trail_query"] = urlencode(
            {
                "back": request.get_full_path(),
                "hits": ",".join(str(h.line.pk) for h in results.hits),
            }
        )
        context["fixed"] = search.saved_by(request.user, [h.line for h in results.hits])
        context["next_url"] = _search_page(request, results.next, before=False)
        context["previous_url"] = _search_page(request, results.previous, before=True)
    return render(request, "review/search.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def replace_view(request, pk: int):
    """Replace the words a search found in the hits chosen on its results: every hit, each
    ticked, for the person to untick the false ones; then, with `apply`, exactly the hits left
    ticked, and what it changed and what it left."""
    collection = collection_for(request.user, pk)
    form = ReplaceForm(request.POST, collection=collection)
    context = {"collection": collection, "form": form, "result": None}
    if not form.is_valid():
        return render(request, "review/replace.html", context, status=400)
    data = form.cleaned_data
    filters = form.filters()
    done = "apply" in request.POST
    limit = find_replace.line_limit(is_collection_admin(request.user, collection))
    try:
        chosen = find_replace.chosen_lines(
            collection, data["q"], filters, form.chosen(), limit, form.options()
        )
    except actions.ReviewError as exc:
        context["problem"] = str(exc)
        return render(request, "review/replace.html", context, status=400)
    args = (collection, request.user, data["q"], filters, chosen, data["replacement"])
    options, ticks = form.options(), form.ticks()
    problem = form.deletes_unconfirmed(done)
    if problem:
        # Shown again, as previewed, with the confirmation asked for.
        context["problem"] = problem
        done = False
    if done:
        result = find_replace.do_replace(
            *args, versions=form.seen_versions(), options=options, ticks=ticks
        )
    else:
        result = find_replace.replace_preview(*args, options=options, ticks=ticks)
        if result.hits_chosen > find_replace.MAX_HITS:
            context["problem"] = (
                f"A replace lists at most {find_replace.MAX_HITS:,} hits to tick through; "
                "narrow the search (a document, a status) and replace in each part."
            )
            context["result"] = None
            return render(request, "review/replace.html", context, status=400)
    context.update(
        done=done,
        result=result,
        changes=[
            (c, diff_spans(c.text_before, c.text_after), _hit_rows(c)) for c in result.changed
        ],
        # Lines whose text moved under the person: theirs to preview again, as they are now.
        again=[
            s.line_id
            for s in result.skipped
            if done and s.reason in (find_replace.Skip.CHANGED, find_replace.Skip.HITS_CHANGED)
        ],
    )
    return render(request, "review/replace.html", context, status=400 if problem else 200)


def _hit_rows(change: find_replace.Change) -> list[tuple[str, find_replace.Hit | None, str]]:
    """The line's text cut at its hits, each hit with the words a screen reader says for its
    checkbox: which line of which page it is in (and which of the line's hits)."""
    line = change.line
    where = f"line {line.order + 1} of {line.document.title} p. {line.page.index + 1}"
    count = len(change.hits)
    rows = []
    for text, hit in change.pieces():
        label = ""
        if hit is not None:
            number = change.hits.index(hit) + 1
            label = (
                f"Replace in {where}"
                if count == 1
                else f"Replace hit {number} of {count} (“{hit.text}”) in {where}"
            )
        rows.append((text, hit, label))
    return rows


def _search_page(request, position: search.Position | None, *, before: bool) -> str | None:
    if position is None:
        return None
    params = request.GET.copy()
    params["cursor"] = search.encode_cursor(position, before=before)
    return f"?{params.urlencode()}"


# --- Coordination -----------------------------------------------------------------------


@login_required
@require_GET
def corrections_view(request, pk: int):
    """The collection's corrections, newest first, by person and time, for its admins to find
    one volunteer's work."""
    collection = admin_collection_for(request.user, pk)
    form = TrailFilterForm(request.GET, collection=collection)
    context = {"collection": collection, "form": form}
    if form.is_valid():
        data = form.cleaned_data
        page = coordination.trail_page(
            coordination.trail(collection, **form.filters()),
            data["cursor"],
            data["page_size"] or keyset.PAGE_SIZE,
        )
        context["rows"] = [(c, diff_spans(c.text_before, c.text_after)) for c in page.rows]
        context["older_url"] = keyset.page_query(request.GET, page.older, newer=False)
        context["newer_url"] = keyset.page_query(request.GET, page.newer, newer=True)
    return render(request, "review/corrections.html", context, status=400 if form.errors else 200)


# What the last undo of a person's saves did, shown by the page it redirects to (so that
# reloading that page shows it again rather than undoing once more).
UNDONE = "review:undone:{}"


@login_required
@require_http_methods(["GET", "POST"])
def revert_user_saves(request, pk: int):
    """What undoing a person's saves since a time would do, to confirm (GET); undoing them
    (POST), then what it did (GET with done). Either way the lines left alone are listed,
    with who changed them since."""
    collection = admin_collection_for(request.user, pk)
    posted = request.method == "POST"
    form = RevertUserForm(request.POST if posted else request.GET, collection=collection)
    context = {"collection": collection, "form": form, "done": False}
    if not form.is_valid():
        return render(request, "review/corrections_revert.html", context, status=400)
    user, since = form.cleaned_data["user"], form.cleaned_data["since"]
    asked = {"user": user.pk, "since": since.isoformat()}
    if posted:
        try:
            result = saves_undo.do_undo_saves(collection, user, since, request.user)
        except saves_undo.UndoNotQueued:
            context["error"] = (
                "The undo cannot be started just now (the task queue is down); nothing was "
                "undone. Try again in a few minutes."
            )
            return render(request, "review/corrections_revert.html", context, status=503)
        if isinstance(result, SavesUndo):
            return redirect("review_saves_undo", collection.pk, result.pk)
        return _show_undone(request, collection, asked, result)
    result = _undone(request, collection, asked) if "done" in request.GET else None
    context["done"] = result is not None
    if result is None:
        result = actions.revert_user_saves_preview(collection, user, since)
    lines = (
        Line.objects.select_related("document", "page")
        .defer(*iiif_json_through("document"))
        .in_bulk([left.newest.line_id for left in result.skipped])
    )
    context.update(
        person=user,
        since=since,
        result=result,
        skipped=[(lines[left.newest.line_id], left) for left in result.skipped],
    )
    return render(request, "review/corrections_revert.html", context)


def _show_undone(request, collection: Collection, asked: dict, result: actions.UserRevert):
    """Redirect to the page of what the undo did, kept in the session for it."""
    request.session[UNDONE.format(collection.pk)] = {
        **asked,
        "reverted": result.reverted,
        "requeued": result.requeued,
        "skipped": [[left.newest.pk, left.reason] for left in result.skipped],
    }
    query = urlencode({**asked, "done": 1})
    return redirect(f"{reverse('review_revert_user', args=[collection.pk])}?{query}")


@login_required
@require_GET
def saves_undo_progress(request, pk: int, undo_id: int):
    """An undo a worker runs: how far it is, until it is done, then what it did."""
    collection = admin_collection_for(request.user, pk)
    undo = get_object_or_404(
        SavesUndo.objects.select_related("person"), pk=undo_id, collection=collection
    )
    if undo.status == SavesUndo.Status.DONE:
        asked = {"user": undo.person_id, "since": undo.since.isoformat()}
        return _show_undone(request, collection, asked, saves_undo.outcome(undo))
    return render(request, "review/saves_undo.html", {"collection": collection, "undo": undo})


def _undone(request, collection: Collection, asked: dict) -> actions.UserRevert | None:
    """What this session's last undo of these saves did; None for another undo's address (an
    old tab, a bookmark), which then shows what undoing would do now."""
    undone = request.session.get(UNDONE.format(collection.pk))
    if (
        not undone
        or undone["user"] != asked["user"]
        or datetime.fromisoformat(undone["since"]) != datetime.fromisoformat(asked["since"])
    ):
        return None
    newest = Correction.objects.select_related("user").in_bulk([pk for pk, _ in undone["skipped"]])
    return actions.UserRevert(
        reverted=undone["reverted"],
        requeued=undone["requeued"],
        skipped=[actions.LeftAlone(newest[pk], reason) for pk, reason in undone["skipped"]],
    )
