"""`manage.py bench_review` at a tiny size, so that the benchmark cannot rot unnoticed (it
once failed at once: its seeded lines lacked a column added later)."""

import re

import pytest
from django.db import connection

from ocrreview.corpus.models import Collection
from tests.commands import printed_lines


@pytest.mark.django_db(transaction=True)
def test_bench_review_runs_and_prints_its_p95_last():
    name, test_settings = connection.settings_dict["NAME"], dict(connection.settings_dict["TEST"])
    lines = printed_lines(
        "bench_review",
        *("--lines", "24", "--reviewers", "2", "--saves", "3", "--think-ms", "0"),
    )
    assert "lines handed out twice: 0; lines saved twice: 0" in lines[-5]
    assert re.fullmatch(r"p95_ms: \d+\.\d", lines[-1]), lines[-1]
    # Back on this session's test database, under the name it will be dropped by.
    assert connection.settings_dict["NAME"] == name
    assert connection.settings_dict["TEST"] == test_settings
    assert Collection.objects.count() == 0  # the bench's rows were in its own database
