"""Saves of one name at once on the local disk (LocalStorage): each file keeps a name of its
own, whole, and each save returns the name its own bytes are under; none replaces another, as
Django's check of the name and rename over it let two saves that both found it free do."""

import multiprocessing
import os
from pathlib import Path

from django.core.files.base import ContentFile

from ocrreview.storage import PARTIAL_FOLDER, LocalStorage

PROCESSES = 4
# Django's check and rename let two saves take one name in 2 of 4 runs of 2,000 rounds here;
# a lost file shows as two saves returning one name.
ROUNDS = 1000


def save_rounds(location: str, writer: int, start, results, rounds: int = ROUNDS) -> None:
    """In each round every process saves race/ROUND.bin at once, each its own bytes."""
    storage = LocalStorage(location=location)
    saved = []
    try:
        for round_ in range(rounds):
            content = f"{writer}:{round_}:".encode() * 128
            start.wait()
            saved.append((storage.save(f"race/{round_}.bin", ContentFile(content)), content))
    except Exception as exc:
        start.abort()  # the others stop at the next round rather than wait for this one
        results.put(f"writer {writer}: {exc!r}")
        return
    results.put(saved)


def test_saves_of_one_name_at_once_each_keep_a_name_of_their_own(tmp_path):
    # Spawned: a child forked from the test process, whose other threads (a test server's,
    # a pool's) may hold a lock at the fork, can wait on it for ever (three did, in a full
    # run). The barrier makes them race in save() all the same.
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES, timeout=60), context.Queue()
    writers = [
        context.Process(target=save_rounds, args=(str(tmp_path), writer, start, results))
        for writer in range(PROCESSES)
    ]
    for process in writers:
        process.start()
    batches = [results.get(timeout=600) for _ in writers]
    for process in writers:
        process.join(timeout=60)
    assert all(isinstance(batch, list) for batch in batches), batches
    saved = [pair for batch in batches for pair in batch]

    names = [name for name, _ in saved]
    assert len(set(names)) == len(names) == PROCESSES * ROUNDS
    for name, content in saved:
        assert (tmp_path / name).read_bytes() == content, name
    assert sorted(p.name for p in (tmp_path / "race").iterdir()) == sorted(
        Path(name).name for name in names
    )
    assert not os.listdir(tmp_path / PARTIAL_FOLDER)


def test_a_storage_that_may_overwrite_replaces_the_file_whole(tmp_path):
    storage = LocalStorage(location=str(tmp_path), allow_overwrite=True)
    assert storage.save("a.txt", ContentFile(b"first")) == "a.txt"
    assert storage.save("a.txt", ContentFile(b"second")) == "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == b"second"
    assert sorted(os.listdir(tmp_path)) == sorted([PARTIAL_FOLDER, "a.txt"])
    # Django's FILE_UPLOAD_PERMISSIONS, where the partial file was its owner's alone.
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
