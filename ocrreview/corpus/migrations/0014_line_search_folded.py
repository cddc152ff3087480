"""The vocabulary's words folded (accents dropped, long s made s), for searches that look up
the words a query's words are once folded (ocrreview/review/search.py, corpus.SearchWord).

Built concurrently, beside the triggers that add every new word of every line saved: an index
built in a transaction would hold those saves for as long as it takes. Its expression uses
built-in functions only, all IMMUTABLE (normalize() is since PostgreSQL 13), so it builds on
the embedded PostgreSQL too, which has no unaccent. A build that fails leaves an invalid
index, which lookups do not use: drop it and migrate again."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Lower

import ocrreview.corpus.models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus", "0013_collection_language"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="searchword",
            index=models.Index(
                models.F("collection"),
                Lower(ocrreview.corpus.models.Folded("word")),
                name="search_word_folded",
            ),
        ),
    ]
