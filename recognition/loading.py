"""Loading TrOCR-style ``VisionEncoderDecoderModel`` checkpoints for inference.

A checkpoint is a hub id (optionally pinned to a revision) or a local
``save_pretrained`` directory holding the model, its tokenizer and its image
processor. Each worker process keeps at most two loaded models (see get_model).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from torch import nn
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    VisionEncoderDecoderModel,
)

import recognition.line_encoder  # noqa: F401  (registers the starter's encoder with Auto*)
from recognition.beam_sharing import share_cross_attention_projections
from recognition.calibration import check_calibration

logger = logging.getLogger(__name__)

STARTER_MODEL_DIR = Path(__file__).parent / "starter_model"
# A model folder's confidence calibration, fitted on lines it was not trained on
# (`python -m recognition.starter calibrate`); see recognition.calibration.
CALIBRATION_FILE = "calibration.json"

# Each entry is one requirement; any one of its alternatives satisfies it, and
# an alternative may need several files (slow BPE tokenizers).
REQUIRED_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "model config": (("config.json",),),
    "model weights": (
        ("model.safetensors",),
        ("model.safetensors.index.json",),
        ("pytorch_model.bin",),
        ("pytorch_model.bin.index.json",),
    ),
    # processor_config.json: what TrOCRProcessor.save_pretrained writes in transformers 5.
    "image processor": (("preprocessor_config.json",), ("processor_config.json",)),
    "tokenizer": (
        ("tokenizer.json",),
        ("vocab.json", "merges.txt"),
        ("sentencepiece.bpe.model",),
        ("spiece.model",),
        ("tokenizer.model",),
        ("vocab.txt",),
    ),
}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what is missing or wrong."""


@dataclass
class LoadedModel:
    model: VisionEncoderDecoderModel
    tokenizer: PreTrainedTokenizerBase
    image_processor: Any
    device: torch.device
    dtype: torch.dtype
    source: str
    revision: str | None = None
    quantized: bool = False


def load_model(
    source: str,
    *,
    revision: str | None = None,
    device: str | None = None,
    quantize: bool = False,
    local_files_only: bool | None = None,
) -> LoadedModel:
    """Load a checkpoint ready for ``recognition.inference.recognize``.

    The model is prepared for inference only (eval mode, cross-attention
    projections shared between beams, see ``recognition.beam_sharing``); do
    not train or re-save it.

    ``device`` defaults to CUDA when present (bf16 where supported, else fp16)
    and to CPU fp32 otherwise. ``quantize`` applies int8 dynamic quantisation
    to the Linear layers and is CPU-only. ``local_files_only`` defaults to the
    ``HF_HUB_OFFLINE`` environment setting.
    """
    source = str(source)
    offline = resolve_offline(local_files_only)
    torch_device = resolve_device(device)
    dtype = inference_dtype(torch_device)
    if quantize and torch_device.type != "cpu":
        raise ValueError("int8 dynamic quantisation is only available on CPU")
    _check_files_present(source, revision, offline)
    options: dict[str, Any] = {"revision": revision, "local_files_only": offline}
    try:
        # The tokenizer and image processor are loaded separately: in
        # transformers 5 AutoProcessor resolves TrOCR checkpoints to the bare
        # tokenizer. The default attention implementation is SDPA wherever the
        # architecture supports it (ViT/DeiT encoders) and eager elsewhere.
        model = VisionEncoderDecoderModel.from_pretrained(source, dtype=dtype, **options)
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        image_processor = AutoImageProcessor.from_pretrained(source, **options)
    except Exception as exc:  # truncated weights, a damaged tokenizer.json: the fallback's cases
        raise ModelLoadError(_load_failure_message(source, revision, offline, exc)) from exc
    fill_special_token_ids(model, tokenizer)
    torch.nn.Module.to(model, torch_device)  # the typed wrapper on .to confuses mypy
    convolve_channels_last(model, torch_device)
    model.eval()
    if quantize:
        model = quantize_linear_int8(model)
    share_cross_attention_projections(model)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        image_processor=image_processor,
        device=torch_device,
        dtype=dtype,
        source=source,
        revision=revision,
        quantized=quantize,
    )


