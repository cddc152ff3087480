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


def saves_at_once(location: Path, rounds: int = ROUNDS) -> list[tuple[str, bytes]]:
    """Every (name, bytes) that PROCESSES processes saved, each round all at once."""
    # Spawned: a child forked from the test process, whose other threads (a test server's,
    # a pool's) may hold a lock at the fork, can wait on it for ever (three did, in a full
    # run). The barrier makes them race in save() all the same.
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES, timeout=60), context.Queue()
    writers = [
        context.Process(target=save_rounds, args=(str(location), writer, start, results, rounds))
        for writer in range(PROCESSES)
    ]
    for process in writers:
        process.start()
    batches = [results.get(timeout=600) for _ in writers]
    for process in writers:
        process.join(timeout=60)
    assert all(isinstance(batch, list) for batch in batches), batches
    return [pair for batch in batches for pair in batch]


def assert_each_save_kept(location: Path, saved: list[tuple[str, bytes]]) -> None:
    names = [name for name, _ in saved]
    lost = len(names) - len(set(names))
    assert lost == 0, f"{lost} of {len(names)} saves were replaced by another of the same name"
    for name, content in saved:
        assert (location / name).read_bytes() == content, name
    assert sorted(p.name for p in (location / "race").iterdir()) == sorted(
        Path(name).name for name in names
    )


def test_saves_of_one_name_at_once_each_keep_a_name_of_their_own(tmp_path):
    saved = saves_at_once(tmp_path)
    assert len(saved) == PROCESSES * ROUNDS
    assert_each_save_kept(tmp_path, saved)
    assert not os.listdir(tmp_path / PARTIAL_FOLDER)
