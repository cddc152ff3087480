"""Build the small offline starter model from scratch.

A VisionEncoderDecoderModel with the project's convolutional line encoder
(`recognition.line_encoder`, registered with the Auto classes on import) and a stock TrOCR
decoder, a tokenizers-backed character tokenizer and a DonutImageProcessor, so `save_pretrained`
writes a directory that `from_pretrained` reads once `recognition.line_encoder` is imported.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    DonutImageProcessor,
    PreTrainedTokenizerFast,
    TrOCRConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

from recognition.line_encoder import LineEncoderConfig, LineEncoderModel

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"

# Latin script as found in English archival hands, plus currency and typographic marks.
DEFAULT_CHARSET: str = (
    " " + string.ascii_letters + string.digits + "!\"#$%&'()*+,-./:;<=>?@[]_" + "£¢§°½¼¾–—‘’“”"
)


@dataclass(frozen=True)
class StarterSpec:
    """Sizes of the starter model. Height x width fits a line of about 36 handwritten
    characters, the longest one real lines in ten hold, without shrinking it."""

    image_height: int = 40
    image_width: int = 640
    channels: tuple[int, ...] = (32, 64, 128, 128, 256)
    context_layers: int = 2
    context_heads: int = 4
    context_ffn: int = 512
    decoder_dim: int = 256
    decoder_layers: int = 3
    decoder_heads: int = 4
    decoder_ffn: int = 1024
    max_length: int = 128


def build_char_tokenizer(charset: str = DEFAULT_CHARSET) -> PreTrainedTokenizerFast:
    """One token per character; decoding fuses tokens back without separators."""
    specials = [PAD, BOS, EOS, UNK]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in dict.fromkeys(charset):
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # "isolated" keeps every character, spaces included, as its own pre-token.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("(?m:.)"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=StarterSpec.max_length,
    )


def build_image_processor(spec: StarterSpec = StarterSpec()) -> DonutImageProcessor:
    """Scale to the model's height keeping the aspect ratio, shrink lines that are too long,
    and pad the rest. Stretching a short word to the full width instead would make its letters
    far wider than the encoder's attention windows."""
    return DonutImageProcessor(
        do_resize=True,
        size={"height": spec.image_height, "width": spec.image_width},
        do_thumbnail=True,
        do_align_long_axis=False,
        do_pad=True,
        random_padding=False,
        do_rescale=True,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def build_starter_model(
    tokenizer: PreTrainedTokenizerFast, spec: StarterSpec = StarterSpec()
) -> VisionEncoderDecoderModel:
    """A convolutional encoder, so it sees strokes locally from the start, which a plain ViT
    trained from scratch on little data does not learn to do (see `recognition.line_encoder`)."""
    encoder = LineEncoderConfig(
        image_height=spec.image_height,
        image_width=spec.image_width,
        channels=list(spec.channels),
        context_layers=spec.context_layers,
        context_heads=spec.context_heads,
        context_ffn=spec.context_ffn,
    )
    decoder = TrOCRConfig(
        vocab_size=len(tokenizer),
        d_model=spec.decoder_dim,
        decoder_layers=spec.decoder_layers,
        decoder_attention_heads=spec.decoder_heads,
        decoder_ffn_dim=spec.decoder_ffn,
        max_position_embeddings=spec.max_length + 2,
        activation_function="gelu",
        dropout=0.1,
        attention_dropout=0.0,
        layernorm_embedding=True,
        use_learned_position_embeddings=True,
        scale_embedding=True,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.vocab_size = len(tokenizer)
    model = VisionEncoderDecoderModel(config=config)
    generation = model.generation_config
    generation.decoder_start_token_id = tokenizer.bos_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.max_new_tokens = spec.max_length
    return model


def create_starter_base(out_dir: Path, spec: StarterSpec = StarterSpec(), seed: int = 0) -> Path:
    """Write an untrained starter model directory that `training.train` can start from."""
    import torch

    torch.manual_seed(seed)
    tokenizer = build_char_tokenizer()
    model = build_starter_model(tokenizer, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    build_image_processor(spec).save_pretrained(out_dir)
    return out_dir


def grow_starter(
    model: VisionEncoderDecoderModel, image_width: int, context_layers: int
) -> DonutImageProcessor:
    """Widen a trained starter's input and deepen its encoder context in place, keeping what it
    learned: the convolutions are translation-invariant, the columns it knew keep their
    positions, and each added transformer layer starts as the identity (its attention output
    and second feed-forward layer are zero), so the grown model reads as the old one did
    until training moves them. Returns the image processor for the new width."""
    import torch
    from torch import nn

    encoder = model.encoder
    assert isinstance(encoder, LineEncoderModel), "only the starter's line encoder can grow"
    config = encoder.config
    if image_width < config.image_width or context_layers < config.context_layers:
        raise ValueError("a starter can only grow")
    old = encoder.positions.data
    columns = image_width // (config.image_width // old.shape[1])
    grown = old[:, -1:].repeat(1, columns, 1)
    grown[:, : old.shape[1]] = old
    grown[:, old.shape[1] :] += torch.randn_like(grown[:, old.shape[1] :]) * 0.02
    encoder.positions = nn.Parameter(grown)
    while len(encoder.context.layers) < context_layers:
        layer = copy.deepcopy(encoder.context.layers[-1])
        for linear in (layer.self_attn.out_proj, layer.linear2):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        encoder.context.layers.append(layer)
    encoder.context.num_layers = context_layers
    config.image_width = image_width
    config.context_layers = context_layers
    model.config.encoder = config
    spec = StarterSpec(image_height=config.image_height, image_width=image_width)
    return build_image_processor(spec)
