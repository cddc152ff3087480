"""The starter model's reproduction stages, on a tiny model and a tiny imagefolder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from recognition import loading, starter
from recognition.architectures import create_starter_base
from recognition.calibration import check_calibration
from recognition.inference import recognize
from recognition.loading import CALIBRATION_FILE, load_model
from recognition.starter import (
    REAL_SPEC,
    export,
    finetune,
    grown_base,
    main,
    read_imagefolder,
    train_real,
)
from recognition.training import load_bundle
from tests.recognition.conftest import noise_line
from tests.tiny_model import TINY_STARTER


def tiny_base(out: Path) -> Path:
    return create_starter_base(out, TINY_STARTER)


def lines_folder(root: Path) -> Path:
    """Train lines on three pages, and a test split and a demo page whose images cannot even be
    opened: the fine-tuning stage must never read them."""
    folder = root / "lines"
    folder.mkdir()
    rows = []
    for i in range(6):
        noise_line(90, seed=i).save(folder / f"train{i}.png")
        rows.append(
            {"file_name": f"train{i}.png", "text": f"x{i}", "text_plain": f"Line {i}"}
            | {"page": f"p{i % 3}", "split": "train"}
        )
    for i in range(2):
        (folder / f"test{i}.png").write_bytes(b"never read")
        rows.append({"file_name": f"test{i}.png", "text_plain": "held", "split": "test"})
        (folder / f"demo{i}.png").write_bytes(b"never read")
        rows.append(
            {"file_name": f"demo{i}.png", "text_plain": "demo", "split": "train"}
            | {"page": "scans/demo_page.jpg"}
        )
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_imagefolder_rows_come_from_one_split_with_the_chosen_field(tmp_path: Path) -> None:
    rows = read_imagefolder(lines_folder(tmp_path), split="train")
    assert [r["label"] for r in rows] == [f"Line {i}" for i in range(6)] + ["demo"] * 2
    assert all(r["path"].is_file() for r in rows)


def test_finetune_then_export_gives_a_model_the_engine_loads(tmp_path: Path) -> None:
    work = tmp_path / "work"
    tuned = finetune(
        work,
        lines_folder(tmp_path),
        epochs=1,
        synthetic_mix=2,
        num_threads=1,
        base=tiny_base(tmp_path / "base"),
        exclude_pages=["demo_page.jpg"],
    )
    assert (work / "finetune.log").read_text().count('"event": "eval"') >= 1

    shipped = tmp_path / "starter_model"
    shipped.mkdir()
    (shipped / "MODEL_CARD.md").write_text("# card\n")
    (shipped / "stale.bin").write_bytes(b"old weights")
    export(tuned, shipped)
    assert (shipped / "MODEL_CARD.md").read_text() == "# card\n"
    assert not (shipped / "stale.bin").exists()
    loaded = load_model(str(shipped), device="cpu", local_files_only=True)
    [result] = recognize(loaded, [noise_line(80)], num_beams=2, nbest=2, max_new_tokens=6)
    assert result.error is None and len(result.hypotheses) == 2

    halved = tmp_path / "halved"
    export(tuned, halved, fp16=True)
    weights = "model.safetensors"
    assert (halved / weights).stat().st_size < 0.6 * (shipped / weights).stat().st_size
    from_half = load_model(str(halved), device="cpu", local_files_only=True)
    assert next(from_half.model.parameters()).dtype == torch.float32  # computed in fp32
    [again] = recognize(from_half, [noise_line(80)], num_beams=2, nbest=2, max_new_tokens=6)
    assert again.error is None and len(again.hypotheses) == 2


def htr_folder(root: Path) -> Path:
    """htr_lines' layout: train and validation splits and a chars.tsv of every character."""
    folder = root / "htr"
    folder.mkdir()
    rows = []
    for i, (text, split) in enumerate(
        [("Cœur été", "train"), ("£ 3 payé", "train"), ("Cœur", "validation")]
    ):
        noise_line(120, seed=10 + i).save(folder / f"l{i}.webp")
        rows.append({"file_name": f"l{i}.webp", "text": text, "split": split, "page": f"p{i}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    chars = sorted(set("".join(r["text"] for r in rows)))
    (folder / "chars.tsv").write_text("char\tcount\n" + "".join(f"{c}\t1\n" for c in chars))
    return folder


def test_the_real_stage_grows_the_model_and_never_reads_test_or_demo_lines(
    tmp_path: Path,
) -> None:
    model_dir = train_real(
        tmp_path / "work",
        tiny_base(tmp_path / "base"),
        steps=2,
        num_threads=1,
        copies=2,
        synthetic=2,
        htr=htr_folder(tmp_path),
        lathrop=lines_folder(tmp_path),
        exclude_pages=["demo_page.jpg"],
    )
    loaded = load_model(str(model_dir), device="cpu", local_files_only=True)
    assert loaded.model.config.encoder.image_width == REAL_SPEC.image_width
    assert len(loaded.model.encoder.context.layers) == REAL_SPEC.context_layers
    vocabulary = loaded.tokenizer.get_vocab()
    assert {"œ", "é", "£"} <= vocabulary.keys()
    [result] = recognize(loaded, [noise_line(300)], num_beams=2, max_new_tokens=6)
    assert result.error is None


def test_a_grown_base_is_not_reused_for_another_source(tmp_path: Path) -> None:
    first, other = tiny_base(tmp_path / "first"), tiny_base(tmp_path / "other")
    base = grown_base(first, tmp_path / "work" / "base", "é")
    assert grown_base(first, base, "é") == base
    assert not (tmp_path / "work" / "base.partial").exists()
    with pytest.raises(ValueError, match="use another --work folder"):
        grown_base(other, base, "é")


def test_a_grown_base_trains_with_the_dropout_asked_for(tmp_path: Path) -> None:
    base = grown_base(tiny_base(tmp_path / "source"), tmp_path / "base", "é", dropout=0.3)
    model, _, _ = load_bundle(base)
    assert {layer.dropout.p for layer in model.encoder.context.layers} == {0.3}
    assert {layer.dropout for layer in model.decoder.model.decoder.layers} == {0.3}


def test_cpu_time_reads_the_test_lines_of_the_lathrop_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "lathrop"
    folder.mkdir()
    rows = []
    for i in range(3):
        noise_line(90, seed=i).save(folder / f"test{i}.png")
        rows.append({"file_name": f"test{i}.png", "text_plain": "held", "split": "test"})
    (folder / "train.png").write_bytes(b"never read")  # would fail the run if it were
    rows.append({"file_name": "train.png", "text_plain": "x", "split": "train"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(starter, "LATHROP_LINES", folder)

    assert main(["cpu-time", "--source", str(tiny_base(tmp_path / "model"))]) == 0

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"cpu_s_per_line_beam4: \d+\.\d{3}", last), last


def real_stage_state(tmp_path: Path, option: list[str]) -> dict[str, Any]:
    """The trainer state a two-step real stage run from the command line leaves."""
    work = tmp_path / "work"
    source = tiny_base(tmp_path / "base")
    htr, lathrop = htr_folder(tmp_path), lines_folder(tmp_path)
    args = ["real", "--work", str(work), "--source", str(source), "--steps", "2", "--threads", "1"]
    args += ["--copies", "1", "--synthetic-mix", "2", "--htr", str(htr), "--lines", str(lathrop)]
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "demo_page.jpg").write_bytes(b"a demo page, whose lines are never trained on")
    assert main(args + ["--exclude-pages-of", str(demo), *option]) == 0
    return torch.load(work / "real" / "checkpoint" / "trainer_state.pt", weights_only=False)


@pytest.mark.parametrize(
    ("option", "trains_a_ctc_head"), [([], True), (["--ctc-weight", "0"], False)]
)
def test_the_real_stage_trains_the_ctc_head_unless_told_not_to(
    tmp_path: Path, option: list[str], trains_a_ctc_head: bool
) -> None:
    saved = real_stage_state(tmp_path, option)
    assert (saved["ctc"] is not None) == trains_a_ctc_head


@pytest.mark.parametrize(("option", "averages"), [([], False), (["--ema-decay", "0.99"], True)])
def test_the_real_stage_averages_the_weights_when_asked(
    tmp_path: Path, option: list[str], averages: bool
) -> None:
    saved = real_stage_state(tmp_path, option)
    assert (saved["ema"] is not None) == averages


def test_calibrate_fits_the_validation_lines_read_as_workers_read_and_writes_the_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    htr = tmp_path / "htr"
    htr.mkdir()
    rows = []
    for i in range(12):
        noise_line(90, seed=40 + i).save(htr / f"v{i}.png")
        rows.append({"file_name": f"v{i}.png", "text": f"v{i}", "split": "validation"})
    for split in ("train", "test"):
        (htr / f"{split}.png").write_bytes(b"never read")  # would fail the run if it were
        rows.append({"file_name": f"{split}.png", "text": "x", "split": split})
    (htr / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "demo_page.jpg").write_bytes(b"a demo page")
    model = tiny_base(tmp_path / "model")
    args = ["calibrate", "--source", str(model), "--htr", str(htr)]
    args += ["--lines", str(lines_folder(tmp_path)), "--exclude-pages-of", str(demo)]

    assert main(args + ["--validation-lines", "12"]) == 0

    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads((model / CALIBRATION_FILE).read_text())
    # Twelve htr_lines validation lines and the two lines of the Lathrop page held out.
    assert printed == written and written["n"] == 14
    check_calibration(written)
    # The engine still loads the folder with the fit beside its weights.
    assert len(recognize(load_model(str(model), device="cpu"), [noise_line(90, seed=1)])) == 1


def test_the_starter_calibration_is_none_without_a_file_and_refused_when_malformed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "STARTER_MODEL_DIR", tmp_path)
    assert loading.starter_calibration() is None
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"method": "platt-logit", "a": 1.0}))
    with pytest.raises(ValueError, match="lacks a finite 'b'"):
        loading.starter_calibration()
    (tmp_path / CALIBRATION_FILE).write_text("{ not json")
    with pytest.raises(ValueError):
        loading.starter_calibration()


def test_the_shipped_starter_calibration_is_valid() -> None:
    fit = loading.starter_calibration()
    assert fit is not None and fit["n"] >= 900
    check_calibration(fit)


@pytest.mark.parametrize(
    ("option", "trains_the_encoder"), [([], True), (["--decoder-only"], False)]
)
def test_the_real_stage_trains_the_decoder_alone_when_asked(
    tmp_path: Path, option: list[str], trains_the_encoder: bool
) -> None:
    real_stage_state(tmp_path, [*option, "--lr", "1e-2"])
    base, _, _ = load_bundle(tmp_path / "work" / "base")
    trained, _, _ = load_bundle(tmp_path / "work" / "real" / "checkpoint")
    before, after = base.state_dict(), trained.state_dict()

    def changed(prefix: str) -> bool:
        return any(
            not torch.equal(before[name], after[name]) for name in before if name.startswith(prefix)
        )

    assert changed("encoder.") == trains_the_encoder
    assert changed("decoder.")
