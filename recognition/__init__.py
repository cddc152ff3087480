"""Handwritten text recognition engine (TrOCR-style models), independent of Django.

Submodules import torch/transformers lazily so ``import recognition`` stays cheap.
"""
