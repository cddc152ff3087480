"""Batches are sized, and torch's CPU threads set, for the device the engine runs on: a GPU
reads many lines in about the time of one, a CPU in proportion to their number."""

from dataclasses import replace

import torch

from ocrreview.transcription import services
from ocrreview.transcription.services import Engine, batch_size_for, batch_size_on
from recognition.loading import load_model


def test_a_cpu_engine_takes_the_cpu_batch_size_and_a_gpu_engine_the_cuda_one(
    settings, tiny_model_dir
):
    settings.OCRREVIEW_BATCH_SIZE = 8
    settings.OCRREVIEW_CUDA_BATCH_SIZE = 96
    on_cpu = load_model(str(tiny_model_dir), device="cpu", local_files_only=True)
    # The model stays on the CPU: only the device the engine reports is read.
    on_gpu = replace(on_cpu, device=torch.device("cuda", 0))

    assert batch_size_for(Engine(on_cpu, version=None)) == 8
    assert batch_size_for(Engine(on_gpu, version=None)) == 96
    # The training gate's readings, which took the CPU's batch on a GPU.
    assert batch_size_on(on_gpu.device) == 96


def test_a_gpu_engine_leaves_torch_one_cpu_thread_for_preparing_lines(settings, tiny_model_dir):
    settings.OCRREVIEW_NULL_MODEL = False
    on_cpu = load_model(str(tiny_model_dir), device="cpu", local_files_only=True)
    on_gpu = replace(on_cpu, device=torch.device("cuda", 0))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        services._one_thread_unless_the_model_is_on_the_cpu(Engine(on_cpu, version=None))
        assert torch.get_num_threads() == 2
        services._one_thread_unless_the_model_is_on_the_cpu(Engine(on_gpu, version=None))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
