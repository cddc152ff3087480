"""`manage.py bench_search` at a tiny size, so that the benchmark cannot rot unnoticed."""

import re

import pytest
from django.db import connection

from ocrreview.corpus.models import Collection
from tests.commands import printed_lines


@pytest.mark.django_db(transaction=True)
def test_bench_search_runs_and_prints_its_p95_last():
    name, test_settings = connection.settings_dict["NAME"], dict(connection.settings_dict["TEST"])
    lines = printed_lines("bench_search", "--lines", "400", "--searches", "12")
    assert "seeded and indexed 400 lines" in lines[1] and "trigram index: yes" in lines[1]
    searches = re.fullmatch(r"12 searches, (\d+) with hits", lines[2])
    assert searches and int(searches[1]) > 0, lines[2]
    assert re.fullmatch(r"p95_ms: \d+\.\d", lines[-1]), lines[-1]
    assert connection.settings_dict["NAME"] == name
    assert connection.settings_dict["TEST"] == test_settings
    assert Collection.objects.count() == 0
