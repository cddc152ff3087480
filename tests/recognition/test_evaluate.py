import json
import re
from pathlib import Path

import pytest

from recognition.evaluate import main
from tests.recognition.conftest import noise_line


def _folder(tmp_path: Path, field: str) -> Path:
    folder = tmp_path / "lines"
    folder.mkdir()
    rows = []
    for i, text in enumerate(["Dear Sir,", "the quick brown fox", "1843"]):
        noise_line(60 + 40 * i, seed=i).save(folder / f"line{i}.png")
        rows.append({"file_name": f"line{i}.png", field: text, "split": "test"})
    (folder / "broken.png").write_bytes(b"not a png")
    rows.append({"file_name": "broken.png", field: "lost", "split": "test"})
    noise_line(80, seed=9).save(folder / "train0.png")
    rows.append({"file_name": "train0.png", field: "not scored", "split": "train"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_evaluate_writes_results_and_ends_with_cer(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "text_plain")
    output = tmp_path / "predictions.jsonl"
    argv = [str(tiny_model_dir), str(folder), "--field", "text_plain", "--split", "test"]
    assert main([*argv, "--max-new-tokens", "8", "--output", str(output)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"cer: \d+\.\d{3}", lines[-1])
    assert re.fullmatch(r"wer: \d+\.\d{3}", lines[-2])
    assert "4 (1 failed)" in lines[0]
    rows = [json.loads(r) for r in output.read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["line0.png", "line1.png", "line2.png", "broken.png"]
    assert rows[3]["error"] and rows[3]["prediction"] == ""
    assert all(r["error"] is None and r["hypotheses"] for r in rows[:3])


def test_evaluate_reports_a_missing_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "text")
    with pytest.raises(SystemExit, match="text_plain"):
        main([str(tiny_model_dir), str(folder), "--field", "text_plain"])


def test_evaluate_refuses_a_null_text_rather_than_scoring_it_as_none(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, "text")
    rows = (folder / "metadata.jsonl").read_text().splitlines()
    rows[1] = json.dumps({**json.loads(rows[1]), "text": None})
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(SystemExit, match=r"metadata.jsonl:2 lacks 'file_name' or a text in 'text'"):
        main([str(tiny_model_dir), str(folder)])


def test_evaluate_scores_every_row_without_a_split_and_writes_nothing_unasked(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "text")
    before = sorted(p.name for p in folder.iterdir())
    assert main([str(tiny_model_dir), str(folder), "--max-new-tokens", "4"]) == 0
    assert "lines: 5 (1 failed)" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == before


def test_evaluate_reports_an_empty_split(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "text")
    with pytest.raises(SystemExit, match="no lines in split 'validation'"):
        main([str(tiny_model_dir), str(folder), "--split", "validation"])


def test_evaluate_keeps_the_rows_a_where_condition_names(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "text")
    output = tmp_path / "typed.jsonl"
    argv = [str(tiny_model_dir), str(folder), "--max-new-tokens", "4", "--output", str(output)]
    assert main([*argv, "--where", "file_name=line1.png", "--where", "split=test"]) == 0
    assert "lines: 1 (0 failed)" in capsys.readouterr().out
    assert [json.loads(r)["file_name"] for r in output.read_text().splitlines()] == ["line1.png"]
    with pytest.raises(SystemExit, match="no lines where {'script': 'typed'}"):
        main([*argv, "--where", "script=typed"])
    with pytest.raises(SystemExit):
        main([*argv, "--where", "script"])
    with pytest.raises(SystemExit, match="no lines where {'page': 'None'}"):
        main([*argv, "--where", "page=None"])  # no row has the field
