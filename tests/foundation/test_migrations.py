"""Migrations that lock a large table (lines, and the recognition and review tables) for as
long as they take: compose's `migrate` runs beside the web and workers of the version before,
whose every save would wait on the lock. The check sees operations and SQL; what a RunPython
does, or a column type change, is for the migration's author to judge."""

import re

import pytest
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

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
