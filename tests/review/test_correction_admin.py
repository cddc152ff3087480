"""The Django admin's correction trail (/admin/review/correction/): staff narrow it to one
person's corrections, and to one collection's."""

import pytest
from django.urls import reverse

from ocrreview.review import actions
from ocrreview.review.models import Correction


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.org", "pw")


def listed(response) -> set[int]:
    return {c.pk for c in response.context["cl"].result_list}


def test_staff_filter_the_trail_by_person_and_by_collection(
    client, staff, bob, charlie, letters, lines, ledger_line
):
    actions.do_save_line(lines[1], bob, "I received your", expected_version=1)
    actions.do_save_line(ledger_line, charlie, "To cash.", expected_version=1)
    client.force_login(staff)
    url = reverse("admin:review_correction_changelist")
    page = client.get(url)
    assert page.status_code == 200
    filters = page.content.decode()
    assert f"?user__id__exact={bob.pk}" in filters
    assert f"?line__collection__id__exact={letters.pk}" in filters
    bobs = Correction.objects.get(user=bob).pk
    assert listed(client.get(url, {"user__id__exact": bob.pk})) == {bobs}
    assert listed(client.get(url, {"line__collection__id__exact": letters.pk})) == {bobs}
