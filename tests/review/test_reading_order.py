"""A page's reading order, changed by hand (a line moved earlier or later, to a place) or by
sorting the page by where its boxes are, with its undo; in the page view and the API."""

import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse

from ocrreview.corpus import audit
from ocrreview.corpus.models import CollectionEvent, Document, Line, Page
from ocrreview.corpus.reading_order import reading_order
from ocrreview.corpus.workflow import do_set_review_state
from ocrreview.review import actions
from tests import factories
from tests.db_locks import wait_until_another_session_waits_for_a_lock
from tests.factories import token_headers as auth

T = CollectionEvent.Type


def texts(page):
    return list(Line.objects.filter(page=page).order_by("order").values_list("text", flat=True))


def orders(page):
    return list(Line.objects.filter(page=page).order_by("order").values_list("order", flat=True))


def reorder(client, letters, line, **fields):
    return client.post(reverse("review_reorder", args=[letters.pk, line.pk]), fields)


@pytest.fixture
def start(page, lines):
    return texts(page)


def test_a_line_moves_before_or_after_a_neighbour_or_to_a_place(
    client, bob, letters, page, lines, start
):
    client.force_login(bob)
    answer = reorder(client, letters, lines[1], expected_version=1, before=lines[0].pk)
    assert answer.status_code == 200
    assert answer.json()["lines"] == [lines[i].pk for i in (1, 0, 2, 3)]
    assert texts(page) == [start[i] for i in (1, 0, 2, 3)]
    reorder(client, letters, lines[1], expected_version=1, after=lines[3].pk)
    assert texts(page) == [start[i] for i in (0, 2, 3, 1)]
    reorder(client, letters, lines[1], expected_version=1, position=2)
    assert texts(page) == [start[i] for i in (0, 1, 2, 3)]
    assert orders(page) == [0, 1, 2, 3]
    # Its place is the page's: the line's version, which a colleague typing in it holds, stays.
    assert Line.objects.get(pk=lines[1].pk).version == 1

    events = CollectionEvent.objects.filter(event_type=T.LINE_REORDERED).order_by("id")
    assert [(e.extra_data["old_value"], e.extra_data["new_value"]) for e in events] == [
        (2, 1),
        (1, 4),
        (4, 2),
    ]
    assert audit.sentence(events[0]) == (
        "bob moved line 2 to place 1 in reading order on page 1 of 'Letter to Mr Hale'"
    )
    rows = audit.history_rows(list(CollectionEvent.objects.filter(collection=letters)))
    assert [row.text for row in rows] == [
        "moved 3 lines in reading order on page 1 of 'Letter to Mr Hale'"
    ]


def test_a_move_to_where_the_line_is_changes_nothing(client, bob, letters, page, lines, start):
    client.force_login(bob)
    assert reorder(client, letters, lines[2], expected_version=1, position=3).status_code == 200
    assert texts(page) == start
    assert not CollectionEvent.objects.exists()


def test_orders_with_gaps_are_numbered_again(client, bob, letters, page, lines, start):
    Line.objects.filter(pk=lines[3].pk).update(order=9)
    client.force_login(bob)
    reorder(client, letters, lines[0], expected_version=1, after=lines[1].pk)
    assert orders(page) == [0, 1, 2, 3]
    assert texts(page) == [start[i] for i in (1, 0, 2, 3)]


def test_a_line_changed_meanwhile_is_a_conflict(client, alice, bob, letters, page, lines, start):
    actions.do_save_line(lines[1], alice, "I received your", expected_version=1)
    client.force_login(bob)
    answer = reorder(client, letters, lines[1], expected_version=1, position=1)
    assert answer.status_code == 409
    assert texts(page)[0] == start[0]
    with pytest.raises(actions.VersionConflict):
        actions.do_reorder_line(lines[1], bob, expected_version=1, position=1)


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"position": 0}, "greater than or equal to 1"),
        ({"position": 5}, "from 1 to 4"),
        ({"position": "second"}, "whole number"),
        ({"position": 1, "before": "LINE0"}, "one of position, before or after"),
        ({}, "one of position, before or after"),
        ({"before": "SELF"}, "not another line of this page"),
        ({"after": "OTHER_PAGE"}, "not another line of this page"),
        ({"after": 2**62}, "not another line of this page"),
    ],
)
def test_a_place_that_is_none_is_refused(
    client, bob, letters, letter, page, lines, start, model_version, fields, error
):
    other = factories.make_read_line(
        factories.make_page(letter, 1), 0, [("Boston", 0.9)], model_version
    )
    ids = {"LINE0": lines[0].pk, "SELF": lines[2].pk, "OTHER_PAGE": other.pk}
    fields = {k: ids.get(v, v) for k, v in fields.items()}
    client.force_login(bob)
    answer = reorder(client, letters, lines[2], expected_version=1, **fields)
    assert answer.status_code == 400
    assert error in answer.json()["error"]
    assert texts(page) == start


