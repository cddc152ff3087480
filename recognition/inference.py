"""Batched line recognition with n-best lists and per-token probabilities.

Confidence
----------
A hypothesis' raw confidence is the model's probability of the whole line,
``exp(sum of token log-probs)``, the end-of-line token included. It answers the
routing question directly ("is every character of this line right?") and, being
a product, it is never above the smallest token probability: one doubtful word
pulls it down at least as far as a min-token-probability score would, and
several moderately doubtful tokens pull it further, which a minimum ignores. The
mean log-prob is not used: dividing by the length hides a single bad word in a
long line. ``confidence`` is the raw value passed through the calibration fit
(``recognition.calibration``); with no fit they are equal.

The beam search optimises the same quantity (``length_penalty=0``) so that the
n-best order, the confidences and the shares always agree.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from recognition.beam_sharing import beam_search_cache
from recognition.calibration import apply_calibration, check_calibration
from recognition.loading import LoadedModel, max_new_tokens_for
from recognition.preprocess import ImageError, bounded_aspect, to_rgb
from recognition.text import nfc, one_line

logger = logging.getLogger(__name__)

# Decoding constraints a checkpoint's generation config may carry, at transformers' neutral
# values: generate() takes them from the checkpoint unless told otherwise, and fine-tunes often
# ship some (the TrOCR tutorial's no_repeat_ngram_size=3, a repetition_penalty). They would
# forbid right readings such as "1 1 1", and make the scores something other than the model's
# probabilities, which the confidences must be.
NEUTRAL_SEARCH: dict[str, Any] = {
    "min_length": 0,
    "min_new_tokens": None,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "sequence_bias": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
    "renormalize_logits": False,
    "early_stopping": False,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
}

# Share of currently free memory a batch may plan to use; the estimate below is
# rough and the allocator needs headroom.
MEMORY_FRACTION = 0.5


class OutOfMemory(RuntimeError):
    """Not even one line fits in the device's free memory. A line's input has a fixed size,
    so this says the device is busy (another process holds its memory), not that the line is
    bad: the lines are for reading later, not failed."""


@dataclass
class TokenProb:
    """One generated token: its character span in the hypothesis text (end
    exclusive; zero-width for special tokens and for bytes of a character that
    a later token completes), its probability and its vocabulary entry."""

    start: int
    end: int
    prob: float
    token: str


@dataclass
class Hypothesis:
    """One transcription candidate. ``rank`` 1 is the best; ``logprob`` is the
    natural-log probability of the text; ``share`` is its part of the
    probability mass of the returned n-best list; ``truncated`` means the
    generation hit ``max_new_tokens`` before the end-of-line token."""

    rank: int
    text: str
    logprob: float
    confidence: float
    share: float
    tokens: list[TokenProb]
    raw_confidence: float
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hypothesis:
        values = dict(data)
        values["tokens"] = [TokenProb(**token) for token in values["tokens"]]
        return cls(**values)


@dataclass
class LineResult:
    hypotheses: list[Hypothesis] = field(default_factory=list)
    error: str | None = None

    @property
    def best(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    def to_dict(self) -> dict[str, Any]:
        return {"hypotheses": [h.to_dict() for h in self.hypotheses], "error": self.error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineResult:
        return cls(
            hypotheses=[Hypothesis.from_dict(h) for h in data["hypotheses"]],
            error=data.get("error"),
        )


@dataclass(frozen=True)
class _Settings:
    nbest: int
    num_beams: int
    max_new_tokens: int
    calibration: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Line:
    index: int
    pixel_values: torch.Tensor
    aspect: float

    def __reduce__(self) -> tuple[Any, ...]:
        # Between processes as an array: a pickled tensor goes through shared memory, of which
        # containers get little (64 MB under Docker), and a batch of 64 lines takes 39 MB.
        return (_line_from_array, (self.index, self.pixel_values.numpy(), self.aspect))


def _line_from_array(index: int, pixel_values: np.ndarray, aspect: float) -> _Line:
    return _Line(index, torch.from_numpy(pixel_values), aspect)


@dataclass
class Prepared:
    """Line images as the model takes them (``prepare``), with the results of the lines
    that could not be prepared."""

    count: int
    lines: list[_Line]
    failed: dict[int, LineResult]


def recognize(
    loaded: LoadedModel,
    images: Sequence[Image.Image],
    *,
    nbest: int = 1,
    num_beams: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    calibration: Mapping[str, Any] | None = None,
) -> list[LineResult]:
    """Transcribe line images; results come back in input order.

    ``num_beams`` defaults to ``nbest`` (greedy search for ``nbest=1``). A line
    that cannot be read or processed gets a result with ``error`` set and the
    other lines go on. Lines of similar aspect ratio (a proxy for text length)
    share a batch so short lines do not wait for long ones; the batch size is
    capped by ``batch_size`` and by free memory, and halved on a CUDA
    out-of-memory error.
    """
    return recognize_prepared(
        loaded,
        prepare(loaded, images),
        nbest=nbest,
        num_beams=num_beams,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        calibration=calibration,
    )


def prepare(loaded: LoadedModel, images: Sequence[Image.Image]) -> Prepared:
    """Turn line images into the model's inputs with its own image processor: the part of
    ``recognize`` that needs no model, so a pipeline can do it while the model reads."""
    return prepare_with(loaded.image_processor, images)


def prepare_with(image_processor: Any, images: Sequence[Image.Image]) -> Prepared:
    """``prepare`` with the model's image processor alone, as a process without the model
    has it (``recognition.cutting``)."""
    prepared = Prepared(count=len(images), lines=[], failed={})
    ready: list[tuple[int, np.ndarray]] = []
    for index, image in enumerate(images):
        try:
            ready.append((index, _channels_last(image)))
        except Exception as exc:  # one unreadable line must not sink the batch
            prepared.failed[index] = LineResult(error=_describe(exc))
    if not ready:
        return prepared
    # One call for the batch: called line by line, the processor's own overhead cost more
    # than its work (3.1 against 1.9 ms a line for the starter's).
    try:
        values = list(_pixel_values(image_processor, [array for _, array in ready]))
    except Exception:
        values = []
        for index, array in ready:
            try:
                values.append(_pixel_values(image_processor, [array])[0])
            except Exception as exc:  # the line the processor refused; the others go on
                prepared.failed[index] = LineResult(error=_describe(exc))
                values.append(None)
    for (index, array), pixel_values in zip(ready, values, strict=True):
        if pixel_values is not None:
            aspect = array.shape[1] / array.shape[0]
            prepared.lines.append(_Line(index=index, pixel_values=pixel_values, aspect=aspect))
    return prepared


def recognize_prepared(
    loaded: LoadedModel,
    prepared: Prepared,
    *,
    nbest: int = 1,
    num_beams: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    calibration: Mapping[str, Any] | None = None,
) -> list[LineResult]:
    """``recognize`` for lines already prepared."""
    beams = num_beams if num_beams is not None else nbest
    if nbest < 1 or beams < nbest:
        raise ValueError(f"need 1 <= nbest <= num_beams, got nbest={nbest}, num_beams={beams}")
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be positive")
    # Up front: applied line by line inside the batch, a bad fit failed every line, twice.
    check_calibration(calibration)
    settings = _Settings(
        nbest, beams, max_new_tokens_for(loaded.model, max_new_tokens), calibration
    )
    results: list[LineResult | None] = [None] * prepared.count
    for index, failed in prepared.failed.items():
        results[index] = failed
    lines = sorted(prepared.lines, key=lambda line: line.aspect)
    size = min(batch_size, memory_batch_limit(loaded, beams, max_new_tokens))
    position = 0
    while position < len(lines):
        batch = lines[position : position + size]
        try:
            outputs = _recognize_batch(loaded, batch, settings)
        except torch.OutOfMemoryError:
            if size > 1:
                size = max(1, len(batch) // 2)
                logger.warning("Out of memory; retrying with batches of %d lines", size)
                _release_cached_memory(loaded)
                continue
            _release_cached_memory(loaded)
            raise OutOfMemory("out of memory even for a single line") from None
        except Exception:
            if len(batch) > 1:
                logger.exception("Batch failed; recognising its lines one by one")
            outputs = [_recognize_alone(loaded, line, settings) for line in batch]
        for line, result in zip(batch, outputs, strict=True):
            results[line.index] = result
        position += len(batch)
    return [
        result if result is not None else LineResult(error="not processed") for result in results
    ]


# What fixed_readings reads on every line.
FIXED_TEXT = "Dear Sir, I received your letter of the 3rd inst. and thank you for it"


def fixed_readings(prepared: Prepared, *, nbest: int = 1) -> list[LineResult]:
    """The same n-best list for every prepared line, at once: a stand-in for the model, so
    that a benchmark measures everything around it (bench_pipeline --null-model). The
    readings are as long as a real line's, a token per word."""
    texts = [FIXED_TEXT] + [f"{FIXED_TEXT} {rank}" for rank in range(2, nbest + 1)]
    logprobs = [-0.05 * rank for rank in range(1, nbest + 1)]
    total = _logsumexp(logprobs)
    hypotheses = []
    for rank, (text, logprob) in enumerate(zip(texts, logprobs, strict=True), start=1):
        tokens, start = [], 0
        for word in text.split(" "):
            end = start + len(word) + 1
            tokens.append(TokenProb(start, min(end, len(text)), 0.99, word))
            start = end
        confidence = math.exp(logprob)
        hypotheses.append(
            Hypothesis(
                rank, text, logprob, confidence, math.exp(logprob - total), tokens, confidence
            )
        )
    return [
        prepared.failed.get(index) or LineResult(hypotheses=hypotheses)
        for index in range(prepared.count)
    ]


