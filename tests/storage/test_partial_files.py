"""What a write killed mid-way leaves in storage: on the local disk a partial file, named so,
never a truncated file under the name it was written for; on S3 a multipart upload never
completed; in a host's model cache a download that stopped. The workers' sweep removes what is
older than OCRREVIEW_PARTIAL_FILES_SECONDS, and leaves what may still be being written."""

import fcntl
import io
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from ocrreview import storage
from tests.workers import ROOT, worker_env

# A process that stores a file and is killed (SIGKILL, as the kernel kills for memory) when
# half of it is written.
KILLED_MID_WRITE = """
import os, signal, django
django.setup()
from django.core.files import File
from django.core.files.storage import default_storage

class Dying(File):
    def chunks(self, chunk_size=None):
        yield b"x" * 65536
        os.kill(os.getpid(), signal.SIGKILL)

default_storage.save("exports/killed.zip", Dying(None, "killed.zip"))
"""
DAY = 86400


def partial_files(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{storage.PARTIAL_SUFFIX}"))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_write_killed_mid_way_leaves_a_partial_file_that_the_sweep_removes_once_old(
    settings, tmp_path, caplog
):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    root = Path(settings.MEDIA_ROOT)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE],
        cwd=ROOT,
        env=worker_env(PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="ocrreview.settings"),
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()
    assert not default_storage.exists("exports/killed.zip"), "half a file under its name"
    [old] = partial_files(root)
    assert old.stat().st_size == 65536
    age(old, DAY + 60)

    # Written in full, and one being written now.
    finished = tmp_path / "export.zip"
    finished.write_bytes(b"whole")
    storage.put_file("exports/whole.zip", finished)
    storage.put_bytes("cache/page.png", b"png bytes")
    fresh = root / storage.PARTIAL_FOLDER / f"being-written.zip.abc123{storage.PARTIAL_SUFFIX}"
    fresh.write_bytes(b"half")
    # A file stored under a name that looks partial is somebody's file (an upload's own name).
    users = default_storage.save("uploads/x/.thesis.partial", io.BytesIO(b"%PDF"))
    age(Path(default_storage.path(users)), DAY + 60)

    with caplog.at_level(logging.WARNING, logger="ocrreview.storage"):
        storage.sweep_partial_files()
    assert partial_files(root) == sorted([fresh, Path(default_storage.path(users))])
    assert default_storage.open(users).read() == b"%PDF"
    assert default_storage.open("exports/whole.zip").read() == b"whole"
    assert default_storage.open("cache/page.png").read() == b"png bytes"
    # A cache entry others read (a web server under another user) is as readable as a save.
    assert Path(default_storage.path("cache/page.png")).stat().st_mode & 0o777 == 0o644
    assert str(old.relative_to(root)) in caplog.text and "65536 bytes" in caplog.text


def test_a_model_download_that_stopped_is_removed_unless_it_goes_on(settings, tmp_path, caplog):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    cache = tmp_path / "models" / "cache"
    stopped, going_on, whole = cache / "a.partial", cache / "b.partial", cache / "c"
    for folder in (stopped, going_on, whole):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "weights.bin").write_bytes(b"w" * 1024)
    with (cache / "b.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as _fetched_model holds it while it downloads
        with caplog.at_level(logging.WARNING, logger="ocrreview.storage"):
            storage.sweep_partial_files()
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == ["b.partial", "c"]
    assert "a.partial" in caplog.text


@pytest.mark.django_db
def test_an_upload_to_s3_that_never_finished_is_aborted_once_old(
    s3_storage, settings, tmp_path, caplog
):
    settings.OCRREVIEW_MODELS_DIR = tmp_path / "models"
    client = default_storage.connection.meta.client
    bucket = default_storage.bucket_name

    def begin(key: str) -> dict:
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1024
        )
        [listed] = [
            u
            for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            if u["UploadId"] == upload["UploadId"]
        ]
        return listed

    upload = begin("models/1/model.safetensors")
    default_storage.save("models/2/config.json", io.BytesIO(b"{}"))
    # moto dates every upload alike (2010-11-10), so the age is told by the time it is
    # compared with: begun at that time, it may still be going on.
    storage.abort_multipart_uploads(upload["Initiated"])
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    with caplog.at_level(logging.WARNING, logger="ocrreview.storage"):
        storage.abort_multipart_uploads(upload["Initiated"] + timedelta(seconds=1))
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert "models/1/model.safetensors" in caplog.text
    assert default_storage.open("models/2/config.json").read() == b"{}"
