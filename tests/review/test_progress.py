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