def get_model(
    source: str,
    *,
    revision: str | None = None,
    device: str | None = None,
    quantize: bool = False,
    local_files_only: bool | None = None,
) -> LoadedModel:
    """``load_model`` through a per-process LRU cache of two models.

    Two entries let a worker alternate between two model versions (say the
    current and the candidate one) without reloading. A local directory is
    keyed on its path, so a retrained model must be saved to a new directory.
    """
    return _cached_load(
        str(source),
        revision,
        str(resolve_device(device)),
        quantize,
        resolve_offline(local_files_only),
    )


@functools.lru_cache(maxsize=2)
def _cached_load(
    source: str, revision: str | None, device: str, quantize: bool, local_files_only: bool
) -> LoadedModel:
    return load_model(
        source,
        revision=revision,
        device=device,
        quantize=quantize,
        local_files_only=local_files_only,
    )


def clear_model_cache() -> None:
    _cached_load.cache_clear()


def load_model_or_starter(
    source: str | None,
    *,
    revision: str | None = None,
    device: str | None = None,
    quantize: bool = False,
    local_files_only: bool | None = None,
) -> tuple[LoadedModel, str]:
    """Load ``source`` (cached), falling back to the bundled starter model.

    Returns the model and the source actually used, so callers can record
    which model produced a transcription.
    """
    if source:
        try:
            loaded = get_model(
                source,
                revision=revision,
                device=device,
                quantize=quantize,
                local_files_only=local_files_only,
            )
            return loaded, str(source)
        except ModelLoadError as exc:
            logger.warning("Falling back to the starter model: %s", exc)
    starter = str(STARTER_MODEL_DIR)
    loaded = get_model(starter, device=device, quantize=quantize, local_files_only=local_files_only)
    return loaded, starter


def starter_calibration() -> dict[str, Any] | None:
    """The calibration shipped with the starter model; None if it ships none."""
    path = STARTER_MODEL_DIR / CALIBRATION_FILE
    if not path.exists():
        return None
    fit = json.loads(path.read_text(encoding="utf-8"))
    check_calibration(fit)
    return fit


def resolve_offline(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return local_files_only
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def convolve_channels_last(model: Any, device: torch.device) -> None:
    """On a CPU, oneDNN convolves and pools channels-last tensors (and takes their gradients)
    without reordering them at every layer: the starter's convolution stack reads a line in
    four fifths of the time, to the same text (`python -m recognition.starter cpu-time`), and
    trains about half again as fast. Untried on GPUs, so left as it is there."""
    if device.type == "cpu":
        torch.nn.Module.to(model.encoder, memory_format=torch.channels_last)


def resolve_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_dtype(device: torch.device) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16


def cuda_has_native_bf16(device: torch.device) -> bool:
    """From Ampere (compute capability 8.0) on. torch's own check says yes on older cards
    (T4, V100) too, which emulate bf16: slower than fp16, and without cuDNN's convolutions."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)


def fill_special_token_ids(
    model: VisionEncoderDecoderModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Make sure generation knows its start, padding and end tokens.

    Many checkpoints set these only on the decoder config or not at all. The
    last resort for the start token is the tokenizer's ``</s>`` (id 2 for the
    RoBERTa vocabulary), which is what TrOCR was trained with; the ``<s>``/cls
    id many tutorials use gives a systematically worse first token.
    """
    decoder_config = getattr(model.config, "decoder", None)
    fallbacks = {
        "decoder_start_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    for name, fallback in fallbacks.items():
        candidates = (
            getattr(model.generation_config, name, None),
            getattr(model.config, name, None),
            getattr(decoder_config, name, None),
            fallback,
        )
        value = next((v for v in candidates if v is not None), None)
        if value is None:
            raise ModelLoadError(
                f"the checkpoint does not define {name} and its tokenizer has none"
            )
        setattr(model.config, name, value)
        setattr(model.generation_config, name, value)


def quantize_linear_int8(model: VisionEncoderDecoderModel) -> VisionEncoderDecoderModel:
    """int8 dynamic quantisation of the nn.Linear layers, in place so that peak memory
    stays near one copy of the model (weights int8, activations
    quantised per batch at run time); CPU only.

    Linear layers inside torch's own ``nn.TransformerEncoderLayer`` (the starter's line
    encoder) stay fp32: its fast path reads ``linear.weight`` as a tensor, which a quantised
    Linear exposes as a method, so every line would fail."""
    torch_layers = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.TransformerEncoderLayer)
    ]
    targets = {
        name: torch.ao.quantization.default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and not any(name.startswith(layer + ".") for layer in torch_layers)
    }
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which has no
        # fast CPU dynamic-int8 path yet; the eager API still works.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model, targets, dtype=torch.qint8, inplace=True
        )


