import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from transformers import TrOCRProcessor

from recognition import loading
from recognition.architectures import create_starter_base
from recognition.inference import recognize
from recognition.loading import (
    ModelLoadError,
    clear_model_cache,
    get_model,
    load_model,
    load_model_or_starter,
)
from tests.recognition.conftest import noise_line
from tests.tiny_model import TINY_STARTER, build_tiny_model


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    clear_model_cache()
    yield
    clear_model_cache()


def _copy(source: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(source, tmp_path / name))


def test_loads_a_saved_checkpoint(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), local_files_only=True)
    assert str(loaded.device) == "cpu"
    assert loaded.dtype.is_floating_point and loaded.dtype.itemsize == 4
    assert type(loaded.image_processor).__name__ == "ViTImageProcessor"
    assert loaded.tokenizer.eos_token == "</s>"
    assert loaded.model.encoder.config._attn_implementation == "sdpa"
    assert not loaded.model.training


def test_missing_special_token_ids_are_filled_in(tiny_model_dir: Path, tmp_path: Path) -> None:
    stripped = _copy(tiny_model_dir, tmp_path, "stripped")
    names = ("decoder_start_token_id", "pad_token_id", "eos_token_id", "bos_token_id")
    generation = json.loads((stripped / "generation_config.json").read_text())
    (stripped / "generation_config.json").write_text(
        json.dumps({k: v for k, v in generation.items() if k not in names})
    )
    config = json.loads((stripped / "config.json").read_text())
    config["decoder"] = {k: v for k, v in config["decoder"].items() if k not in names}
    (stripped / "config.json").write_text(json.dumps(config))

    loaded = load_model(str(stripped))
    generation_config = loaded.model.generation_config
    # </s>, as TrOCR was trained, not the <s>/cls id (0).
    assert generation_config.decoder_start_token_id == 2
    assert generation_config.pad_token_id == 1
    assert generation_config.eos_token_id == 2
    assert loaded.model.config.decoder_start_token_id == 2


def test_missing_local_files_are_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    incomplete = _copy(tiny_model_dir, tmp_path, "incomplete")
    (incomplete / "preprocessor_config.json").unlink()
    (incomplete / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as error:
        load_model(str(incomplete))
    message = str(error.value)
    assert "preprocessor_config.json" in message and "model.safetensors" in message
    assert "tokenizer" not in message


def test_a_model_saved_with_its_processor_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    # transformers 5's TrOCRProcessor.save_pretrained writes processor_config.json instead of
    # preprocessor_config.json; such a model used to be refused and silently replaced by the
    # starter.
    saved = _copy(tiny_model_dir, tmp_path, "processor-saved")
    loaded = load_model(str(saved))
    (saved / "preprocessor_config.json").unlink()
    TrOCRProcessor(
        image_processor=loaded.image_processor, tokenizer=loaded.tokenizer
    ).save_pretrained(saved)
    assert (saved / "processor_config.json").exists()
    assert not (saved / "preprocessor_config.json").exists()
    assert type(load_model(str(saved)).image_processor).__name__ == "ViTImageProcessor"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 3]  # an interrupted copy


@pytest.mark.parametrize(
    "damaged_file, damage, message",
    [
        ("model.safetensors", _truncated, "SafetensorError"),
        ("tokenizer.json", _truncated, "cannot load model"),
        ("tokenizer.json", lambda _: b'{"version": "1.0"}', "KeyError"),
    ],
    ids=["truncated-weights", "truncated-tokenizer", "tokenizer-without-vocabulary"],
)
def test_damaged_files_are_a_load_error_and_the_starter_takes_over(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_cache: None,
    damaged_file: str,
    damage: Callable[[bytes], bytes],
    message: str,
) -> None:
    damaged = _copy(tiny_model_dir, tmp_path, "damaged")
    (damaged / damaged_file).write_bytes(damage((damaged / damaged_file).read_bytes()))
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(damaged))
    monkeypatch.setattr(loading, "STARTER_MODEL_DIR", tiny_model_dir)
    _, used = load_model_or_starter(str(damaged))
    assert used == str(tiny_model_dir)


def test_offline_hub_id_names_the_files_missing_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"config\.json.*offline") as error:
        load_model("ocrreview-tests/never-downloaded", revision="v2")
    assert "revision 'v2'" in str(error.value)
    assert "tokenizer.json" in str(error.value)


