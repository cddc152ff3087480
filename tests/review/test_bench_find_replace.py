"""bench.find_replace at a tiny size, so that it cannot rot unnoticed."""

import sys

from bench import find_replace


def test_bench_find_replace_runs_at_a_tiny_size(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["find_replace", "--lines", "300", "--repeat", "1"])
    find_replace.main()
    out = capsys.readouterr().out
    assert out.count(" hits\n") == 8
    assert out.splitlines()[-1].startswith("inside_over_whole: ")
    # Each line that holds the phrase is a hit of it, whole or inside words.
    counts = [int(line.rsplit(", ", 1)[1].split()[0]) for line in out.splitlines()[:8]]
    assert counts[0] == counts[1] == counts[2] > 0
