"""bench.find_replace and bench.inside_words at a tiny size, so that they cannot rot unnoticed."""

import re
import sys

import pytest
from django.db import connection

from bench import find_replace
from ocrreview.corpus.models import Collection


def test_bench_find_replace_runs_at_a_tiny_size(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["find_replace", "--lines", "300", "--repeat", "1"])
    find_replace.main()
    out = capsys.readouterr().out
    assert out.count(" hits\n") == 8
    assert out.splitlines()[-1].startswith("inside_over_whole: ")
    # Each line that holds the phrase is a hit of it, whole or inside words.
    counts = [int(line.rsplit(", ", 1)[1].split()[0]) for line in out.splitlines()[:8]]
    assert counts[0] == counts[1] == counts[2] > 0


@pytest.mark.django_db(transaction=True)
def test_bench_inside_words_runs_at_a_tiny_size(monkeypatch, capsys):
    from bench import inside_words

    name = connection.settings_dict["NAME"]
    argv = ["inside_words", "--words", "300", "--queries", "4", "--short", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    inside_words.main()
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"seeded and indexed \d+ distinct words in \d+ s \(trigram index: yes\)", out[1]
    )
    assert int(out[1].split()[3]) >= 300
    assert out[2] == "parts of 300 words, 4 previews (ms):" and out[6].startswith("short parts")
    assert [row.split()[:2] for row in out[3:6]] == [
        ["before", "vocabulary"],
        ["one", "query"],
        ["after", "vocabulary"],
    ]
    assert re.fullmatch(r"one_query_speedup_p50: \d+\.\d", out[-2]), out[-2]
    assert re.fullmatch(r"speedup_p50: \d+\.\d", out[-1]), out[-1]
    assert connection.settings_dict["NAME"] == name
    assert Collection.objects.count() == 0
