"""A training run's last checkpoint, kept in storage as well as on its worker's disk when
storage is an S3 bucket: training workers then need not share a disk, and a run whose worker
died is resumed by a worker on another host from that checkpoint rather than from step 0.
On the local disk (one host, or a shared volume) the worker's own folder is enough."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.storage import default_storage

from ocrreview import storage

STEP_DIGITS = 9


def _prefix(run_id: int) -> str:
    return f"training-runs/run-{run_id}"


def keep(run_id: int, checkpoint: Path, step: int) -> None:
    """Store the checkpoint under a prefix of its step, then delete the others: a worker
    killed during the upload leaves the one before it whole."""
    if storage.is_local():
        return
    prefix = _prefix(run_id)
    storage.put_directory(f"{prefix}/step-{step:0{STEP_DIGITS}d}", checkpoint)
    for older in _steps(run_id):
        if older != step:
            storage.delete_directory(f"{prefix}/step-{older:0{STEP_DIGITS}d}")


def fetch(run_id: int, checkpoint: Path) -> int | None:
    """Put the run's last stored checkpoint at `checkpoint` when this worker has none (the
    run began on another host); returns its step, or None when there was nothing to fetch."""
    if storage.is_local() or (checkpoint / "trainer_state.pt").exists():
        return None
    for step in reversed(_steps(run_id)):
        try:
            shutil.rmtree(checkpoint, ignore_errors=True)
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            storage.get_directory(f"{_prefix(run_id)}/step-{step:0{STEP_DIGITS}d}", checkpoint)
        except FileNotFoundError:  # an upload its worker did not finish
            continue
        return step
    return None


def discard(run_id: int) -> None:
    if not storage.is_local():
        storage.delete_directory(_prefix(run_id))


def _steps(run_id: int) -> list[int]:
    folders, _ = default_storage.listdir(_prefix(run_id))
    return sorted(int(f.removeprefix("step-")) for f in folders if f.startswith("step-"))
