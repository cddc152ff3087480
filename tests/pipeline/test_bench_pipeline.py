"""`manage.py bench_pipeline` at a tiny size (three lines, the tiny model), so that the
benchmark cannot rot unnoticed. It starts its own worker from the environment; with
--null-model it reads the lines in its own process."""

import re

import pytest
import torch

from ocrreview.corpus.models import Collection, Line
from ocrreview.transcription import services
from ocrreview.transcription.models import Hypothesis, RecognitionRequest
from tests import factories
from tests.commands import printed_lines


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bench_pipeline_runs_and_prints_its_overhead_last(tiny_model, bench_environment):
    lines = printed_lines(
        "bench_pipeline", *("--lines", "3", "--nbest", "1", "--model", str(tiny_model))
    )
    assert "lines: 3" in lines
    assert re.fullmatch(r"overhead: \d+\.\d\d", lines[-1]), lines[-1]
    assert not Collection.objects.exists()  # the bench cleans up after itself


@pytest.fixture
def torch_threads():
    """The null model leaves torch on one thread in this process, as in a GPU worker."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.django_db(transaction=True)
def test_bench_pipeline_with_the_null_model_prints_its_stages_and_lines_per_s_last(
    tiny_model, settings, torch_threads, letters
):
    settings.OCRREVIEW_CUDA_BATCH_SIZE = 16
    # A user's line waiting for its reading: the stand-in's made-up one must not reach it.
    waiting = factories.make_line(factories.make_page(factories.make_document(letters)), 0)
    services.do_queue_recognition(Line.objects.filter(pk=waiting.pk))
    lines = printed_lines(
        "bench_pipeline",
        *("--null-model", "--lines", "45", "--nbest", "3", "--model", str(tiny_model)),
        *("--chunk", "20"),
    )
    assert "lines: 45 (2 pages of up to 40)" in lines
    assert "batch size: 16, claims of 20 lines" in lines
    assert torch.get_num_threads() == 1
    stages = ("claim", "read page files", "decode+crop", "preprocess", "model (stand-in)")
    for stage in (*stages, "waiting for the model", "write", "lease"):
        label = rf"  {re.escape(stage)}( \(in the (prepare|model) thread, beside the others\))?: "
        assert any(re.fullmatch(rf"{label}\d+\.\d{{3}}", line) for line in lines)
    # The CPU time of every process that worked, the PostgreSQL server's included (it runs
    # on this machine), and the rate it allows.
    cpu = r"CPU time: (\d+\.\d{3}) ms/line \(this process (\d+\.\d{3}), .*PostgreSQL (\d+\.\d{3})\)"
    spent = next(m for m in map(re.compile(cpu).fullmatch, lines) if m)
    assert float(spent[1]) >= float(spent[2]) > 0 and float(spent[3]) > 0
    ceiling = re.fullmatch(r"most lines/s this CPU time allows on (\d+) cores: (\d+)", lines[-2])
    assert ceiling and abs(int(ceiling[2]) - int(ceiling[1]) * 1000 / float(spent[1])) <= 1
    assert re.fullmatch(r"lines_per_s: \d+", lines[-1]), lines[-1]
    assert RecognitionRequest.objects.get(line=waiting).status == "queued"
    assert not Hypothesis.objects.exists()
    assert Collection.objects.get() == letters  # the bench's own is gone