def memory_batch_limit(loaded: LoadedModel, num_beams: int, max_new_tokens: int) -> int:
    """How many lines fit in MEMORY_FRACTION of the free memory, by a rough
    per-line estimate of the dominant buffers of beam search."""
    free = _free_memory_bytes(loaded.device)
    per_line = estimate_line_bytes(loaded, num_beams, max_new_tokens)
    return max(1, int(free * MEMORY_FRACTION // per_line))


def estimate_line_bytes(loaded: LoadedModel, num_beams: int, max_new_tokens: int) -> int:
    """Cross- and self-attention key/value caches for every beam, the stored
    per-step scores, and encoder activations with their attention maps. Only
    the leading terms: this sizes batches, it is not an allocator."""
    encoder, decoder = loaded.model.config.encoder, loaded.model.config.decoder
    height, width = _pair(getattr(encoder, "image_size", 384))
    patch, _ = _pair(getattr(encoder, "patch_size", 16))
    tokens = (height // patch) * (width // patch) + 2  # + class/distillation tokens
    # TrOCR and BART name the decoder's sizes one way, BERT and GPT-2 decoders another.
    d_model = _first_attr(decoder, "d_model", "hidden_size", "n_embd")
    layers = _first_attr(decoder, "decoder_layers", "num_hidden_layers", "n_layer")
    hidden = getattr(encoder, "hidden_size", d_model)
    heads, _ = _pair(getattr(encoder, "num_attention_heads", getattr(encoder, "num_heads", 1)))
    cross_cache = num_beams * layers * 2 * tokens * d_model
    self_cache = num_beams * layers * 2 * (max_new_tokens + 1) * d_model
    encoder_activations = 16 * tokens * hidden + heads * tokens * tokens
    scores = num_beams * max_new_tokens * decoder.vocab_size  # kept in float32
    element = torch.finfo(loaded.dtype).bits // 8
    return element * (cross_cache + self_cache + encoder_activations) + 4 * scores


def _first_attr(config: Any, *names: str) -> int:
    return int(next(getattr(config, n) for n in names if getattr(config, n, None) is not None))


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """Config sizes are an int or a per-axis (or per-stage) sequence."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1] if len(value) == 2 else value[0])


def _free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for row in meminfo:
                if row.startswith("MemAvailable:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _release_cached_memory(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.empty_cache()


def _channels_last(image: Image.Image) -> np.ndarray:
    if not isinstance(image, Image.Image):
        raise ImageError(f"expected a PIL image, got {type(image).__name__}")
    return np.array(bounded_aspect(to_rgb(image)))


def _pixel_values(image_processor: Any, arrays: list[np.ndarray]) -> torch.Tensor:
    # Explicitly HWC: from a line 1 or 3 pixels high the processor would have to guess the
    # channel axis.
    return image_processor(
        images=arrays, return_tensors="pt", input_data_format="channels_last"
    ).pixel_values


def _describe(exc: Exception) -> str:
    if isinstance(exc, ImageError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _recognize_alone(loaded: LoadedModel, line: _Line, settings: _Settings) -> LineResult:
    try:
        return _recognize_batch(loaded, [line], settings)[0]
    except torch.OutOfMemoryError:
        _release_cached_memory(loaded)
        raise OutOfMemory("out of memory even for a single line") from None
    except Exception as exc:  # recorded on the line; the rest of the batch goes on
        logger.exception("Recognition failed for line %d", line.index)
        return LineResult(error=f"recognition failed: {_describe(exc)}")


def _recognize_batch(
    loaded: LoadedModel, batch: Sequence[_Line], settings: _Settings
) -> list[LineResult]:
    pixel_values = torch.stack([line.pixel_values for line in batch]).to(
        loaded.device, loaded.dtype
    )
    beam = settings.num_beams > 1
    # generate()'s return type is a union the checker cannot narrow.
    model: Any = loaded.model
    with torch.inference_mode():
        output = model.generate(
            pixel_values=pixel_values,
            **NEUTRAL_SEARCH,
            num_beams=settings.num_beams,
            num_return_sequences=settings.nbest,
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            length_penalty=0.0 if beam else None,
            past_key_values=beam_search_cache(model.config.decoder) if beam else None,
        )
        # Beam-search scores are already log-probabilities; greedy ones are
        # logits and need normalising.
        transition = model.compute_transition_scores(
            output.sequences,
            tuple(step.float() for step in output.scores),
            output.beam_indices if beam else None,
            normalize_logits=not beam,
        )
    sequences = output.sequences[:, 1:].tolist()  # drop the decoder start token
    logprobs = transition.float().tolist()
    n = settings.nbest
    return [
        _line_result(
            loaded, sequences[i * n : (i + 1) * n], logprobs[i * n : (i + 1) * n], settings
        )
        for i in range(len(batch))
    ]


def _line_result(
    loaded: LoadedModel,
    sequences: list[list[int]],
    logprobs: list[list[float]],
    settings: _Settings,
) -> LineResult:
    eos_id = loaded.model.generation_config.eos_token_id
    eos_ids = set(eos_id if isinstance(eos_id, list) else [eos_id])
    candidates: dict[str, tuple[float, list[TokenProb], bool]] = {}
    for ids, scores in zip(sequences, logprobs, strict=True):
        ids, scores, truncated = _until_end(ids, scores, eos_ids)
        text, tokens = token_spans(loaded.tokenizer, ids, scores)
        logprob = math.fsum(scores)
        previous = candidates.get(text)
        if previous is None:
            candidates[text] = (logprob, tokens, truncated)
        else:
            # Different tokenisations of one text are one transcription: its
            # probability is their sum; keep the tokens of the likelier path.
            merged = _logaddexp(previous[0], logprob)
            best = previous if previous[0] >= logprob else (logprob, tokens, truncated)
            candidates[text] = (merged, best[1], best[2])
    ordered = sorted(candidates.items(), key=lambda item: item[1][0], reverse=True)
    total = _logsumexp([logprob for _, (logprob, _, _) in ordered])
    best_raw = math.exp(ordered[0][1][0]) if ordered else 0.0
    best_confidence = apply_calibration(settings.calibration, best_raw)
    hypotheses = []
    for rank, (text, (logprob, tokens, truncated)) in enumerate(ordered, start=1):
        raw = math.exp(logprob)
        hypotheses.append(
            Hypothesis(
                rank=rank,
                text=text,
                logprob=logprob,
                confidence=best_confidence
                if rank == 1
                else alternative_confidence(raw, best_raw, best_confidence),
                share=math.exp(logprob - total),
                tokens=tokens,
                raw_confidence=raw,
                truncated=truncated,
            )
        )
    return LineResult(hypotheses=hypotheses)


def alternative_confidence(raw: float, best_raw: float, best_confidence: float) -> float:
    """The calibration is fitted on whether the best reading was right. An alternative gets
    its raw share of what the best one leaves (its raw score, uncalibrated), so a line's
    confidences sum to at most 1 as the raw ones do; and never more than the best one's,
    which a fit lowering the best reading's would otherwise give a close second (the lines
    reviewers look at), against the order of the readings."""
    if best_raw >= 1.0:
        return 0.0
    return min(best_confidence, (1.0 - best_confidence) * raw / (1.0 - best_raw))


def _until_end(
    ids: list[int], scores: list[float], eos_ids: set[int]
) -> tuple[list[int], list[float], bool]:
    """Cut a generated row after its end-of-line token; the padding after it
    is not part of the hypothesis."""
    for position, token_id in enumerate(ids):
        if token_id in eos_ids:
            return ids[: position + 1], scores[: position + 1], False
    return ids, scores, True


def token_spans(
    tokenizer: Any, ids: list[int], logprobs: list[float]
) -> tuple[str, list[TokenProb]]:
    """Decode ``ids`` and map every token to the characters it produced.

    BPE tokens are not characters: one token may produce several characters, a
    multi-byte character may need several tokens (it is attributed to the one
    that completes it) and special tokens produce none. Spans are contiguous
    and cover the stripped text exactly.
    """
    # A byte-level vocabulary (TrOCR's) holds line breaks and tabs. And a letter and its
    # accent may come as two tokens: composed, the reading is spelt as typed text is (NFC),
    # and the accent's token completes the letter, as a multi-byte character's last does.
    prefixes = [
        nfc(one_line(prefix))
        for prefix in tokenizer.batch_decode(
            [ids[: k + 1] for k in range(len(ids))],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
    ]
    full = prefixes[-1] if prefixes else ""
    text = full.strip()
    lead = len(full) - len(full.lstrip())
    pieces = tokenizer.convert_ids_to_tokens(ids)
    tokens = []
    end = 0
    for prefix, piece, logprob in zip(prefixes, pieces, logprobs, strict=True):
        start = end
        if full.startswith(prefix):  # else the prefix ends in an incomplete character
            end = max(end, len(prefix))
        tokens.append(
            TokenProb(
                start=_clamp(start - lead, len(text)),
                end=_clamp(end - lead, len(text)),
                prob=math.exp(logprob),
                token=str(piece),
            )
        )
    return text, tokens


def _clamp(value: int, upper: int) -> int:
    return min(max(value, 0), upper)


def _logaddexp(a: float, b: float) -> float:
    high = max(a, b)
    return high + math.log(math.exp(a - high) + math.exp(b - high))


def _logsumexp(values: list[float]) -> float:
    high = max(values)
    return high + math.log(math.fsum(math.exp(v - high) for v in values))
