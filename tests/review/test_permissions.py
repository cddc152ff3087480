"""A reviewer sees only their collections (404 elsewhere) and no admin actions (403)."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Line
from ocrreview.review.models import Correction


@pytest.mark.parametrize(
    ("name", "method", "extra"),
    [
        ("review_line", "get", ()),
        ("review_save", "post", ()),
        ("review_skip", "post", ()),
        ("review_draft", "post", ()),
        ("review_lease", "post", ()),
        ("review_history", "get", ()),
        ("review_line_image", "get", ()),
        ("review_move", "post", ()),
        ("review_split", "post", ()),
        ("review_merge", "post", ()),
    ],
)
def test_lines_of_other_collections_are_not_found(
    client, charlie, letters, lines, name, method, extra
):
    client.force_login(charlie)
    url = reverse(name, args=[letters.pk, lines[1].pk, *extra])
    data = {"text": "hijacked", "expected_version": 1, "base_version": 1}
    response = getattr(client, method)(url, data if method == "post" else None)
    assert response.status_code == 404
    assert Line.objects.get(pk=lines[1].pk).text == "I recieved your"
    assert not Correction.objects.exists()


def test_a_line_is_only_reached_through_its_own_collection(client, charlie, ledgers, lines):
    """charlie may see Ledgers, but a Letters line under a Ledgers URL is still not found."""
    client.force_login(charlie)
    assert client.get(reverse("review_line", args=[ledgers.pk, lines[1].pk])).status_code == 404


def test_the_queue_of_another_collection_is_not_found(client, charlie, letters, lines):
    client.force_login(charlie)
    assert client.get(reverse("review_queue", args=[letters.pk])).status_code == 404
    assert not Line.objects.filter(claimed_by=charlie).exists()


def test_anonymous_users_are_sent_to_log_in(client, letters, lines):
    response = client.get(reverse("review_queue", args=[letters.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_staff_may_review_any_collection(client, staff, letters, lines):
    client.force_login(staff)
    assert client.get(reverse("review_queue", args=[letters.pk])).status_code == 302
