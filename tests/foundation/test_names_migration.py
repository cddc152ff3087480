"""corpus 0031 cleans the names of collections, documents, model versions and API tokens stored
before names were cleaned where they are entered."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ocrreview.corpus.names import entered_name

BATCH = importlib.import_module("ocrreview.corpus.migrations.0031_names_cleaned").BATCH

BEFORE = ("corpus", "0030_invitation_not_queued_swept")
AFTER = ("corpus", "0031_names_cleaned")


def migrate(to):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([to])
    return executor.loader.project_state([to]).apps


@pytest.mark.django_db(transaction=True)
def test_stored_names_are_cleaned_as_an_entered_name_is(latest_migrations_after):
    old = migrate(BEFORE)
    collections = old.get_model("corpus", "Collection").objects
    letters = collections.create(name="Letters")
    twin = collections.create(name="Let\u202eters")  # shown as "Letsret"; "Letters" is taken
    bare = collections.create(name="\x07\u202e")
    typed = collections.create(name="Diaries\u202e 1850\x07\t1870")
    Document = old.get_model("corpus", "Document")
    titles = ["Letter to\u202e Anna gpj.exe", "\r\n", "Clean", ""]
    documents = [Document.objects.create(collection=letters, title=t) for t in titles]
    # More than a batch of titles to clean: none is left behind.
    Document.objects.bulk_create(
        Document(collection=letters, title=f"Akte\t{i}") for i in range(BATCH + 1)
    )
    versions = old.get_model("corpus", "ModelVersion").objects
    version = versions.create(name="tiny\x1f\u2067", source="/models/tiny")
    user = old.get_model("auth", "User").objects.create(username="dave")
    token = old.get_model("corpus", "ApiToken").objects.create(
        user=user, name="note\u202ebook", prefix="abc", key_hash="0" * 64
    )

    new = migrate(AFTER)
    Collection = new.get_model("corpus", "Collection")
    names = dict(Collection.objects.values_list("pk", "name"))
    assert names == {
        letters.pk: "Letters",
        twin.pk: f"Letters ({twin.pk})",
        bare.pk: f"Collection {bare.pk}",
        typed.pk: "Diaries 1850 1870",
    }
    assert names[typed.pk] == entered_name(typed.name)
    Document = new.get_model("corpus", "Document")
    stored = [Document.objects.get(pk=d.pk).title for d in documents]
    assert stored == ["Letter to Anna gpj.exe", f"Document {documents[1].pk}", "Clean", ""]
    akten = set(Document.objects.filter(title__startswith="Akte").values_list("title", flat=True))
    assert akten == {f"Akte {i}" for i in range(BATCH + 1)}
    assert new.get_model("corpus", "ModelVersion").objects.get(pk=version.pk).name == "tiny"
    assert new.get_model("corpus", "ApiToken").objects.get(pk=token.pk).name == "notebook"

    # Backwards it does nothing, and forwards again nothing more.
    migrate(BEFORE)
    migrate(AFTER)
    assert dict(Collection.objects.values_list("pk", "name")) == names


@pytest.mark.django_db(transaction=True)
def test_a_name_with_its_id_taken_too_takes_the_next_free_one(latest_migrations_after):
    old = migrate(BEFORE)
    collections = old.get_model("corpus", "Collection").objects
    collections.create(name="Letters")
    twin = collections.create(name="Let\u202eters")
    collections.create(name=f"Letters ({twin.pk})")
    collections.create(name=f"Letters ({twin.pk}-2)")
    versions = old.get_model("corpus", "ModelVersion").objects
    versions.create(name="tiny", source="/models/tiny")
    tiny = versions.create(name="ti\u202eny", source="/models/tiny2")
    versions.create(name=f"tiny ({tiny.pk})", source="/models/tiny3")

    new = migrate(AFTER)
    Collection = new.get_model("corpus", "Collection")
    assert Collection.objects.get(pk=twin.pk).name == f"Letters ({twin.pk}-3)"
    ModelVersion = new.get_model("corpus", "ModelVersion")
    assert ModelVersion.objects.get(pk=tiny.pk).name == f"tiny ({tiny.pk}-2)"
