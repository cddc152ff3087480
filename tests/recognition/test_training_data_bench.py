"""`bench.training_data` on a few lines, so the script keeps running; its numbers are not
checked here (speed is for the benchmark to print, never for a test to time)."""

import re

import pytest

from bench.training_data import main


def test_the_benchmark_prints_every_rate_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--workers", "1", "--lines", "32", "--steps", "2", "--threads", "1"])
    printed = dict(re.findall(r"^(\w+): ([\d.]+)", capsys.readouterr().out, re.MULTILINE))
    assert set(printed) == {
        "data_in_process_lines_per_s",
        "data_workers_lines_per_s",
        "data_speedup",
        "train_in_process_samples_per_s",
        "train_workers_samples_per_s",
        "train_speedup",
    }
    assert all(float(value) > 0 for value in printed.values())
