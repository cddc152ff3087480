"""Tiny TrOCR-shaped checkpoints for tests.

The model has random weights but the same architecture family as a real TrOCR
checkpoint (ViT or DeiT encoder, ``TrOCRForCausalLM`` decoder, byte-level BPE
tokenizer, ViT image processor) and is written with ``save_pretrained`` so the
engine loads it through the same code path as a downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    DeiTConfig,
    PreTrainedTokenizerFast,
    TrOCRConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
    ViTImageProcessor,
)

from recognition.architectures import StarterSpec

# The starter's architecture (convolutional line encoder, character tokenizer) at toy size.
TINY_STARTER = StarterSpec(
    image_height=32,
    image_width=96,
    channels=(4, 8, 8, 16, 32),
    context_layers=1,
    context_heads=2,
    context_ffn=32,
    decoder_dim=32,
    decoder_layers=1,
    decoder_heads=2,
    decoder_ffn=64,
    max_length=80,  # fine-tuning validates with 72 new tokens
)

DEFAULT_TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "Dear Sir, I received your letter of the 3rd inst.",
    "Baptisms in the parish of St. Mary, 1843",
    "Überweisung an Frau Müller — 12,50 €",
    "née Lefèvre, à Paris, le 14 juillet",
]
# RoBERTa order, so that like a real TrOCR checkpoint <s>=0, <pad>=1, </s>=2.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
IMAGE_SIZE = 32
# Ten times the usual init scale: with 0.02 a model this small puts nearly all
# its mass on end-of-line and ignores the image, so every test line would come
# out empty and identical.
INIT_STD = 0.2


def _train_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def _encoder_config(encoder: str) -> ViTConfig | DeiTConfig:
    shape = dict(
        image_size=IMAGE_SIZE,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=INIT_STD,
    )
    if encoder == "vit":
        return ViTConfig(**shape)
    if encoder == "deit":
        return DeiTConfig(**shape)
    raise ValueError(f"unknown encoder {encoder!r}; expected 'vit' or 'deit'")


def build_tiny_model(
    out_dir: Path,
    *,
    texts: list[str] | None = None,
    seed: int = 0,
    encoder: str = "vit",
) -> Path:
    """Build and save a tiny random TrOCR-like model; returns ``out_dir``.

    Like the published TrOCR checkpoints, the top-level config leaves
    ``decoder_start_token_id`` and ``pad_token_id`` unset (only the decoder
    config knows them), so loading exercises the engine's fill-in logic.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(texts or DEFAULT_TEXTS)
    decoder_config = TrOCRConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        decoder_layers=2,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        init_std=INIT_STD,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        _encoder_config(encoder), decoder_config
    )
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    ViTImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(out_dir)
    return out_dir
