"""Search reads stored search vectors, and finds similar words in a vocabulary.

Line.search_vector replaces the expression index of migration 0005, and corpus_searchword
holds each collection's words, kept by the statement triggers below (see SearchWord). The
trigram index moves from the lines' text to the vocabulary, where the server has pg_trgm:
comparing a query's words with tens of thousands of distinct words instead of rechecking
every line that shares a trigram with them is what makes "Babcok" fast on a million lines."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

LINE_TRIGRAM_INDEX = "line_text_trigram"
WORD_TRIGRAM_INDEX = "search_word_trigram"

ADD_WORDS = """
CREATE FUNCTION corpus_line_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO corpus_searchword (collection_id, word)
        SELECT DISTINCT n.collection_id, w.word
        FROM new_lines n, unnest(tsvector_to_array(n.search_vector)) AS w(word)
        WHERE NOT EXISTS (
            SELECT 1 FROM corpus_searchword s
            WHERE s.collection_id = n.collection_id AND s.word = w.word
        );
    ELSE
        INSERT INTO corpus_searchword (collection_id, word)
        SELECT DISTINCT n.collection_id, w.word
        FROM new_lines n
        JOIN old_lines o ON o.id = n.id AND o.text IS DISTINCT FROM n.text,
        unnest(tsvector_to_array(n.search_vector)) AS w(word)
        WHERE NOT EXISTS (
            SELECT 1 FROM corpus_searchword s
            WHERE s.collection_id = n.collection_id AND s.word = w.word
        );
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER corpus_line_words_inserted AFTER INSERT ON corpus_line
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION corpus_line_search_words();
CREATE TRIGGER corpus_line_words_updated AFTER UPDATE ON corpus_line
    REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION corpus_line_search_words();
INSERT INTO corpus_searchword (collection_id, word)
SELECT DISTINCT collection_id, unnest(tsvector_to_array(search_vector)) FROM corpus_line;
"""

DROP_WORDS = """
DROP TRIGGER corpus_line_words_inserted ON corpus_line;
DROP TRIGGER corpus_line_words_updated ON corpus_line;
DROP FUNCTION corpus_line_search_words();
"""


def _has_trigrams(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def move_trigram_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {LINE_TRIGRAM_INDEX}")
    if _has_trigrams(schema_editor):
        TrigramExtension().database_forwards("corpus", schema_editor, None, None)
        schema_editor.execute(
            f"CREATE INDEX {WORD_TRIGRAM_INDEX} ON corpus_searchword USING gin (word gin_trgm_ops)"
        )


def move_trigram_index_back(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {WORD_TRIGRAM_INDEX}")
    if _has_trigrams(schema_editor):
        schema_editor.execute(
            f"CREATE INDEX {LINE_TRIGRAM_INDEX} ON corpus_line USING gin (text gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0006_iiif_import"),
        ("training", "0003_training_run_heartbeat"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchWord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("word", models.TextField()),
            ],
        ),
        migrations.RemoveIndex(
            model_name="line",
            name="line_text_search",
        ),
        migrations.AddField(
            model_name="line",
            name="search_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector("text", config="simple"),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="line",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_vector"], name="line_search_vector"
            ),
        ),
        migrations.AddField(
            model_name="searchword",
            name="collection",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="corpus.collection",
            ),
        ),
        migrations.AddIndex(
            model_name="searchword",
            index=models.Index(fields=["collection", "word"], name="search_word_lookup"),
        ),
        migrations.RunSQL(ADD_WORDS, DROP_WORDS),
        migrations.RunPython(move_trigram_index, move_trigram_index_back),
    ]
