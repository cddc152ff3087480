"""Fixtures for the recognition engine: one tiny model per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recognition.loading import LoadedModel, load_model
from tests.tiny_model import build_tiny_model


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a shared machine
    OpenMP threads waiting for each other make them tens of times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> LoadedModel:
    return load_model(str(tiny_model_dir), device="cpu", local_files_only=True)


def noise_line(width: int, height: int = 32, seed: int = 0) -> Image.Image:
    """Random pixels: a random model's output then depends on the image."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def line_images() -> list[Image.Image]:
    widths = [40, 300, 90, 600, 32, 150, 220]
    return [noise_line(width, seed=i) for i, width in enumerate(widths)]
