"""Migrations that the version before cannot run beside (compose's `migrate` runs beside its
web and workers): those that lock a large table (lines, and the recognition and review tables)
for as long as they take, on which its every save would wait, and those that add a column its
inserts leave out. The check sees operations and SQL; what a RunPython
does, or a column type change, is for the migration's author to judge."""

import re

import pytest
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED, GeneratedField

APPS = ("corpus", "transcription", "review", "training")
# A review table of one row per undo of many lines is no large one.
SMALL_TABLES = ("savesundo",)
LARGE_TABLE = (
    r'"?(?:corpus_line|corpus_searchword|(?:transcription|review)_(?!(?:'
    + "|".join(SMALL_TABLES)
    + r")\b)\w+)\b"
)
UPDATE = re.compile(rf"\bUPDATE\s+(?:ONLY\s+)?{LARGE_TABLE}", re.IGNORECASE)
INDEX = re.compile(
    rf"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)[^;]*?\bON\s+(?:ONLY\s+)?{LARGE_TABLE}",
    re.IGNORECASE,
)

# Written before this check: an upgrade that brings one stops the app's services while it runs
# (README, "Upgrading").
LOCKING = {
    ("corpus", "0005_line_search"),
    ("corpus", "0007_line_search_vector"),
    ("transcription", "0003_request_queued_at"),
}


def is_large(app_label: str, model: str) -> bool:
    # Lines, their vocabulary (every word of every line), readings and corrections.
    return (app_label, model) in (("corpus", "line"), ("corpus", "searchword")) or (
        app_label in ("transcription", "review") and model not in SMALL_TABLES
    )


def sql_of(op: migrations.RunSQL) -> str:
    """The statements as one text: str() of a list escapes its line breaks."""
    statements = [op.sql] if isinstance(op.sql, str) else op.sql
    return ";\n".join(s if isinstance(s, str) else s[0] for s in statements)


def locking_operations(migration: migrations.Migration) -> list[str]:
    """What in `migration` holds a lock on a large table while it rewrites, updates or indexes
    all of it. An initial migration's tables, and those it creates, are empty."""
    if migration.initial:
        return []
    created = {
        op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)
    }
    found = []
    for op in migration.operations:
        model = getattr(op, "model_name_lower", None)
        if model is not None and (model in created or not is_large(migration.app_label, model)):
            continue
        if isinstance(op, migrations.AddIndex) and not isinstance(op, AddIndexConcurrently):
            found.append(f"AddIndex {op.index.name}: use AddIndexConcurrently")
        elif isinstance(op, migrations.AddField) and getattr(op.field, "db_persist", False):
            found.append(f"AddField {op.name}: a stored generated column rewrites the table")
        elif isinstance(op, migrations.AddField | migrations.AlterField) and (
            op.field.db_index or op.field.unique
        ):
            found.append(f"{type(op).__name__} {op.name}: indexed in the migration's transaction")
        elif isinstance(op, migrations.AddConstraint):
            found.append(
                f"AddConstraint {op.constraint.name}: built or checked over the whole table "
                "under its lock (add it NOT VALID, or its index concurrently, in RunSQL)"
            )
        elif isinstance(op, migrations.RunSQL) and (
            UPDATE.search(sql_of(op)) or INDEX.search(sql_of(op))
        ):
            found.append("RunSQL: an UPDATE, or an index not built CONCURRENTLY")
    return found


def test_no_new_migration_locks_a_large_table_while_it_runs():
    loader = MigrationLoader(None, ignore_no_migrations=True, load=False)
    loader.load_disk()
    ours = {key: m for key, m in loader.disk_migrations.items() if key[0] in APPS}
    locking = {key: found for key, m in ours.items() if (found := locking_operations(m))}
    assert {key: found for key, found in locking.items() if key not in LOCKING} == {}
    assert set(locking) == LOCKING  # an entry that no longer locks anything goes


def migration(*operations) -> migrations.Migration:
    return type("Migration", (migrations.Migration,), {"operations": list(operations)})(
        "0099_new", "corpus"
    )


