"""An admin who overrode the promotion gate can be deleted: the promotion log keeps their
name as it was then, as the collection's history keeps its actors."""

import pytest
from django.urls import reverse

from ocrreview.corpus.models import Membership
from ocrreview.training import actions
from ocrreview.training.models import PromotionEvent
from tests import factories


@pytest.fixture
def olga(letters):
    user = factories.make_user("olga")
    factories.add_member(user, letters, Membership.Role.ADMIN)
    return user


@pytest.mark.django_db
def test_the_override_names_its_admin_after_the_account_is_deleted(
    client, alice, olga, letters, finished_run
):
    event = actions.do_override_promotion(finished_run, actor=olga, reason="reads our hands")
    assert event.actor_label == {"id": olga.pk, "username": "olga"}
    olga.delete()  # PROTECT refused this

    event = PromotionEvent.objects.get(pk=event.pk)
    assert (event.actor, event.actor_name) == (None, "olga")
    gate = PromotionEvent.objects.get(training_run=finished_run, kind="rejected")
    assert (gate.actor_label, gate.actor_name) == (None, None)

    client.force_login(alice)
    page = client.get(reverse("training_run", args=[finished_run.pk])).content.decode()
    log = page[page.index("promotion-log") :]
    assert "<td>olga</td>" in log and "<td>the gate</td>" in log
    response = client.get(
        reverse("api_model_versions", args=[letters.pk]), headers=factories.token_headers(alice)
    )
    promotions = [
        promotion for version in response.json()["results"] for promotion in version["promotions"]
    ]
    assert {(p["kind"], p["actor"]) for p in promotions} >= {
        ("overridden", "olga"),
        ("rejected", None),
    }


@pytest.mark.django_db
def test_an_event_is_still_never_updated(olga, finished_run):
    event = actions.do_override_promotion(finished_run, actor=olga, reason="reads our hands")
    event.reason = "something else"
    with pytest.raises(ValueError, match="never updated"):
        event.save()
