"""The management commands: export_dataset, train, import_dataset and demo_loop."""

import hashlib
import re

import pytest
from django.core.management import CommandError

from ocrreview.corpus.models import Collection
from ocrreview.training.models import DatasetExport, EvaluationSplit, TrainingRun
from tests.commands import run
from tests.training.conftest import export_bytes


def test_export_dataset_builds_the_zip_here(letters, alice, reviewed_letters):
    out = run("export_dataset", "Letters", "--formats", "imagefolder", "text", "--user", "alice")
    export = DatasetExport.objects.get()
    assert export.status == DatasetExport.Status.DONE and export.created_by == alice
    assert export.formats == ["imagefolder", "text"]
    assert hashlib.sha256(export_bytes(export)).hexdigest() == export.checksum
    assert f"sha256 {export.checksum}" in out and "lines=24" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["Nowhere"], "no collection is named"),
        (["Letters", "--validation-fraction", "3"], "validation_fraction must be between"),
        (["Letters", "--user", "nobody"], "no user 'nobody'"),
    ],
)
def test_export_dataset_refuses_bad_arguments(letters, args, message):
    with pytest.raises(CommandError, match=message):
        run("export_dataset", *args)


@pytest.mark.parametrize("name", ["Letters", "Let\u202eters\t"])
def test_export_dataset_reports_a_failed_export(letters, name):
    # Found by the name as stored ("Letters"), the collection's export fails, not the lookup.
    with pytest.raises(CommandError, match="there are no reviewed lines yet"):
        run("export_dataset", name)


def test_train_runs_here_and_prints_the_gate(letters, alice, reviewed_letters, tiny_version):
    run("export_dataset", "Letters", "--formats", "imagefolder")
    export = DatasetExport.objects.get()
    out = run(
        "train",
        "--base",
        "tiny",
        "--dataset",
        str(export.pk),
        "--max-steps",
        "1",
        "--learning-rate",
        "1e-12",
        "--eval-every",
        "1",
        "--warmup-steps",
        "0",
    )
    training = TrainingRun.objects.get()
    assert training.status == TrainingRun.Status.SUCCEEDED
    assert "kept inactive" in out.splitlines()[-1]
    with pytest.raises(CommandError, match="no dataset export 999"):
        run("train", "--base", "tiny", "--dataset", "999")
    with pytest.raises(CommandError, match="batch_size must be at least 1"):
        run("train", "--base", "tiny", "--dataset", str(export.pk), "--batch-size", "0")


def test_import_dataset_freezes_the_published_test_split(letters, line_folder):
    out = run("import_dataset", "Letters", str(line_folder), "--freeze-test-split")
    assert "Imported 32 lines in 8 documents as reviewed ground truth (train: 24, test: 8)." in out
    assert EvaluationSplit.objects.get(collection=letters).members.count() == 8
    with pytest.raises(CommandError, match="these lines are already in the collection"):
        run("import_dataset", "Letters", str(line_folder), "--freeze-test-split")


def test_demo_loop_needs_a_model(db, line_folder, tmp_path):
    with pytest.raises(CommandError, match="no usable model"):
        run("demo_loop", str(line_folder), "--base", str(tmp_path / "empty"))
    assert not Collection.objects.exists()


@pytest.mark.slow
def test_demo_loop_prints_cer_before_and_after(db, line_folder, tiny_model_dir):
    out = run(
        "demo_loop",
        str(line_folder),
        "--base",
        str(tiny_model_dir),
        "--train-part",
        "all",
        "--max-steps",
        "100",
        "--learning-rate",
        "3e-3",
        "--eval-every",
        "50",
        "--warmup-steps",
        "5",
        "--validation-fraction",
        "0.34",
    )
    print(out)
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"cer_before: (\d+\.\d{3}) cer_after: (\d+\.\d{3})", last)
    assert match, last
    assert float(match[2]) < float(match[1])
    assert "promoted" in out
