"""`manage.py bench_export` at a tiny size, so that the benchmark cannot rot unnoticed. It runs
as the benchmark is run, in a process of its own: it forks its export worker, which must not
inherit a test session's connections and threads."""

import re
import subprocess
import sys

import pytest

from ocrreview.corpus.models import Collection
from tests.workers import ROOT, worker_env


@pytest.mark.django_db(transaction=True)
def test_bench_export_runs_both_sizes_and_prints_the_peak_last(settings):
    finished = subprocess.run(
        [sys.executable, "manage.py", "bench_export", "--lines", "300", "--also", "100"],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.strip().splitlines()
    exports = [
        re.fullmatch(
            rf"export of {size} lines: [\d.]+ s, lines_per_s: [\d.]+, peak_rss_mb: (\d+) "
            r"\(freezing the split \d+(, the export after it \d+)?; \d+ at the fork\), "
            r"zip_mb: \d+",
            line,
        )
        for size, line in zip(
            (100, 300), [x for x in lines if x.startswith("export of")], strict=True
        )
    ]
    assert all(exports), lines
    assert lines[-1] == f"peak_rss_mb: {exports[1][1]}"
    assert 0 < int(exports[1][1]) < 4096
    assert Collection.objects.count() == 0
    # The page images and the zips it stored are gone with its database.
    assert [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()] == []
