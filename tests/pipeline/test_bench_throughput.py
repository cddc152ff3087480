"""`manage.py bench_throughput` at a tiny size (one demo page and no copies, read by the tiny
model), so that the benchmark cannot rot unnoticed. It starts its own segmentation and
recognition workers from the environment."""

import re

import pytest

from ocrreview.corpus.models import Collection
from ocrreview.transcription.management.commands.bench_throughput import STAGES
from tests.commands import printed_lines


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bench_throughput_runs_a_page_and_prints_pages_per_hour_last(tiny_model, bench_environment):
    lines = printed_lines(
        "bench_throughput", *("--pages", "1", "--copies", "0", "--model", str(tiny_model))
    )
    assert "pages: 1 (1 of demo/lathrop/, 0 copies)" in lines
    (read,) = [int(m[1]) for line in lines if (m := re.fullmatch(r"lines: (\d+)", line))]
    assert read >= 10  # the page has 16 transcribed lines
    assert any(re.fullmatch(r"lines_per_s: \d+\.\d\d", line) for line in lines)
    shares = []
    for stage in STAGES:
        (share,) = [
            float(m[1])
            for line in lines
            if (m := re.fullmatch(rf"  {re.escape(stage)}: \d+\.\d \((\d+\.\d)%\)", line))
        ]
        shares.append(share)
    assert sum(shares) == pytest.approx(100, abs=0.3)  # the stages cut a page's time, no more
    assert re.fullmatch(
        r"busy: segmentation worker \d+% of the total, recognition worker \d+%", lines[-2]
    )
    last = re.fullmatch(r"pages_per_hour: (\d+)", lines[-1])
    assert last and int(last[1]) > 0, lines[-1]
    assert not Collection.objects.exists()  # the bench cleans up after itself
