"""A training run's checkpoints in S3 storage (moto's server over HTTP), as two training hosts
see them: what one keeps, the other fetches. The killed-worker test in test_dead_worker runs
the same through real workers."""

from pathlib import Path

import torch
from django.conf import settings

from ocrreview.training import checkpoints

RUN = 7
CLAIM, SUCCESSOR = "claim-a", "claim-b"


def trained_to(out_dir: Path, step: int, best_step: int | None = None) -> Path:
    """out_dir as recognition.training.train leaves it at `step`."""
    checkpoint = out_dir / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "model.safetensors").write_bytes(f"weights of step {step}".encode())
    torch.save({"state": {"step": step}, "optimizer": {}}, checkpoint / "trainer_state.pt")
    if best_step is not None:
        (out_dir / "best").mkdir(exist_ok=True)
        (out_dir / "best" / "model.safetensors").write_bytes(f"best, step {best_step}".encode())
    return out_dir


def stored_keys(s3) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket=settings.OCRREVIEW_S3_BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_a_host_without_the_run_fetches_its_last_checkpoint_and_best_model(s3_storage, tmp_path):
    host_a = tmp_path / "a"
    checkpoints.keep(RUN, CLAIM, trained_to(host_a, 10), 10)
    checkpoints.keep(RUN, CLAIM, trained_to(host_a, 20, best_step=20), 20)
    assert not [key for key in stored_keys(s3_storage) if "step-000000010" in key]

    host_b = tmp_path / "b"
    assert checkpoints.fetch(RUN, host_b) == 20
    assert (host_b / "checkpoint" / "model.safetensors").read_text() == "weights of step 20"
    assert (host_b / "best" / "model.safetensors").read_text() == "best, step 20"
    assert not (host_b / "fetched").exists()


def test_a_step_whose_upload_was_cut_short_is_passed_over(s3_storage, tmp_path):
    host_a = tmp_path / "a"
    checkpoints.keep(RUN, CLAIM, trained_to(host_a, 20), 20)
    # Step 30's files without the SHA256SUMS written last: its worker was killed mid-upload.
    s3 = s3_storage.client()
    for name in ("model.safetensors", "trainer_state.pt"):
        key = f"training-runs/run-{RUN}/{CLAIM}/step-000000030/checkpoint/{name}"
        s3.put_object(Bucket=settings.OCRREVIEW_S3_BUCKET, Key=key, Body=b"half")

    assert checkpoints.fetch(RUN, tmp_path / "b") == 20
    assert (tmp_path / "b" / "checkpoint" / "model.safetensors").read_text() == "weights of step 20"


def test_a_local_checkpoint_as_new_as_the_stored_one_is_kept_and_an_older_one_replaced(
    s3_storage, tmp_path
):
    checkpoints.keep(RUN, SUCCESSOR, trained_to(tmp_path / "b", 40, best_step=30), 40)

    current = trained_to(tmp_path / "current", 40)
    assert checkpoints.fetch(RUN, current) is None
    # The host the run began on, after its successor on another host went further.
    stale = trained_to(tmp_path / "a", 20)
    (stale / "best.old").mkdir()  # left by a save interrupted there
    assert checkpoints.fetch(RUN, stale) == 40
    assert (stale / "checkpoint" / "model.safetensors").read_text() == "weights of step 40"
    assert (stale / "best" / "model.safetensors").read_text() == "best, step 30"
    assert not (stale / "best.old").exists()


def test_a_worker_keeps_and_deletes_under_its_own_claim_only(s3_storage, tmp_path):
    """A worker given up for dead, finishing an upload after its successor took the run over,
    leaves the successor's checkpoint alone."""
    checkpoints.keep(RUN, SUCCESSOR, trained_to(tmp_path / "b", 30), 30)
    checkpoints.keep(RUN, CLAIM, trained_to(tmp_path / "a", 20), 20)
    checkpoints.keep(RUN, CLAIM, trained_to(tmp_path / "a", 25), 25)
    steps = {key.split("/")[3] for key in stored_keys(s3_storage) if SUCCESSOR in key}
    assert steps == {"step-000000030"}
    assert checkpoints.fetch(RUN, tmp_path / "c") == 30

    checkpoints.discard(RUN)
    assert stored_keys(s3_storage) == []


def test_on_the_local_disk_nothing_is_stored(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    checkpoints.keep(RUN, CLAIM, trained_to(tmp_path / "a", 10), 10)
    assert not (tmp_path / "media").exists()
    assert checkpoints.fetch(RUN, tmp_path / "b") is None
