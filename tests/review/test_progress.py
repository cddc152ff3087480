"""Progress per collection and document, and per reviewer lines per hour and share changed."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ocrreview.review import actions, progress
from tests import factories


def test_progress_counts_lines_and_reviewer_speed(client, alice, bob, letters, lines):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=6000)
    actions.do_accept_line(lines[2], bob, expected_version=1, time_spent_ms=3000)
    actions.do_skip_line(lines[3], alice, time_spent_ms=1000)
    client.force_login(bob)
    response = client.get(reverse("review_progress", args=[letters.pk]))
    assert response.status_code == 200
    report = response.context["report"]
    c = report.counts
    assert (c["total"], c["auto_accepted"], c["needs_review"], c["reviewed"]) == (4, 1, 1, 2)
    (stats,) = report.reviewers
    assert (stats.username, stats.lines, stats.changed) == ("bob", 2, 1)
    assert stats.lines_per_hour == 2 / (9 / 3600)
    assert stats.changed_share == 0.5
    html = response.content.decode()
    assert "Letter to Mr Hale" in html and "<svg" in html and "800" in html


def test_only_coordinators_see_every_volunteers_speed(client, alice, bob, letters, lines):
    dave = factories.make_user("dave")
    factories.add_member(dave, letters)
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=6000)
    actions.do_accept_line(lines[2], dave, expected_version=1, time_spent_ms=3000)

    def shown_to(user) -> set[str]:
        client.force_login(user)
        response = client.get(reverse("review_progress", args=[letters.pk]))
        return {r.username for r in response.context["report"].reviewers}

    assert shown_to(alice) == {"bob", "dave"}
    assert shown_to(bob) == {"bob"}
    client.force_login(bob)
    assert "dave" not in client.get(reverse("review_progress", args=[letters.pk])).content.decode()


def test_progress_of_another_collection_is_not_found(client, charlie, letters):
    client.force_login(charlie)
    assert client.get(reverse("review_progress", args=[letters.pk])).status_code == 404


def test_a_reviewers_speed_counts_only_the_lines_the_editor_timed_each_once(
    client, bob, letters, lines
):
    """Saves from the page view or the API carry no time, and a line saved twice (or saved
    and reverted) is one line."""
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=6000)
    actions.do_save_line(lines[1], bob, "I received yours", expected_version=2, time_spent_ms=3000)
    actions.do_save_line(lines[2], bob, "from the page view", expected_version=1)
    client.force_login(bob)
    (stats,) = client.get(reverse("review_progress", args=[letters.pk])).context["report"].reviewers
    assert (stats.lines, stats.changed, stats.timed_lines) == (2, 2, 1)
    assert stats.lines_per_hour == 1 / (9 / 3600)


def test_lists_of_documents_and_collections_count_lines_in_queries_of_their_own(
    client, alice, letters, lines
):
    """A collection of 800 one-letter documents was 800 queries a page view."""
    client.force_login(alice)
    urls = [
        reverse("review_progress", args=[letters.pk]),
        reverse("collection_detail", args=[letters.pk]),
        reverse("home"),
    ]

    def queries() -> list[int]:
        counted = []
        for url in urls:
            with CaptureQueriesContext(connection) as context:
                assert client.get(url).status_code == 200
            counted.append(len(context.captured_queries))
        return counted

    before = queries()
    for number in range(10):
        document = factories.make_document(letters, title=f"Letter {number}")
        if number % 2:
            factories.make_line(factories.make_page(document), 0)
    assert queries() == before
    documents = client.get(urls[0]).context["report"].documents
    totals = {row.document.title: row.counts["total"] for row in documents}
    assert totals["Letter 0"] == 0 and totals["Letter 1"] == 1
    assert sum(totals.values()) == 4 + 5


def test_documents_come_a_page_at_a_time_and_last_work_is_read_for_the_page_alone(
    client, alice, bob, letters, monkeypatch
):
    """2,000 documents were 2,000 rows (each with its forms), and "last worked" read the whole
    collection's trail (1.7 s on 2.2 M corrections): now a page of documents, and the trails of
    its documents only, in as many queries however many documents follow."""
    monkeypatch.setattr(progress, "DOCUMENTS_PER_PAGE", 2)
    client.force_login(alice)
    url = reverse("review_progress", args=[letters.pk])

    def add(number: int):
        document = factories.make_document(letters, title=f"Letter {number}")
        line = factories.make_line(factories.make_page(document), 0, status="needs_review")
        actions.do_accept_line(line, bob, expected_version=line.version)

    def shown(query: dict) -> tuple[list[str], int, object]:
        with CaptureQueriesContext(connection) as context:
            response = client.get(url, query)
        titles = [row.document.title for row in response.context["report"].documents]
        return titles, len(context.captured_queries), response

    for number in range(3):
        add(number)
    first, queries, response = shown({})
    assert first == ["Letter 2", "Letter 1"]
    assert [row.last_by for row in response.context["report"].documents] == ["bob", "bob"]
    assert response.context["older_url"] == "?page=2" and response.context["newer_url"] is None
    assert response.context["report"].counts["total"] == 3  # the collection's, not the page's
    for number in range(3, 8):
        add(number)
    assert shown({})[1] == queries
    titles, _, response = shown({"page": 4, "assignee": ""})
    assert titles == ["Letter 1", "Letter 0"]
    assert response.context["newer_url"] == "?page=3&assignee="
    assert response.context["older_url"] is None
    assert shown({"page": "x"})[0] == ["Letter 7", "Letter 6"]  # a bad page is the first


def test_each_column_of_the_progress_tables_has_a_header_of_its_own(client, alice, bob, lines):
    """The reviewers' chart column repeated 'Lines per hour', the rate's own header; the
    documents' chart column had none. Screen readers read each cell with its header."""
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1, time_spent_ms=6000)
    client.force_login(alice)
    html = client.get(reverse("review_progress", args=[lines[1].collection_id])).content.decode()
    for table in ("progress-docs", "progress-reviewers"):
        head = re.search(rf'class="list {table}">\s*<thead>(.*?)</thead>', html, re.S)[1]
        headers = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)]
        assert all(headers) and len(set(headers)) == len(headers), headers
    assert "Lines per hour against the fastest reviewer (chart)" in html
