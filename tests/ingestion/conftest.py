import pytest

from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tiny_model(settings, tiny_model_dir):
    """The tiny random model as the site's default model, read in few tokens."""
    settings.OCRREVIEW_MODEL = str(tiny_model_dir)
    settings.OCRREVIEW_MODEL_REVISION = None
    settings.OCRREVIEW_MAX_NEW_TOKENS = 8
    settings.OCRREVIEW_DEVICE = "cpu"
    return tiny_model_dir
