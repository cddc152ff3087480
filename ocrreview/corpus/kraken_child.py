"""kraken's line detection in a child process of the worker's, where a page can be stopped.

blla has taken minutes and 4 GB on a single blank card; in the worker's own process nothing
could stop it short of killing the worker. Here a page past OCRREVIEW_SEGMENTATION_TIMEOUT (the
child's CPU time on the page), OCRREVIEW_SEGMENTATION_WALL_TIMEOUT or
OCRREVIEW_SEGMENTATION_MEMORY_MB kills the child, the page fails with a message that names the
setting, and the next page gets a new child. The child loads kraken's model once and serves
page after page: starting one (torch, kraken and the model) took 15 to 24 s on this project's
busy 2-core machine, longer than the page itself.

The time limit counts CPU rather than wall time: on a busy 2-core machine (load 9) a page that
needs 47.5 s of CPU took over 250 s, and failed at a 300 s wall-clock limit although nothing was
stuck. The wall-clock limit, much larger, is left for a child that waits on something that never
comes, using no CPU.

The child is spawned, not forked: a worker that reads lines on the GPU has initialised CUDA,
which a forked child cannot use, and the spawned child imports this module to run `_serve`.
It is billiard's process, not multiprocessing's: billiard marks Celery's prefork pool
processes daemonic, and multiprocessing refuses a daemonic process children.
"""

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import billiard
from billiard.connection import Connection
from billiard.process import BaseProcess
from django.conf import settings

logger = logging.getLogger(__name__)

# Only a child that hangs while starting meets this.
START_LIMIT_S = 600
# How often the parent looks at the child's memory: a read of /proc costs microseconds, and a
# page that outgrows the limit between two looks meets the OOM score that _serve sets.
POLL_S = 0.1

Points = list[tuple[float, float]]


class SegmentationFailed(Exception):
    """kraken did not segment the page; the message says why, for the page's error."""


@dataclass
class _Child:
    process: BaseProcess
    connection: Connection


# One page at a time per worker process (prefork or solo pools), so one child each.
_child: _Child | None = None


def device_options(cuda_available: bool) -> dict:
    """kraken's accelerator and device: the GPU when this process has one. kraken's default,
    "auto", would pick a TPU or Apple's MPS before CUDA, and all of a machine's GPUs, for which
    Lightning starts DDP."""
    return {"accelerator": "cuda" if cuda_available else "cpu", "device": 1}


def detect_lines(image, name: str) -> list[tuple[Points, Points]]:
    """kraken's lines on `image` (`name` for the log), as (boundary, baseline) pairs in its
    reading order."""
    child = _running_child()
    started = time.monotonic()
    child.connection.send(image)
    outcome, value = _answer(
        child,
        "segmentation",
        settings.OCRREVIEW_SEGMENTATION_WALL_TIMEOUT,
        "OCRREVIEW_SEGMENTATION_WALL_TIMEOUT",
        cpu_limit_s=settings.OCRREVIEW_SEGMENTATION_TIMEOUT,
    )
    if outcome == "error":
        raise SegmentationFailed(f"segmentation failed ({value})")
    logger.info("kraken segmented %s in %.1f s", name, time.monotonic() - started)
    return value


def _running_child() -> _Child:
    if _child is not None and not _child.process.is_alive():  # killed by the kernel, say
        _stop(_child)
    return _child or _start()


def _start(serve: Callable[[Connection], None] | None = None) -> _Child:
    """A new child running `serve` (kraken's `_serve`; tests give one of their own, which
    must answer ("ready", device) first as `_serve` does)."""
    global _child
    started = time.monotonic()
    spawn = billiard.get_context("spawn")
    parent_end, child_end = spawn.Pipe()
    # Daemonic, so that a worker that exits normally takes it along.
    process = spawn.Process(target=serve or _serve, args=(child_end,), name="kraken", daemon=True)
    process.start()
    child_end.close()
    _child = _Child(process, parent_end)
    _, device = _answer(_child, "loading kraken's model", START_LIMIT_S, None)
    logger.info(
        "kraken's process %d started on %s in %.1f s",
        process.pid,
        device,
        time.monotonic() - started,
    )
    return _child