def missing_files(source: str, revision: str | None = None) -> list[str]:
    """Which required files are absent, locally or from the hub cache.

    Each entry describes one requirement, e.g. ``"tokenizer (tokenizer.json or
    vocab.json + merges.txt or sentencepiece.bpe.model)"``.
    """
    local = Path(source)
    is_local = local.is_dir()

    def present(name: str) -> bool:
        if is_local:
            return (local / name).is_file()
        try:
            cached = try_to_load_from_cache(source, name, revision=revision)
        except ValueError:  # not a valid repo id either
            return False
        return isinstance(cached, str)

    missing = []
    for what, alternatives in REQUIRED_FILES.items():
        if not any(all(present(name) for name in option) for option in alternatives):
            names = " or ".join(" + ".join(option) for option in alternatives)
            missing.append(f"{what} ({names})")
    return missing


def _check_files_present(source: str, revision: str | None, offline: bool) -> None:
    is_local = Path(source).is_dir()
    # A hub id is "name" or "owner/name"; anything else is a path, whose typo would otherwise
    # be asked of the hub and blamed on its cache.
    if not is_local and (source.startswith(("/", ".", "~")) or source.count("/") > 1):
        raise ModelLoadError(f"cannot load model: there is no directory {source}")
    if not is_local and not offline:
        return  # the hub will be asked; failures are explained after the fact
    missing = missing_files(source, revision)
    if missing:
        where = f"directory {source}" if is_local else f"the local hub cache for {source!r}"
        if not is_local and revision:
            where += f" at revision {revision!r}"
        hint = "" if is_local else " (offline mode: HF_HUB_OFFLINE or local_files_only is set)"
        raise ModelLoadError(f"cannot load model: {where} lacks {', '.join(missing)}{hint}")


def _load_failure_message(source: str, revision: str | None, offline: bool, exc: Exception) -> str:
    missing = missing_files(source, revision)
    at = f" at revision {revision!r}" if revision else ""
    unreachable = None
    if missing and not offline and not Path(source).is_dir():
        unreachable = _hub_unreachable()
    if unreachable:
        # transformers' own words for it ("Can't load the configuration of ... make sure you
        # don't have a local directory with the same name") send admins after a typo: behind
        # huggingface_hub's retries the connection error itself does not reach it.
        return (
            f"cannot load model {source!r}{at}: {unreachable}, and the local hub cache lacks "
            f"{', '.join(missing)}"
        )
    detail = f"; missing locally: {', '.join(missing)}" if missing else ""
    reason = str(exc) if isinstance(exc, OSError | ValueError) else f"{type(exc).__name__}: {exc}"
    return f"cannot load model {source!r}{at}: {reason}{detail}"


HUB_PROBE_TIMEOUT_S = 5.0


def _hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached from here; None when it answers at all.
    Through the proxies the environment names, as huggingface_hub goes."""
    endpoint = hub_constants.ENDPOINT
    try:
        httpx.head(endpoint, timeout=HUB_PROBE_TIMEOUT_S)
    except httpx.TransportError as exc:
        return f"the Hugging Face hub ({endpoint}) cannot be reached from here ({exc or type(exc).__name__})"
    return None


def max_new_tokens_for(model: VisionEncoderDecoderModel, asked: int) -> int:
    """`asked`, within what the decoder's learned positions reach (the start token takes one):
    past them generation fails with an IndexError instead of stopping, truncated."""
    positions = getattr(model.config.decoder, "max_position_embeddings", None)
    return min(asked, positions - 1) if positions else asked
