"""Synthetic handwritten text lines rendered with Pillow in handwriting fonts."""

from recognition.synth.dataset import SyntheticLines, write_imagefolder
from recognition.synth.fonts import HELD_OUT_FAMILIES, FontSpec, discover_fonts

__all__ = ["HELD_OUT_FAMILIES", "FontSpec", "SyntheticLines", "discover_fonts", "write_imagefolder"]
