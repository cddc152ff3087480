"""A small convolutional encoder for text lines, usable inside a `VisionEncoderDecoderModel`.

Trained from scratch on a CPU, windowed-attention encoders (Swin) sat on the CTC blank plateau
for hundreds of steps where this convolution stack started localising letters within a hundred:
convolutions see strokes locally from the first step. A learned embedding per column then tells
the decoder's cross-attention where on the line each feature is, which it needs to read left to
right. Importing this module registers the encoder with the `Auto*` classes, so
`VisionEncoderDecoderModel.from_pretrained` reads checkpoints that use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

# The height halves at each pooling stage; the width too, so one output column covers 8 pixels.
POOL_AFTER = frozenset({0, 1, 3})
STRIDE = 2 ** len(POOL_AFTER)


@strict
class LineEncoderConfig(PreTrainedConfig):
    r"""
    image_height, image_width: the input size the image processor pads every line to.
    channels: output channels of the convolution blocks; the last is the hidden size.
    context_layers, context_heads, context_ffn: the transformer layers over the columns.
    """

    model_type = "ocrreview-line-cnn"

    image_height: int = 40
    image_width: int = 640
    num_channels: int = 3
    channels: list[int] | tuple[int, ...] = (32, 64, 128, 128, 256)
    context_layers: int = 2
    context_heads: int = 4
    context_ffn: int = 512
    dropout: float | int = 0.1
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.hidden_size = int(self.channels[-1])
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        if self.image_height % STRIDE or self.image_width % STRIDE:
            raise ValueError(f"image height and width must be multiples of {STRIDE}")


@dataclass
class LineEncoderOutput(ModelOutput):
    """`reshaped_hidden_states` holds the column features as a (batch, channels, 1, columns)
    map, the layout Swin uses, so the auxiliary CTC loss in training reads either encoder."""

    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    reshaped_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None  # VisionEncoderDecoderModel reads it


class LineEncoderModel(PreTrainedModel):
    config: LineEncoderConfig
    config_class = LineEncoderConfig
    base_model_prefix = "line_encoder"
    main_input_name = "pixel_values"
    input_modalities = "image"

    def __init__(self, config: LineEncoderConfig) -> None:
        super().__init__(config)
        blocks: list[nn.Module] = []
        previous = config.num_channels
        for index, channels in enumerate(config.channels):
            blocks += [
                nn.Conv2d(previous, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            if index in POOL_AFTER:
                blocks.append(nn.MaxPool2d(2))
            previous = channels
        self.convolutions = nn.Sequential(*blocks)
        hidden = config.hidden_size
        # Folds the remaining rows into one feature per column, keeping where in the height
        # (ascender, x-height, descender) a stroke was.
        self.collapse = nn.Conv2d(hidden, hidden, (config.image_height // STRIDE, 1))
        self.positions = nn.Parameter(torch.zeros(1, config.image_width // STRIDE, hidden))
        layer = nn.TransformerEncoderLayer(
            hidden,
            config.context_heads,
            config.context_ffn,
            config.dropout,
            activation="gelu",
            layer_norm_eps=config.layer_norm_eps,
            batch_first=True,
            norm_first=True,
        )
        self.context = nn.TransformerEncoder(
            layer, config.context_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm | nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, LineEncoderModel):
            nn.init.trunc_normal_(module.positions, std=self.config.initializer_range)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **_: object,
    ) -> LineEncoderOutput:
        height, width = pixel_values.shape[-2:]
        if height != self.config.image_height or width > self.config.image_width:
            raise ValueError(
                f"expected lines {self.config.image_height} px high and at most "
                f"{self.config.image_width} px wide, got {height} x {width}"
            )
        features = self.collapse(self.convolutions(pixel_values))  # batch, hidden, 1, columns
        columns = features.squeeze(2).transpose(1, 2)
        columns = columns + self.positions[:, : columns.shape[1]]
        hidden = self.norm(self.context(columns))
        wanted = output_hidden_states or self.config.output_hidden_states
        return LineEncoderOutput(
            last_hidden_state=hidden,
            hidden_states=(columns, hidden) if wanted else None,
            reshaped_hidden_states=(hidden.transpose(1, 2).unsqueeze(2),) if wanted else None,
        )


AutoConfig.register(LineEncoderConfig.model_type, LineEncoderConfig)
AutoModel.register(LineEncoderConfig, LineEncoderModel)
