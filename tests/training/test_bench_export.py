"""`manage.py bench_export` at a tiny size, so that the benchmark cannot rot unnoticed."""

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection

from ocrreview.corpus.models import Collection


@pytest.mark.django_db(transaction=True)
def test_bench_export_runs_both_sizes_and_prints_the_peak_last(settings):
    name, test_settings = connection.settings_dict["NAME"], dict(connection.settings_dict["TEST"])
    out = io.StringIO()
    call_command("bench_export", "--lines", "300", "--also", "100", stdout=out)
    lines = out.getvalue().strip().splitlines()
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
    assert connection.settings_dict["NAME"] == name
    assert connection.settings_dict["TEST"] == test_settings
    assert Collection.objects.count() == 0
    # The page images and the zips it stored are gone with its database.
    assert [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()] == []
