"""corpus 0028, transcription 0005 and training 0013 move ModelVersion from training down to
corpus: Django's record of it moves, its table and rows stay, and with its content type go the
admin's history of each version and the permissions given on versions."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("corpus", "0027_line_page_view_claim"),
    ("transcription", "0004_model_fallback"),
    ("training", "0012_record_older_split_freezes"),
]
AFTER = [
    ("corpus", "0028_model_version_from_training"),
    ("transcription", "0005_model_version_in_corpus"),
    ("training", "0013_model_version_to_corpus"),
]
# The apps of the content types, permissions and admin log: at their latest in each state.
DJANGO_APPS = ("contenttypes", "auth", "admin")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    django = [n for n in executor.loader.graph.leaf_nodes() if n[0] in DJANGO_APPS]
    return executor.loader.project_state(targets + django).apps


def references(apps, home: str) -> dict:
    """What names each version, read through the models as the migrations left them."""
    versions = apps.get_model(home, "ModelVersion").objects
    line = apps.get_model("corpus", "Line").objects.get()
    run = apps.get_model("training", "TrainingRun").objects.get()
    event = apps.get_model("training", "PromotionEvent").objects.get()
    reading = apps.get_model("transcription", "Hypothesis").objects.get()
    fallback = apps.get_model("transcription", "ModelFallback").objects.get()
    return {
        "versions": sorted(versions.values_list("pk", "name", "parent")),
        "collection": apps.get_model("corpus", "Collection").objects.get().model_version.name,
        "line": line.model_version.name,
        "run": (run.base_model.name, run.result_model.name),
        "event": (event.model_version.name, event.parent.name),
        "reading": reading.model_version.name,
        "fallback": (fallback.model_version.name, fallback.stand_in.name),
        "children": sorted(versions.get(name="base").children.values_list("name", flat=True)),
    }


@pytest.mark.django_db(transaction=True)
def test_versions_keep_their_rows_references_history_and_permissions(latest_migrations_after):
    old = migrate(BEFORE)
    content_types = old.get_model("contenttypes", "ContentType").objects
    content_type, _ = content_types.get_or_create(app_label="training", model="modelversion")
    user = old.get_model("auth", "User").objects.create(username="olga")
    versions = old.get_model("training", "ModelVersion").objects
    base = versions.create(name="base", source="/base")
    child = versions.create(name="child", source="/child", parent=base, created_by=user)
    collection = old.get_model("corpus", "Collection").objects.create(
        name="Letters", model_version=child
    )
    document = old.get_model("corpus", "Document").objects.create(
        collection=collection, title="Briefe"
    )
    page = old.get_model("corpus", "Page").objects.create(
        document=document, index=0, width=10, height=10
    )
    line = old.get_model("corpus", "Line").objects.create(
        collection=collection,
        document=document,
        page=page,
        order=0,
        bbox=[0, 0, 10, 10],
        model_version=child,
    )
    old.get_model("transcription", "Hypothesis").objects.create(
        line=line, model_version=child, rank=0, logprob=-1.0, confidence=0.5, share=1.0
    )
    old.get_model("transcription", "ModelFallback").objects.create(
        model_version=child,
        stand_in=base,
        reason="gone",
        since="2026-01-01T00:00Z",
        failed_at="2026-01-01T00:00Z",
    )
    dataset = old.get_model("training", "DatasetExport").objects.create(collection=collection)
    run = old.get_model("training", "TrainingRun").objects.create(
        base_model=base, dataset=dataset, result_model=child
    )
    old.get_model("training", "PromotionEvent").objects.create(
        model_version=child,
        parent=base,
        collection=collection,
        training_run=run,
        kind="promoted",
    )
    permission = old.get_model("auth", "Permission").objects.get_or_create(
        content_type=content_type,
        codename="change_modelversion",
        defaults={"name": "Can change model version"},
    )[0]
    old.get_model("auth", "Group").objects.create(name="curators").permissions.add(permission)
    old.get_model("admin", "LogEntry").objects.create(
        user=user,
        content_type=content_type,
        object_id=str(child.pk),
        object_repr="child",
        action_flag=2,
    )
    before = references(old, "training")

    new = migrate(AFTER)
    assert references(new, "corpus") == before
    moved = new.get_model("contenttypes", "ContentType").objects.get(pk=content_type.pk)
    assert (moved.app_label, moved.model) == ("corpus", "modelversion")
    assert new.get_model("admin", "LogEntry").objects.get().content_type_id == content_type.pk
    curators = new.get_model("auth", "Permission").objects.filter(group__name="curators")
    assert list(curators.values_list("content_type__app_label", "codename")) == [
        ("corpus", "change_modelversion")
    ]
    # Later versions take the keys after the kept ones.
    made = new.get_model("corpus", "ModelVersion").objects.create(name="next", source="/n")
    assert made.pk > child.pk

    old = migrate(BEFORE)
    assert references(old, "training")["line"] == "child"
    back = old.get_model("contenttypes", "ContentType").objects.get(pk=content_type.pk)
    assert back.app_label == "training"