def _answer(
    child: _Child,
    doing: str,
    wall_limit_s: float,
    wall_setting: str | None,
    cpu_limit_s: float | None = None,
):
    """The child's next message, once it comes within the time limits and the memory limit.

    CPU time is the child's own (all its threads) from this call on; the child is idle between
    pages, so that is the page's. It is divided by the cores the child may run on, as torch
    runs a thread on each: about the time the page takes on an idle machine, which a busy one
    does not stretch, and which a machine of many cores does not multiply. Both it and memory are watched from here rather than limited
    in the child: RLIMIT_CPU counts the child's whole life, over many pages; RLIMIT_AS counts
    address space, of which CUDA reserves tens of GB, and Linux does not enforce RLIMIT_RSS.
    """
    memory_mb = settings.OCRREVIEW_SEGMENTATION_MEMORY_MB
    deadline = time.monotonic() + wall_limit_s
    cpu_at_start = _cpu_seconds(child.process.pid)
    cores = _cores(child.process.pid)
    while not child.connection.poll(POLL_S):
        cpu_used = _cpu_seconds(child.process.pid) - cpu_at_start
        if cpu_limit_s is not None and cpu_used / cores > cpu_limit_s:
            _stop(child)
            raise SegmentationFailed(
                f"{doing} stopped: it used {cpu_used:.0f} s of CPU on {cores} "
                f"core{'s' if cores > 1 else ''}, over {cpu_limit_s:g} s a core "
                "(OCRREVIEW_SEGMENTATION_TIMEOUT)"
            )
        if time.monotonic() > deadline:
            _stop(child)
            if cpu_limit_s is None:
                suffix = f" ({wall_setting})" if wall_setting else ""
                raise SegmentationFailed(f"{doing} stopped after {wall_limit_s:g} s{suffix}")
            # Within its CPU limit all this time: waiting on something, or on a machine so
            # busy that it had a CPU only now and then; the CPU it used tells which.
            raise SegmentationFailed(
                f"{doing} stopped after {wall_limit_s:g} s of wall time, having used only "
                f"{cpu_used:.0f} s of CPU ({wall_setting})"
            )
        resident_mb = _resident_mb(child.process.pid)
        if resident_mb > memory_mb:
            _stop(child)
            raise SegmentationFailed(
                f"{doing} stopped at {resident_mb} MB of memory, over {memory_mb} MB "
                "(OCRREVIEW_SEGMENTATION_MEMORY_MB)"
            )
    try:
        return child.connection.recv()
    except EOFError:
        _stop(child)
        raise SegmentationFailed(
            f"{doing} failed (kraken's process ended with exit code {child.process.exitcode})"
        ) from None


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process, all its threads."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # Fields after the command's name, which is in parentheses and may hold spaces;
            # utime and stime are the stat's 14th and 15th.
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # it has just ended; the pipe says so next
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cores(pid: int) -> int:
    try:
        return len(os.sched_getaffinity(pid))
    except ProcessLookupError:  # it has just ended; the pipe says so next
        return 1


def _resident_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except FileNotFoundError:  # it has just ended; the pipe says so next
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 2**20


def _stop(child: _Child) -> None:
    global _child
    if child.process.is_alive():
        os.kill(child.process.pid, signal.SIGKILL)
    child.process.join()
    child.connection.close()
    _child = None


def _serve(connection: Connection) -> None:
    """The child: load kraken's model, then segment each image the worker sends."""
    # Should memory run out between two of the parent's looks, the kernel kills this process
    # rather than the worker.
    with open("/proc/self/oom_score_adj", "w") as oom_score:
        oom_score.write("1000")
    import torch
    from kraken.configs import SegmentationInferenceConfig
    from kraken.tasks import SegmentationTaskModel

    model = SegmentationTaskModel.load_model()
    config = SegmentationInferenceConfig(**device_options(torch.cuda.is_available()))
    connection.send(("ready", config.accelerator))
    while True:
        try:
            image = connection.recv()
        except EOFError:  # the worker is gone
            return
        try:
            segmentation = model.predict(image, config)
        except Exception as exc:
            connection.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        lines = [(line.boundary or [], line.baseline or []) for line in segmentation.lines]
        connection.send(("lines", lines))
