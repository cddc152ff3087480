"""The forkserver that this package's process pools start their processes from: the pool that
cuts and prepares lines beside a recognition worker's model, and training's batch loaders.

A process has one forkserver, started by whichever pool comes first with the modules preloaded
then, so both pools ask for the same ones: their children then start with torch and
transformers already imported. Children come from it rather than from a fork of the caller,
which may hold threads (whose locks a fork copies held), CUDA (which a fork cannot use) and
open connections (kombu's after-fork hook, closing a Celery connection that waited on Redis,
hung a forked training loader for good)."""

import multiprocessing
from multiprocessing.context import ForkServerContext

PRELOADED = ["recognition.cutting", "recognition.training"]


def forkserver() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context