@pytest.mark.parametrize(
    "persona, code", [("alice", 200), ("bob", 200), ("charlie", 404), ("dave", 404)]
)
def test_who_may_change_the_reading_order(client, request, letters, page, lines, persona, code):
    client.force_login(request.getfixturevalue(persona))
    assert reorder(client, letters, lines[1], expected_version=1, position=1).status_code == code
    sort = reverse("review_sort_page", args=[letters.pk, page.pk])
    assert client.post(sort).status_code == code
    headers = auth(request.getfixturevalue(persona))
    api = client.post(
        reverse("api_line_reorder", args=[lines[1].pk]),
        {"expected_version": 1, "position": 2},
        content_type="application/json",
        headers=headers,
    )
    assert api.status_code == code
    api = client.post(reverse("api_page_sort", args=[page.pk]), headers=headers)
    assert api.status_code == code
    if code == 404:
        assert list(Line.objects.filter(page=page).order_by("order")) == lines


# --- A reorder beside a colleague's segmentation edit -------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("edit", ["split", "add", "delete"])
def test_a_reorder_waits_for_a_segmentation_edit_of_the_page_and_counts_its_lines(
    client, alice, bob, letters, page, lines, edit
):
    """The reorder's lock of the page's lines waits for the edit; a line the edit added, which
    the reorder's first look did not see, still gets a place of its own."""
    client.force_login(bob)
    answers = {}

    def press():
        try:
            answers["reorder"] = reorder(
                client, letters, lines[3], expected_version=1, before=lines[0].pk
            )
        finally:
            connection.close()

    with transaction.atomic():
        if edit == "split":
            actions.do_split_line(lines[0], alice, at_x=250, expected_version=1)
        elif edit == "add":
            actions.do_add_line(page, alice, [10, 0, 400, 8])
        else:
            actions.do_delete_line(lines[1], alice, expected_version=1)
        pressed = threading.Thread(target=press)
        pressed.start()
        wait_until_another_session_waits_for_a_lock()
    pressed.join()

    assert answers["reorder"].status_code == 200
    now = list(Line.objects.filter(page=page).order_by("order", "id"))
    assert [line.order for line in now] == list(range(len(now)))
    assert answers["reorder"].json()["lines"] == [line.pk for line in now]
    ids = [line.pk for line in now]
    assert ids.index(lines[3].pk) + 1 == ids.index(lines[0].pk)
    assert len(now) == {"split": 5, "add": 5, "delete": 3}[edit]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["reorder", "sort", "undo sort", "add"])
def test_a_page_change_that_waited_for_its_lines_is_refused_once_the_document_is_final(
    alice, bob, letters, page, lines, change
):
    """The change reads the page, then waits for its lines, held here by a colleague (a find
    and replace, say) whose transaction also makes the document final: once the lines are
    its own, the document is final, and the reading order and the lines stay as published."""
    sort = None
    if change == "undo sort":
        actions.do_reorder_line(lines[3], bob, expected_version=1, position=1)
        sort = actions.do_sort_page(page, bob).event
    before = list(Line.objects.filter(page=page).order_by("order").values_list("pk", "order"))
    outcome = {}

    def press():
        # Read as a request reads it, before the document is final.
        seen = Page.objects.select_related("document").get(pk=page.pk)
        try:
            if change == "reorder":
                actions.do_reorder_line(lines[3], bob, expected_version=1, position=1)
            elif change == "sort":
                actions.do_sort_page(seen, bob)
            elif change == "undo sort":
                actions.do_undo_page_sort(seen, bob, sort.pk)
            else:
                actions.do_add_line(seen, bob, [10, 0, 400, 8])
        except actions.ReviewError as refused:
            outcome["refused"] = refused
        finally:
            connection.close()

    with transaction.atomic():
        list(Line.objects.select_for_update().filter(page=page))
        document = Document.objects.get(pk=page.document_id)
        do_set_review_state(document, Document.ReviewState.FINAL, actor=alice)
        pressed = threading.Thread(target=press)
        pressed.start()
        wait_until_another_session_waits_for_a_lock()
    pressed.join()

    assert isinstance(outcome.get("refused"), actions.DocumentFinal)
    after = list(Line.objects.filter(page=page).order_by("order").values_list("pk", "order"))
    assert after == before


