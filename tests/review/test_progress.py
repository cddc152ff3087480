"""Progress per collection and document, and per reviewer lines per hour and share changed."""

from django.urls import reverse

from ocrreview.review import actions


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
