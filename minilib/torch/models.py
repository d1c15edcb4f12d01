"""PyTorch builder for the model specs of :mod:`minilib.models` (``lenet(..., backend="torch")``).

Layer order, names ("0.weight", ...) and parameter shapes are those of the minilib model built
from the same spec, and every layer draws its initial weights from the same NumPy ``rng`` in the
same order, so one seed gives the same network in both backends.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers import Conv2d as NumpyConv2d
from ..models import resolve
from .basis import BasisConv2d
from .fullstack import FullStackConv2d
from .versatile import VersatileConv2d


def _conv(c, rng, dtype, out_channels, kernel_size, **kw):
    """``nn.Conv2d`` holding the weights minilib's Conv2d draws from ``rng`` (weight, then bias)."""
    drawn = NumpyConv2d(c, out_channels, kernel_size, rng=rng, **kw)
    layer = nn.Conv2d(c, out_channels, kernel_size, **kw, dtype=dtype)
    with torch.no_grad():
        for key, value in drawn.params.items():
            getattr(layer, key).copy_(torch.from_numpy(value))
    return layer


LAYERS = {                  # kind -> factory(in_channels, rng, dtype, **kwargs), as minilib.models.LAYERS
    "conv": _conv,
    "versatile": lambda c, rng, dtype, **kw: VersatileConv2d(c, rng=rng, dtype=dtype, **kw),
    "basis": lambda c, rng, dtype, **kw: BasisConv2d(c, rng=rng, dtype=dtype, **kw),
    "fullstack": lambda c, rng, dtype, **kw: FullStackConv2d(c, rng=rng, dtype=dtype, **kw),
    "maxpool": lambda c, rng, dtype, **kw: nn.MaxPool2d(**kw),
    "relu": lambda c, rng, dtype: nn.ReLU(),
    "flatten": lambda c, rng, dtype: nn.Flatten(),
}


def build(spec, in_channels=1, num_classes=10, rng=None, dtype=torch.float64) -> nn.Sequential:
    """A ``torch.nn.Sequential`` from a spec of :mod:`minilib.models` (float64 by default, like minilib)."""
    rng = np.random.default_rng() if rng is None else rng
    layers = []
    for kind, channels, kwargs in resolve(spec, in_channels, num_classes):
        if kind not in LAYERS:
            raise ValueError(f"layer kind {kind!r} has no torch builder; known kinds: {sorted(LAYERS)}")
        layers.append(LAYERS[kind](channels, rng, dtype, **kwargs))
    return nn.Sequential(*layers)