# --- Sorting a page by position -----------------------------------------------------------


def test_two_columns_are_read_one_after_the_other():
    # Rows of a left and a right column on the same heights, given row by row.
    boxes = []
    for row in range(3):
        top = 100 + row * 50
        boxes += [[50, top, 280, top + 30], [320, top + 2, 560, top + 32]]
    assert reading_order(boxes) == [0, 2, 4, 1, 3, 5]


def test_skewed_lines_go_by_their_middle_and_side_by_side_boxes_left_to_right():
    boxes = [
        [40, 90, 560, 190],  # a skewed line: its box is tall, its top above the line before's
        [40, 100, 560, 130],
        [40, 215, 280, 250],  # the two halves of a split line, the right one drawn higher
        [300, 205, 560, 240],
        [400, 20, 560, 50],  # a date, top right, over the whole-width lines: one column
    ]
    assert reading_order(boxes) == [4, 1, 0, 2, 3]


def test_a_line_reaching_a_little_into_the_next_column_keeps_them_apart():
    boxes = [[320, 100, 560, 130], [50, 100, 340, 130], [50, 150, 290, 180]]
    assert reading_order(boxes) == [1, 2, 0]


def two_columns(top: int, rows: int) -> list[list[int]]:
    """Rows of a left and a right column on the same heights, given row by row."""
    boxes = []
    for row in range(rows):
        y = top + row * 50
        boxes += [[50, y, 280, y + 30], [320, y + 2, 560, y + 32]]
    return boxes


def test_a_heading_across_two_columns_is_read_before_them_and_a_footer_after():
    heading, footer = [60, 20, 540, 60], [50, 300, 560, 330]
    boxes = [*two_columns(100, 3), footer, heading]
    assert reading_order(boxes) == [7, 0, 2, 4, 1, 3, 5, 6]


def test_a_heading_between_two_sections_of_columns_cuts_the_page_there():
    # A narrow centred heading over the gutter, between two two-column sections.
    boxes = [*two_columns(100, 2), [230, 210, 380, 240], *two_columns(260, 2)]
    assert reading_order(boxes) == [0, 2, 1, 3, 4, 5, 7, 6, 8]


@pytest.mark.parametrize(
    "left",
    [
        # The third line split in two halves, side by side.
        [[50, 100, 280, 130], [50, 150, 280, 180], [50, 200, 150, 230], [170, 200, 280, 230]],
        # A centred subheading under the short end of a paragraph.
        [[50, 100, 280, 130], [50, 150, 100, 180], [110, 200, 220, 230], [50, 250, 280, 280]],
        # Two lines split in halves.
        [[50, 100, 280, 130], [50, 150, 150, 180], [170, 150, 280, 180], [50, 200, 280, 230]]
        + [[50, 250, 150, 280], [170, 250, 280, 280], [50, 300, 280, 330]],
    ],
)
def test_lines_of_one_column_never_cut_the_column_beside_it(left):
    right = [[320, 100 + row * 50, 560, 130 + row * 50] for row in range(5)]
    assert reading_order(left + right) == list(range(len(left) + len(right)))


def test_a_heading_cuts_its_columns_beside_a_margin_column_that_runs_past_it():
    margin = [[0, 110 + row * 50, 40, 140 + row * 50] for row in range(5)]
    heading = [60, 200, 540, 230]
    boxes = [*margin, *two_columns(100, 2), heading, *two_columns(250, 2)]
    # The margin's lines above the heading, the columns above it, the heading, then below.
    assert reading_order(boxes) == [0, 1, 5, 7, 6, 8, 9, 2, 3, 4, 10, 12, 11, 13]


