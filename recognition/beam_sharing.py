"""Exact savings for beam search over encoder states.

transformers runs beam search on ``num_beams`` identical copies of each line's
encoder output. Two costs follow that change no result:

* every decoder layer projects all copies to cross-attention keys and values
  (for trocr-base, 4 beams: about a third of all the arithmetic of a line);
* at every step the cross-attention cache is reordered by the chosen beams,
  a full copy of it, although reordering among identical copies is a no-op.

``share_cross_attention_projections`` makes those projections run once per
distinct row; ``beam_search_cache`` builds a cache that skips the reorder.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache, PretrainedConfig


class DistinctRowsProjection(nn.Module):
    """Applies ``projection`` once per run of identical consecutive batch rows.

    The grouping is found from the values themselves and checked exactly, so
    the output is the same as projecting every row whatever produced the
    input (a batch without repeated rows is projected as is).
    """

    def __init__(self, projection: nn.Module) -> None:
        super().__init__()
        self.projection = projection

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        group = _repeat_factor(states)
        if group == 1:
            return self.projection(states)
        projected: torch.Tensor = self.projection(states[::group])
        return projected.repeat_interleave(group, dim=0)


def _repeat_factor(states: torch.Tensor) -> int:
    rows = states.shape[0]
    group = 1
    while group < rows and torch.equal(states[group], states[0]):
        group += 1
    if group == 1 or rows % group:
        return 1
    unique = states[::group]
    return group if torch.equal(unique.repeat_interleave(group, dim=0), states) else 1


def share_cross_attention_projections(model: nn.Module) -> int:
    """Wrap the cross-attention key/value projections of a TrOCR-style decoder
    (``encoder_attn.k_proj`` / ``v_proj``); returns how many were wrapped.
    Decoders with another layout are left as they are."""
    wrapped = 0
    for module in model.modules():
        attention = getattr(module, "encoder_attn", None)
        if attention is None:
            continue
        for name in ("k_proj", "v_proj"):
            projection = getattr(attention, name, None)
            if projection is not None and not isinstance(projection, DistinctRowsProjection):
                setattr(attention, name, DistinctRowsProjection(projection))
                wrapped += 1
    return wrapped


class BeamSharedCrossAttentionCache(EncoderDecoderCache):
    """Beam search only permutes beams within a line, and all beams of a line
    hold the same cross-attention keys and values, so only the self-attention
    cache needs reordering."""

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)


def beam_search_cache(decoder_config: PretrainedConfig) -> BeamSharedCrossAttentionCache:
    return BeamSharedCrossAttentionCache(
        DynamicCache(config=decoder_config), DynamicCache(config=decoder_config)
    )
