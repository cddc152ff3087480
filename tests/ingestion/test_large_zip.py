"""A ZIP of large scans is unpacked an entry at a time into temporary files and each file read
when its turn comes, so an upload takes about the memory of its largest file, not of all of
them: a 76 MB ZIP of twenty 95 MB scans once took a web worker from 1 to 3 GB while every
unpacked entry was held at once."""

import tempfile
import tracemalloc

import pytest

from ocrreview.corpus.ingestion import Upload, do_ingest
from ocrreview.corpus.models import Document, Page
from tests.factories import token_headers
from tests.ingestion import files
from tests.ingestion.test_api import upload

ENTRIES = 6
SIZE = (1600, 1200)  # some 5.8 MB of PNG each


@pytest.mark.django_db
def test_a_zip_of_large_scans_is_ingested_an_entry_at_a_time(letters, tmp_path, monkeypatch):
    archive = tmp_path / "scans.zip"
    total = files.zip_file(
        archive,
        [(f"box/scan-{n}.png", lambda n=n: files.noise_png(*SIZE, seed=n)) for n in range(ENTRIES)],
    )
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))

    # tracemalloc counts every bytes object Python allocates: an entry read whole counts whole.
    tracemalloc.start()
    try:
        results = do_ingest(letters, [Upload.from_path(archive)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert [(r.name, r.error) for r in results] == [
        (f"scans.zip/box/scan-{n}.png", "") for n in range(ENTRIES)
    ]
    assert Page.objects.filter(document__collection=letters).count() == ENTRIES
    assert {p.width for p in Page.objects.all()} == {SIZE[0]}
    assert Document.objects.filter(collection=letters).count() == ENTRIES
    # One entry's bytes and a copy at most; all of them at once would be over twice this.
    assert peak < total / 3, f"peak {peak / 2**20:.1f} MiB for {total / 2**20:.1f} MiB of entries"
    assert list(work.iterdir()) == []  # the temporary files are gone


@pytest.mark.django_db
def test_a_zip_spooled_to_disk_by_django_is_read_from_there(client, alice, letters, settings):
    """Above FILE_UPLOAD_MAX_MEMORY_SIZE Django keeps an upload in a temporary file, which the
    ZIP is then read from in place."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    archive = files.zip_of({"a.png": files.png(), "sub/b.jpg": files.jpeg()})
    response = upload(client, letters, token_headers(alice), ("box.zip", archive))
    assert response.status_code == 201, response.json()
    assert [(f["file"], f["error"]) for f in response.json()["files"]] == [
        ("box.zip/a.png", ""),
        ("box.zip/sub/b.jpg", ""),
    ]
    assert Page.objects.filter(document__collection=letters).count() == 2
