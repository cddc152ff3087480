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
        rows.append({"file_name": f"line{i}.png", field: text})
    (folder / "broken.png").write_bytes(b"not a png")
    rows.append({"file_name": "broken.png", field: "lost"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_evaluate_writes_results_and_ends_with_cer(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, "text_plain")
    assert (
        main([str(tiny_model_dir), str(folder), "--field", "text_plain", "--max-new-tokens", "8"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"cer: \d+\.\d{3}", lines[-1])
    assert re.fullmatch(r"wer: \d+\.\d{3}", lines[-2])
    assert "4 (1 failed)" in lines[0]
    rows = [json.loads(r) for r in (folder / "predictions.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["line0.png", "line1.png", "line2.png", "broken.png"]
    assert rows[3]["error"] and rows[3]["prediction"] == ""
    assert all(r["error"] is None and r["hypotheses"] for r in rows[:3])


def test_evaluate_reports_a_missing_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "text")
    with pytest.raises(SystemExit, match="text_plain"):
        main([str(tiny_model_dir), str(folder), "--field", "text_plain"])
