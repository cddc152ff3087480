"""training 0011 names the actors of the promotion events made before it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("training", "0010_provisional_evaluation_split")
AFTER = ("training", "0011_promotion_event_actor_label")


@pytest.mark.django_db(transaction=True)
def test_existing_overrides_keep_their_actors_name(latest_migrations_after):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    user = old.get_model("auth", "User").objects.create(username="olga")
    collection = old.get_model("corpus", "Collection").objects.create(name="Letters")
    version = old.get_model("training", "ModelVersion").objects.create(name="v", source="/v")
    events = old.get_model("training", "PromotionEvent").objects
    events.create(model_version=version, collection=collection, kind="overridden", actor=user)
    events.create(model_version=version, collection=collection, kind="rejected")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    new = executor.loader.project_state([AFTER]).apps
    labels = dict(
        new.get_model("training", "PromotionEvent").objects.values_list("kind", "actor_label")
    )
    assert labels == {"overridden": {"id": user.pk, "username": "olga"}, "rejected": None}
    new.get_model("auth", "User").objects.filter(pk=user.pk).delete()  # refused before
    assert new.get_model("training", "PromotionEvent").objects.filter(actor=None).count() == 2
