"""kraken's page time limit counts the child's CPU time, so that a busy machine, which
stretches a page's wall time, fails no page; a wall-clock limit, much larger, stops a child
that waits for what never comes. A real spawned child of kraken_child's, serving this
module's `busy_or_idle` instead of kraken: it burns CPU or sleeps as asked."""

import os
import re
import time

import pytest

from ocrreview.corpus import kraken_child
from ocrreview.corpus.kraken_child import SegmentationFailed, detect_lines
from tests.foundation.test_settings import python, start_django


def busy_or_idle(connection) -> None:
    connection.send(("ready", "cpu"))
    while True:
        try:
            what, seconds = connection.recv()
        except EOFError:
            return
        if what == "burn":
            until = time.process_time() + seconds
            while time.process_time() < until:
                pass
        else:
            time.sleep(seconds)
        connection.send(("lines", []))


@pytest.fixture
def child():
    started = kraken_child._start(busy_or_idle)
    yield started
    if kraken_child._child is not None:
        kraken_child._stop(kraken_child._child)


def test_a_page_past_its_cpu_time_is_stopped_whatever_the_machine_s_load(child, settings):
    settings.OCRREVIEW_SEGMENTATION_TIMEOUT = 1
    settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = 600
    with pytest.raises(SegmentationFailed) as stopped:
        detect_lines(("burn", 60), "a page that needs a minute of CPU")
    assert re.fullmatch(
        r"segmentation stopped: it used \d+ s of CPU on \d+ cores?, over 1 s a core "
        r"\(OCRREVIEW_SEGMENTATION_TIMEOUT\)",
        str(stopped.value),
    ), stopped.value
    assert not child.process.is_alive()
    assert kraken_child._child is None  # the next page gets a new child


def test_the_cpu_limit_is_a_core_s_time_and_grows_with_the_cores_the_child_may_use(child, settings):
    """torch runs a thread on each core: a page's CPU time is its time on an idle machine times
    its cores, which a machine of many cores would otherwise hold against it. The burner's one
    thread stands for a page's CPU; the child's cores are set as a machine's would be."""
    settings.OCRREVIEW_SEGMENTATION_TIMEOUT = 1
    settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = 600
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores to give the child")
    os.sched_setaffinity(child.process.pid, cores[:2])
    assert detect_lines(("burn", 1.5), "a page of 1.5 s of CPU, on two cores") == []
    os.sched_setaffinity(child.process.pid, cores[:1])
    with pytest.raises(SegmentationFailed, match="on 1 core, over 1 s a core"):
        detect_lines(("burn", 1.5), "the same page, on one core")


def test_a_page_waiting_past_the_cpu_limit_within_the_wall_clock_limit_goes_on(child, settings):
    """As a page on a busy machine does: it has its CPU time only now and then."""
    settings.OCRREVIEW_SEGMENTATION_TIMEOUT = 1
    settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = 300
    assert detect_lines(("sleep", 3), "a page on a busy machine") == []
    assert kraken_child._child is child
    assert child.process.is_alive()


def test_a_page_waiting_past_the_wall_clock_limit_is_stopped(child, settings):
    settings.OCRREVIEW_SEGMENTATION_TIMEOUT = 1
    settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT = 2
    with pytest.raises(SegmentationFailed) as stopped:
        detect_lines(("sleep", 600), "a stuck page")
    assert re.fullmatch(
        r"segmentation stopped after 2 s of wall time, having used only \d+ s of CPU "
        r"\(OCRREVIEW_SEGMENTATION_WALL_TIMEOUT\)",
        str(stopped.value),
    ), stopped.value
    assert not child.process.is_alive()
    assert kraken_child._child is None


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        (
            {"OCRREVIEW_SEGMENTATION_TIMEOUT": "0"},
            "OCRREVIEW_SEGMENTATION_TIMEOUT=0 must be at least 1",
        ),
        (
            {"OCRREVIEW_SEGMENTATION_TIMEOUT": "5m"},
            "OCRREVIEW_SEGMENTATION_TIMEOUT='5m' is not an integer",
        ),
        (
            {"OCRREVIEW_SEGMENTATION_WALL_TIMEOUT": "100"},
            "OCRREVIEW_SEGMENTATION_WALL_TIMEOUT=100 must be at least 300",
        ),
        (
            {"OCRREVIEW_SEGMENTATION_TIMEOUT": "60", "OCRREVIEW_SEGMENTATION_WALL_TIMEOUT": "59"},
            "OCRREVIEW_SEGMENTATION_WALL_TIMEOUT=59 must be at least 60",
        ),
    ],
)
def test_bad_time_limits_stop_start_up(environ, says):
    result = start_django(**environ)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {says}" in result.stderr


def test_the_wall_clock_limit_is_six_times_the_cpu_limit_unless_set():
    shown = "import django; django.setup(); from django.conf import settings as s; "
    shown += "print(s.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT)"
    for environ, wall in (
        ({"OCRREVIEW_SEGMENTATION_TIMEOUT": "50"}, "300"),
        ({"OCRREVIEW_SEGMENTATION_WALL_TIMEOUT": "400"}, "400"),
    ):
        result = python({**os.environ, **environ}, "-c", shown)
        assert result.stdout.strip() == wall, result.stderr
