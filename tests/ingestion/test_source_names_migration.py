"""corpus 0024 cleans the file names of pages stored before uploads cleaned them."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ocrreview.corpus.names import clean_name

BATCH = importlib.import_module("ocrreview.corpus.migrations.0024_page_source_name_cleaned").BATCH

BEFORE = ("corpus", "0023_page_source_name")
AFTER = ("corpus", "0024_page_source_name_cleaned")

NAMES = [
    "scan_\u202egpj.exe",  # shown as scan_exe.jpg
    "Brief\t1873.jpg",
    "Brief\r\n1874.jpg",
    "bell\x07\x7f\x9f.jpg",
    "\ufeffbom.jpg",
    "e\u0301te\u0301.jpg",  # macOS's decomposed été.jpg
    "clean.jpg",
    "",
]


@pytest.mark.django_db(transaction=True)
def test_stored_names_lose_their_control_characters_as_an_upload_s_do(latest_migrations_after):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    collection = old.get_model("corpus", "Collection").objects.create(name="Letters")
    document = old.get_model("corpus", "Document").objects.create(
        collection=collection, title="Briefe"
    )
    pages = old.get_model("corpus", "Page").objects
    for index, name in enumerate(NAMES):
        pages.create(document=document, index=index, width=10, height=10, source_name=name)
    # More than a batch of names to clean, in another document: none is left behind.
    many = old.get_model("corpus", "Document").objects.create(collection=collection, title="Akte")
    Page = old.get_model("corpus", "Page")
    pages.bulk_create(
        Page(document=many, index=i, width=10, height=10, source_name=f"{i}\t.jpg")
        for i in range(BATCH + 1)
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    new = executor.loader.project_state([AFTER]).apps
    cleaned = new.get_model("corpus", "Page").objects
    assert set(cleaned.filter(document__title="Akte").values_list("source_name", flat=True)) == {
        f"{i} .jpg" for i in range(BATCH + 1)
    }
    names = list(
        cleaned.filter(document__title="Briefe").order_by("index").values_list("source_name")
    )
    assert [name for (name,) in names] == [
        "scan_gpj.exe",
        "Brief 1873.jpg",
        "Brief 1874.jpg",
        "bell.jpg",
        "bom.jpg",
        "\u00e9t\u00e9.jpg",
        "clean.jpg",
        "",
    ]
    # As an upload's name is cleaned today: the migration's copy agrees with it.
    assert [name for (name,) in names] == [clean_name(name) for name in NAMES]

    # Backwards it does nothing, and forwards again nothing more.
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    again = cleaned.filter(document__title="Briefe").order_by("index").values_list("source_name")
    assert list(again) == names
