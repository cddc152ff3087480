"""Admins see what a threshold would do before they save it."""

import pytest
from django.urls import reverse


def preview(client, collection, value):
    url = reverse("review_threshold_preview", args=[collection.pk])
    return client.get(url, {"confidence_threshold": value})


def test_the_preview_counts_lines_to_humans_and_expected_errors(client, alice, letters, lines):
    client.force_login(alice)
    response = preview(client, letters, "0.5")
    assert response.status_code == 200
    numbers = response.context["preview"]
    # Confidences 0.95, 0.40, 0.60, 0.20: two below 0.5, two accepted with 0.05 + 0.4 errors.
    assert (numbers.to_humans, numbers.auto_accepted) == (2, 2)
    assert numbers.expected_errors == pytest.approx(0.45)
    assert "<strong>2</strong> lines go to reviewers" in response.content.decode()


def test_the_preview_says_how_many_accepted_lines_have_uncalibrated_confidences(
    client, alice, letters, lines, model_version
):
    client.force_login(alice)
    response = preview(client, letters, "0.5")
    assert response.context["preview"].accepted_uncalibrated == 2
    assert "2 of the accepted lines were read by a model not yet calibrated" in (
        response.content.decode()
    )
    model_version.calibration = {"method": "platt-logit", "a": 1.0, "b": 0.0}
    model_version.save()
    response = preview(client, letters, "0.5")
    assert response.context["preview"].accepted_uncalibrated == 0
    assert "not yet calibrated" not in response.content.decode()


def test_reviewed_lines_are_left_out(client, alice, letters, lines):
    lines[1].status = "reviewed"
    lines[1].save()
    client.force_login(alice)
    numbers = preview(client, letters, "0.99").context["preview"]
    assert (numbers.to_humans, numbers.already_reviewed) == (3, 1)


def test_a_line_a_reviewer_has_open_counts_as_with_humans_whatever_its_confidence(
    client, alice, letters, lines
):
    lines[0].status = "in_review"  # confidence 0.95: applying 0.5 would not accept it
    lines[0].save()
    client.force_login(alice)
    numbers = preview(client, letters, "0.5").context["preview"]
    assert (numbers.to_humans, numbers.auto_accepted) == (3, 1)
    assert numbers.expected_errors == pytest.approx(0.4)


def test_the_settings_page_loads_the_preview(client, alice, letters):
    client.force_login(alice)
    page = client.get(reverse("collection_settings", args=[letters.pk])).content.decode()
    assert reverse("review_threshold_preview", args=[letters.pk]) in page


@pytest.mark.parametrize("value", ["1.5", "-1", "high", ""])
def test_a_bad_threshold_gets_a_message(client, alice, letters, value):
    client.force_login(alice)
    response = preview(client, letters, value)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()


def test_reviewers_cannot_preview_thresholds(client, bob, charlie, letters):
    client.force_login(bob)
    assert preview(client, letters, "0.5").status_code == 403
    client.force_login(charlie)
    assert preview(client, letters, "0.5").status_code == 404


def test_applying_a_threshold_routes_the_lines_already_read(client, alice, bob, letters, lines):
    from ocrreview.corpus.models import Line
    from ocrreview.review import actions

    held = actions.do_claim_next_line(letters, bob)  # the 0.20 line, held by bob
    client.force_login(alice)
    url = reverse("review_apply_threshold", args=[letters.pk])
    response = client.post(
        url, {"confidence_threshold": "0.5", "confirm_uncalibrated": "on"}, follow=True
    )
    assert "0 line(s) sent to reviewers, 1 accepted" in response.content.decode()
    statuses = dict(Line.objects.values_list("id", "status"))
    # 0.95 stays accepted, 0.40 stays to review, 0.60 is accepted, 0.20 stays with bob.
    assert statuses == {
        lines[0].pk: "auto_accepted",
        lines[1].pk: "needs_review",
        lines[2].pk: "auto_accepted",
        held: "in_review",
    }
    assert Line.objects.get(pk=lines[2].pk).version == 2
    letters.refresh_from_db()
    assert letters.confidence_threshold == 0.5
    response = client.post(
        url, {"confidence_threshold": "0.99", "confirm_uncalibrated": "on"}, follow=True
    )
    assert "2 line(s) sent to reviewers, 0 accepted" in response.content.decode()


def test_a_line_holding_someone_s_unsaved_fix_is_not_accepted(client, alice, bob, letters, lines):
    """Bob typed a fix into the 0.60 line and skipped it: the draft keeps his typing."""
    from ocrreview.corpus.models import Line
    from ocrreview.review import actions

    actions.do_save_draft(lines[2], bob, "a fix", base_version=lines[2].version)
    client.force_login(alice)
    numbers = preview(client, letters, "0.5").context["preview"]
    assert (numbers.to_humans, numbers.auto_accepted) == (3, 1)
    assert numbers.expected_errors == pytest.approx(0.05)
    url = reverse("review_apply_threshold", args=[letters.pk])
    response = client.post(
        url, {"confidence_threshold": "0.5", "confirm_uncalibrated": "on"}, follow=True
    )
    assert "0 line(s) sent to reviewers, 0 accepted" in response.content.decode()
    assert Line.objects.get(pk=lines[2].pk).status == "needs_review"


def test_applying_a_bad_threshold_changes_nothing(client, alice, letters, lines):
    client.force_login(alice)
    url = reverse("review_apply_threshold", args=[letters.pk])
    response = client.post(url, {"confidence_threshold": "2"}, follow=True)
    assert "Nothing was changed" in response.content.decode()
    letters.refresh_from_db()
    assert letters.confidence_threshold == 0.9


def test_reviewers_cannot_apply_a_threshold(client, bob, letters, lines):
    client.force_login(bob)
    url = reverse("review_apply_threshold", args=[letters.pk])
    assert client.post(url, {"confidence_threshold": "0.1"}).status_code == 403
    letters.refresh_from_db()
    assert letters.confidence_threshold == 0.9
