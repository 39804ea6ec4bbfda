"""worldgen: a simulated model-API provider's traffic, with distillation campaigns and ground truth."""

from .world import generate

__all__ = ["generate"]