@pytest.mark.parametrize("path", ["/srv/models/letters-run12", "./models/x", "var/models/x"])
def test_a_model_directory_that_does_not_exist_is_named(path: str) -> None:
    """A typo in OCRREVIEW_MODEL was asked of the hub, and the error blamed its cache."""
    with pytest.raises(ModelLoadError, match=f"there is no directory {re.escape(path)}$"):
        load_model(path, local_files_only=True)


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """The hub at an address nothing listens on, as HF_ENDPOINT would set it at import, and
    asked, as on a newcomer's machine (no HF_HUB_OFFLINE, which the test run sets)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    endpoint = "http://127.0.0.1:1"
    template = constants.HUGGINGFACE_CO_URL_TEMPLATE.replace(constants.ENDPOINT, endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    return endpoint


def test_a_hub_that_cannot_be_reached_is_named(unreachable_hub: str) -> None:
    """A first run without network (the README's default model): transformers said "Can't
    load the configuration of 'microsoft/trocr-base-handwritten' ... make sure you don't have
    a local directory with the same name", and that is what the starter's notice showed."""
    with pytest.raises(ModelLoadError) as error:
        load_model("ocrreview-tests/never-downloaded", local_files_only=False)
    message = str(error.value)
    assert message.startswith(
        "cannot load model 'ocrreview-tests/never-downloaded': the Hugging Face hub "
        f"({unreachable_hub}) cannot be reached from here ("
    )
    assert "Connection refused" in message
    assert "the local hub cache lacks model config (config.json)" in message
    assert "Can't load" not in message


def test_quantisation_is_cpu_only(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="CPU"):
        load_model(str(tiny_model_dir), device="cuda", quantize=True)


def test_quantisation_replaces_linear_layers(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), quantize=True)
    assert loaded.quantized
    assert "quantized" in type(loaded.model.decoder.output_projection).__module__


def test_the_starter_reads_on_the_cpu_channels_last_to_the_same_results(tmp_path: Path) -> None:
    source = create_starter_base(tmp_path / "starter", TINY_STARTER)
    loaded = load_model(str(source), device="cpu")
    convolutions = [m for m in loaded.model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions)
    lines = [noise_line(width, seed=width) for width in (60, 140, 300)]
    channels_last = recognize(loaded, lines, nbest=2, max_new_tokens=6)

    torch.nn.Module.to(loaded.model.encoder, memory_format=torch.contiguous_format)
    plain = recognize(loaded, lines, nbest=2, max_new_tokens=6)

    def readings(results: list) -> list[tuple[str, float]]:
        return [(h.text, h.logprob) for r in results for h in r.hypotheses]

    assert [text for text, _ in readings(channels_last)] == [text for text, _ in readings(plain)]
    assert [p for _, p in readings(channels_last)] == pytest.approx(
        [p for _, p in readings(plain)], rel=1e-4
    )


def test_get_model_keeps_the_two_most_recent_models(
    tiny_model_dir: Path, tmp_path: Path, fresh_cache: None
) -> None:
    a = str(tiny_model_dir)
    b = str(_copy(tiny_model_dir, tmp_path, "b"))
    c = str(_copy(tiny_model_dir, tmp_path, "c"))
    first_a = get_model(a)
    assert get_model(a, device="cpu", revision=None) is first_a
    first_b = get_model(b)
    assert get_model(a) is first_a  # switching between two versions does not reload
    get_model(c)  # evicts b, the least recently used
    assert get_model(a) is first_a
    assert get_model(b) is not first_b
    assert get_model(a, quantize=True) is not first_a


def test_falls_back_to_the_starter_model(
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_cache: None,
) -> None:
    monkeypatch.setattr(loading, "STARTER_MODEL_DIR", tiny_model_dir)
    with caplog.at_level(logging.WARNING, logger="recognition.loading"):
        loaded, used = load_model_or_starter("/nonexistent/model", local_files_only=True)
    assert used == str(tiny_model_dir)
    assert loaded.source == str(tiny_model_dir)
    assert "starter model" in caplog.text
    _, used = load_model_or_starter(str(tiny_model_dir))
    assert used == str(tiny_model_dir)


def test_deit_encoder_checkpoint_works(tmp_path: Path) -> None:
    loaded = load_model(str(build_tiny_model(tmp_path / "deit", encoder="deit", seed=1)))
    (result,) = recognize(loaded, [noise_line(100)], nbest=2, max_new_tokens=6)
    assert result.error is None and result.hypotheses


@pytest.mark.parametrize(
    "capability, dtype",
    [
        ((7, 5), torch.float16),
        ((7, 0), torch.float16),
        ((8, 0), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_gpus_before_ampere_read_in_fp16_not_emulated_bf16(monkeypatch, capability, dtype):
    """A T4 (7.5) passes torch's bf16 check by emulating it, slower than fp16. No GPU here:
    the card's capability is what torch would report for it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert loading.inference_dtype(torch.device("cuda")) == dtype
