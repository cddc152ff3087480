"""A training run's last checkpoint, kept in storage as well as on its worker's disk when
storage is an S3 bucket: training workers then need not share a disk, and a run whose worker
died is resumed by a worker on another host from that checkpoint rather than from step 0.
On the local disk (one host, or a shared volume) the worker's own folder is enough.

Stored as `training-runs/run-<id>/<claim>/step-<step>/{checkpoint,best}`: the best model so
far travels with the checkpoint, whose saved state names it. Each worker writes under its own
claim only, so a worker given up for dead that wakes up mid-upload cannot touch what its
successor resumes from."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.core.files.storage import default_storage

from ocrreview import storage

logger = logging.getLogger(__name__)
STEP = "step-"
# The folders recognition.training.train keeps under its out_dir.
PARTS = ("checkpoint", "best")


def _run_prefix(run_id: int) -> str:
    return f"training-runs/run-{run_id}"


def _step_prefix(run_id: int, claim: str, step: int) -> str:
    return f"{_run_prefix(run_id)}/{claim}/{STEP}{step:09d}"


def keep(run_id: int, claim: str, out_dir: Path, step: int) -> None:
    """Store out_dir's checkpoint and best model under this claim and step, then delete the
    claim's other steps: a worker killed during the upload leaves the step before it whole
    (the checkpoint's SHA256SUMS, written last, says a step is whole)."""
    if storage.is_local():
        return
    prefix = _step_prefix(run_id, claim, step)
    if default_storage.exists(f"{prefix}/checkpoint/{storage.CHECKSUMS}"):
        return  # the same step saved again as training ends
    if (out_dir / "best").is_dir():
        storage.put_directory(f"{prefix}/best", out_dir / "best")
    storage.put_directory(f"{prefix}/checkpoint", out_dir / "checkpoint")
    for older in _steps(run_id, claim):
        if older != step:
            storage.delete_directory(_step_prefix(run_id, claim, older))


def fetch(run_id: int, out_dir: Path) -> int | None:
    """Put the run's newest whole stored step in out_dir when it is newer than the checkpoint
    this worker has (none, when the run began on another host); returns its step, or None
    when the local checkpoint serves. A step that cannot be read is passed over for the one
    before it."""
    if storage.is_local():
        return None
    local = _local_step(out_dir / "checkpoint")
    for claim, step in sorted(_stored(run_id), key=lambda stored: stored[1], reverse=True):
        if local is not None and step <= local:
            return None
        try:
            _replace_with_stored(_step_prefix(run_id, claim, step), out_dir)
        except Exception:
            logger.exception("Training run %s: stored checkpoint of step %s not read", run_id, step)
            continue
        return step
    return None


def discard(run_id: int) -> None:
    if not storage.is_local():
        storage.delete_directory(_run_prefix(run_id))


def _stored(run_id: int) -> list[tuple[str, int]]:
    claims, _ = default_storage.listdir(_run_prefix(run_id))
    return [(claim, step) for claim in claims for step in _steps(run_id, claim)]


def _steps(run_id: int, claim: str) -> list[int]:
    folders, _ = default_storage.listdir(f"{_run_prefix(run_id)}/{claim}")
    return [int(folder.removeprefix(STEP)) for folder in folders if folder.startswith(STEP)]


def _local_step(checkpoint: Path) -> int | None:
    state = checkpoint / "trainer_state.pt"
    if not state.exists():
        return None
    import torch  # in the training worker only, where training has loaded it already

    # Memory-mapped: the step without reading the optimizer's state into memory.
    return int(torch.load(state, mmap=True, weights_only=False)["state"]["step"])


def _replace_with_stored(prefix: str, out_dir: Path) -> None:
    """Download into a staging folder first: what this worker has stays until the stored step
    has arrived whole."""
    staging = out_dir / "fetched"
    shutil.rmtree(staging, ignore_errors=True)
    storage.get_directory(f"{prefix}/checkpoint", staging / "checkpoint")
    if default_storage.exists(f"{prefix}/best/{storage.CHECKSUMS}"):
        storage.get_directory(f"{prefix}/best", staging / "best")
    for part in PARTS:
        # Leftovers of an interrupted save here would otherwise be taken for this run's.
        for stale in (part, f"{part}.old", f"{part}.tmp"):
            shutil.rmtree(out_dir / stale, ignore_errors=True)
        if (staging / part).exists():
            (staging / part).rename(out_dir / part)
    shutil.rmtree(staging)