@pytest.mark.parametrize(
    "operation",
    [
        migrations.AddIndex("line", models.Index(fields=["text"], name="line_text")),
        migrations.AddField("line", "flag", models.BooleanField(default=False, db_index=True)),
        migrations.RunSQL("UPDATE transcription_hypothesis SET score = 0"),
        migrations.RunSQL('CREATE INDEX x ON "review_correction" (created_at)'),
        migrations.RunSQL(["SELECT 1", "UPDATE\n corpus_line SET text = ''"]),
        migrations.RunSQL("UPDATE review_savesundo_archive SET n = 0"),
        migrations.AlterField("line", "order", models.PositiveIntegerField(db_index=True)),
        migrations.AddConstraint(
            "line", models.UniqueConstraint(fields=["page", "order"], name="one_order")
        ),
        migrations.AddIndex("searchword", models.Index(fields=["word"], name="word")),
    ],
)
def test_the_check_finds_a_lock_on_a_large_table(operation):
    assert locking_operations(migration(operation))


@pytest.mark.parametrize(
    "operation",
    [
        AddIndexConcurrently("line", GinIndex(fields=["text"], name="line_text")),
        migrations.AddIndex("document", models.Index(fields=["title"], name="document_title")),
        migrations.RunSQL("CREATE INDEX CONCURRENTLY x ON corpus_line (text)"),
        migrations.RunSQL("UPDATE corpus_document SET title = ''"),
        migrations.RunSQL("UPDATE review_savesundo SET queued_at = created_at"),
    ],
)
def test_the_check_lets_pass_what_locks_no_large_table(operation):
    assert not locking_operations(migration(operation))


# Written before this check: each added a column the version before never sets.
UNSET_BY_THE_VERSION_BEFORE = {
    ("corpus", "0004_line_human_text"),
    ("corpus", "0006_iiif_import"),
    ("corpus", "0008_iiif_fetch_claim"),
    ("corpus", "0011_document_source_sha256"),
    ("corpus", "0013_collection_language"),
    ("corpus", "0015_api_token_form_nonce"),
    ("corpus", "0023_page_source_name"),
    ("training", "0003_training_run_heartbeat"),
    ("training", "0005_stalls"),
    ("training", "0010_provisional_evaluation_split"),
    ("transcription", "0003_request_queued_at"),
}


def columns_the_version_before_cannot_insert(migration: migrations.Migration) -> list[str]:
    """Columns `migration` adds NOT NULL with no database default. Django's `default` lives in
    Python only (the column's default is dropped once it is added), so every row the version
    before inserts while `migrate` runs beside it fails, and with it the request or task."""
    if migration.initial:
        return []
    created = {
        op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)
    }
    return [
        f"AddField {op.model_name}.{op.name}: give it null=True or a db_default"
        for op in migration.operations
        if isinstance(op, migrations.AddField)
        and op.model_name_lower not in created
        and not (op.field.many_to_many or op.field.null or isinstance(op.field, GeneratedField))
        and op.field.db_default is NOT_PROVIDED
    ]


def test_no_new_migration_adds_a_column_the_version_before_cannot_insert():
    loader = MigrationLoader(None, ignore_no_migrations=True, load=False)
    loader.load_disk()
    ours = {key: m for key, m in loader.disk_migrations.items() if key[0] in APPS}
    found = {
        key: columns
        for key, m in ours.items()
        if (columns := columns_the_version_before_cannot_insert(m))
    }
    assert {
        key: columns for key, columns in found.items() if key not in UNSET_BY_THE_VERSION_BEFORE
    } == {}
    assert set(found) == UNSET_BY_THE_VERSION_BEFORE  # an entry that no longer adds one goes


@pytest.mark.parametrize(
    "field",
    [
        models.CharField(max_length=9, default=""),
        models.BooleanField(default=False),
        models.ForeignKey("corpus.Collection", on_delete=models.CASCADE),
    ],
    ids=["python-default", "boolean", "foreign-key"],
)
def test_the_check_finds_a_column_the_version_before_cannot_insert(field):
    found = columns_the_version_before_cannot_insert(
        migration(migrations.AddField("invitation", "site", field))
    )
    assert found == ["AddField invitation.site: give it null=True or a db_default"]


@pytest.mark.parametrize(
    "operation",
    [
        migrations.AddField("invitation", "site", models.CharField(max_length=9, db_default="")),
        migrations.AddField("invitation", "site", models.TextField(null=True)),
        migrations.AddField("invitation", "tags", models.ManyToManyField("corpus.Collection")),
    ],
    ids=["db-default", "nullable", "many-to-many"],
)
def test_the_check_lets_pass_a_column_the_version_before_can_leave_out(operation):
    assert columns_the_version_before_cannot_insert(migration(operation)) == []