LEFT, MIDDLE, RIGHT = (50, 230), (270, 450), (490, 670)


def column(x: tuple[int, int], top: int, rows: int) -> list[list[int]]:
    return [[x[0], top + row * 50, x[1], top + row * 50 + 30] for row in range(rows)]


def test_three_columns_without_headings_are_read_one_after_the_other():
    # Given row by row.
    rows = zip(column(LEFT, 100, 4), column(MIDDLE, 100, 4), column(RIGHT, 100, 4), strict=True)
    boxes = [box for row in rows for box in row]
    assert reading_order(boxes) == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]


def test_a_heading_over_two_columns_of_three_cuts_only_those_two():
    # The right column runs from the top of the page to the bottom beside the heading.
    right = column(RIGHT, 100, 7)
    heading = [60, 200, 440, 230]
    above = [*column(LEFT, 100, 2), *column(MIDDLE, 100, 2)]
    below = [*column(LEFT, 250, 3), *column(MIDDLE, 250, 3)]
    boxes = [*right, heading, *above, *below]
    # Cut across the page, the right column's first three lines came before the heading.
    assert reading_order(boxes) == [*range(8, 12), 7, *range(12, 18), *range(7)]


def test_a_heading_over_the_last_two_columns_is_read_after_the_first_and_a_footer_last():
    left = column(LEFT, 100, 7)
    heading = [280, 200, 660, 230]
    above = [*column(MIDDLE, 100, 2), *column(RIGHT, 100, 2)]
    below = [*column(MIDDLE, 250, 3), *column(RIGHT, 250, 3)]
    footer = [50, 500, 670, 530]
    boxes = [footer, *below, heading, *above, *left]
    assert reading_order(boxes) == [*range(12, 19), *range(8, 12), 7, *range(1, 7), 0]


def test_a_subheading_over_two_columns_of_three_under_a_heading_across_all_three():
    heading = [50, 20, 670, 60]
    subheading = [60, 250, 440, 280]
    above = [*column(LEFT, 100, 3), *column(MIDDLE, 100, 3)]
    below = [*column(LEFT, 300, 3), *column(MIDDLE, 300, 3)]
    right = column(RIGHT, 100, 8)
    boxes = [*right, *below, subheading, *above, heading]
    # The heading, the two columns' tops, the subheading, their bottoms, the right column.
    assert reading_order(boxes) == [21, *range(15, 21), 14, *range(8, 14), *range(8)]


def test_headings_over_overlapping_pairs_of_columns_still_cut_the_page_across():
    # No gutter runs down the whole page to split it at: each heading cuts it across, as before.
    headings = [[60, 200, 440, 230], [280, 350, 660, 380]]
    left = [*column(LEFT, 100, 2), *column(LEFT, 250, 5)]
    middle = [*column(MIDDLE, 100, 2), *column(MIDDLE, 250, 2), *column(MIDDLE, 400, 2)]
    right = [*column(RIGHT, 100, 5), *column(RIGHT, 400, 2)]
    boxes = [*headings, *left, *middle, *right]
    # Above, between and below the headings, the left column, the middle one, the right one.
    assert reading_order(boxes) == [
        *(2, 3, 9, 10, 15, 16, 17),
        0,
        *(4, 5, 6, 11, 12, 18, 19),
        1,
        *(7, 8, 13, 14, 20, 21),
    ]


def test_a_letter_reads_its_date_top_right_before_the_salutation_on_the_left():
    boxes = [
        [60, 140, 560, 170],
        [60, 90, 200, 120],  # "Dear Sir,"
        [400, 30, 560, 60],  # the date
        [60, 190, 560, 220],
        [60, 240, 180, 270],  # the end of a paragraph
        [380, 300, 560, 330],  # the signature
    ]
    assert reading_order(boxes) == [2, 1, 0, 3, 4, 5]


def test_hundreds_of_lines_given_in_any_order_are_read_top_to_bottom():
    boxes = [[40 + (i % 3) * 10, i * 30, 560 - (i % 5) * 20, i * 30 + 25] for i in range(400)]
    boxes += [[40, 12000, 120, 12025], [480, 12100, 560, 12120]]
    assert reading_order(boxes[::-1]) == list(range(401, -1, -1))


