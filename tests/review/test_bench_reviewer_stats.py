"""`python -m bench.reviewer_stats` at a tiny size, so that the benchmark cannot rot unnoticed
(its lines and corrections are made in SQL, which a column added later would break)."""

import re

import pytest
from django.db import connection

from bench import reviewer_stats
from ocrreview.corpus.models import Collection


@pytest.mark.django_db(transaction=True)
def test_bench_reviewer_stats_runs_checks_the_numbers_and_prints_its_speedup_last(capsys):
    name = connection.settings_dict["NAME"]
    reviewer_stats.main(
        [
            *("--lines", "400", "--corrections", "900", "--documents", "3"),
            *("--reviewers", "3", "--saves", "4", "--samples", "2"),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[3].startswith("migration 0009 (per-day tables, backfill): "), lines
    assert re.fullmatch(r"same numbers: 3 reviewers, \d+ lines", lines[4]), lines
    assert re.fullmatch(r"same days: 30 days, \d+ reviewer-days, \d+ lines", lines[5]), lines
    assert [line.split(":")[0] for line in lines[6:9]] == [
        "save_without_trigger_ms",
        "save_with_totals_trigger_ms",
        "save_with_trigger_ms",
    ]
    assert re.fullmatch(r"days_ms: p50 [\d.]+, p95 [\d.]+ \(20 runs\)", lines[-3]), lines
    assert re.fullmatch(r"days_speedup: \d+", lines[-2]), lines[-2]
    assert re.fullmatch(r"speedup: \d+", lines[-1]), lines[-1]
    # Back on this session's test database; the bench's rows were in its own.
    assert connection.settings_dict["NAME"] == name
    assert Collection.objects.count() == 0


def test_bench_reviewer_stats_refuses_sizes_it_cannot_seed(capsys):
    with pytest.raises(SystemExit):
        reviewer_stats.main(["--lines", "10", "--documents", "20"])
    assert "--lines must be at least --documents" in capsys.readouterr().err
