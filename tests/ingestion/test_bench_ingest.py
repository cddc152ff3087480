"""`manage.py bench_ingest` at a tiny size, so that the benchmark cannot rot unnoticed."""

import re

import pytest

from ocrreview.corpus.models import Collection, Document
from tests.commands import printed_lines


@pytest.mark.django_db(transaction=True)
def test_bench_ingest_prints_both_peaks_and_their_ratio_last(settings):
    lines = printed_lines("bench_ingest", "--pages", "3")
    assert re.fullmatch(
        r"1 page \(0\.\d MB of PDF\): peak \d+\.\d MB above the memory before", lines[0]
    )
    assert re.fullmatch(
        r"3 pages \(\d\.\d MB of PDF\): peak \d+\.\d MB above the memory before", lines[1]
    )
    assert re.fullmatch(r"peak_ratio: \d+\.\d\d", lines[-1]), lines[-1]
    assert not Collection.objects.exists() and not Document.objects.exists()
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]