def test_sorting_a_page_and_undoing_it(client, bob, letters, page, lines, start):
    # Line 4 drawn at the top, line 1 at the bottom.
    Line.objects.filter(pk=lines[3].pk).update(bbox=[10, 0, 500, 8])
    Line.objects.filter(pk=lines[0].pk).update(bbox=[10, 300, 500, 330])
    client.force_login(bob)
    answer = client.post(reverse("review_sort_page", args=[letters.pk, page.pk])).json()
    assert answer["moved"] == 2
    assert texts(page) == [start[i] for i in (3, 1, 2, 0)]
    sort = CollectionEvent.objects.get(event_type=T.PAGE_SORTED)
    assert answer["event"] == sort.pk
    assert sort.extra_data["old_value"] == [line.pk for line in lines]
    assert audit.sentence(sort) == (
        "bob sorted the lines of page 1 of 'Letter to Mr Hale' by position (2 lines moved)"
    )

    again = client.post(reverse("review_sort_page", args=[letters.pk, page.pk])).json()
    assert (again["event"], again["moved"]) == (None, 0)

    undo = reverse("review_undo_sort", args=[letters.pk, page.pk])
    assert client.post(undo, {"event": sort.pk}).json()["lines"] == [line.pk for line in lines]
    assert texts(page) == start
    assert CollectionEvent.objects.filter(event_type=T.PAGE_SORT_UNDONE).count() == 1
    # Once undone, the order is no longer the sort's: a second undo leaves it.
    assert client.post(undo, {"event": sort.pk}).status_code == 409
    assert texts(page) == start


def test_a_sort_is_not_undone_over_a_change_since(client, bob, letters, page, lines, start):
    Line.objects.filter(pk=lines[3].pk).update(bbox=[10, 0, 500, 8])
    client.force_login(bob)
    sorted_ = client.post(reverse("review_sort_page", args=[letters.pk, page.pk])).json()
    actions.do_reorder_line(lines[2], bob, expected_version=1, position=1)
    after_move = texts(page)
    undo = reverse("review_undo_sort", args=[letters.pk, page.pk])
    answer = client.post(undo, {"event": sorted_["event"]})
    assert answer.status_code == 409
    assert "changed since the sort" in answer.json()["error"]
    assert texts(page) == after_move
    # An event that is no sort of this page is none to undo.
    move = CollectionEvent.objects.get(event_type=T.LINE_REORDERED)
    assert client.post(undo, {"event": move.pk}).status_code == 400
    assert client.post(undo, {"event": "x"}).status_code == 400


# --- The API ------------------------------------------------------------------------------


def test_the_api_moves_a_line_and_sorts_a_page(client, bob, page, lines, start):
    headers = auth(bob)
    url = reverse("api_line_reorder", args=[lines[0].pk])
    body = client.post(
        url,
        {"expected_version": 1, "position": 3},
        content_type="application/json",
        headers=headers,
    )
    assert body.status_code == 200
    assert [line["text"] for line in body.json()["lines"]] == [start[i] for i in (1, 2, 0, 3)]
    assert [line["order"] for line in body.json()["lines"]] == [0, 1, 2, 3]

    stale = client.post(
        reverse("api_line_reorder", args=[lines[1].pk]),
        {"expected_version": 7, "position": 1},
        content_type="application/json",
        headers=headers,
    )
    assert stale.status_code == 409
    for bad in ({"expected_version": 1, "position": 9}, {"expected_version": 1, "position": "a"}):
        refused = client.post(url, bad, content_type="application/json", headers=headers)
        assert refused.status_code == 400

    sorted_ = client.post(reverse("api_page_sort", args=[page.pk]), headers=headers).json()
    assert sorted_["moved"] == 3
    assert [line["text"] for line in sorted_["page"]["lines"]] == start
    undo = client.post(
        reverse("api_page_sort_undo", args=[page.pk]),
        {"event": sorted_["event"]},
        content_type="application/json",
        headers=headers,
    )
    assert [line["text"] for line in undo.json()["lines"]] == [start[i] for i in (1, 2, 0, 3)]
    again = client.post(
        reverse("api_page_sort_undo", args=[page.pk]),
        {"event": sorted_["event"]},
        content_type="application/json",
        headers=headers,
    )
    assert again.status_code == 409
