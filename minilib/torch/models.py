"""PyTorch builder for the LeNet specs of :mod:`minilib.models`: :func:`lenet` and :func:`build`.

Layer order, names ("0.weight", ...) and parameter shapes are those of the minilib model built
from the same spec, and every layer draws its initial weights from the same NumPy ``rng`` in the
same order (each method's twin from :data:`minilib.methods.REGISTRY`), so one seed gives the same
network in both backends. This module imports the NumPy specs; the NumPy side never imports it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models import method_of, resolve, variant

LAYERS = {                  # kind -> factory(**kwargs) of the layers that are no method's convolution
    "maxpool": lambda **kw: nn.MaxPool2d(**kw),
    "relu": lambda: nn.ReLU(),
    "flatten": lambda: nn.Flatten(),
}


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build(spec, in_channels=1, num_classes=10, rng=None, dtype=torch.float64) -> nn.Sequential:
    """A ``torch.nn.Sequential`` from a spec of :mod:`minilib.models` (float64 by default, like minilib);
    ``dtype`` a torch dtype or its name, ``"float32"`` or ``"float64"``."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} must be one of {', '.join(map(repr, DTYPES))} or a torch dtype")
        dtype = DTYPES[dtype]
    rng = np.random.default_rng() if rng is None else rng
    layers = []
    for kind, channels, kwargs in resolve(spec, in_channels, num_classes):
        method = method_of(kind, kwargs, "twin")
        layers.append(LAYERS[kind](**kwargs) if method is None else method.twin_class()(channels, rng=rng,
                                                                                         dtype=dtype, **kwargs))
    return nn.Sequential(*layers)


def lenet(name="baseline", *, rng=None, in_channels=1, num_classes=10, dtype=torch.float64) -> nn.Sequential:
    """The LeNet variant ``name`` of :data:`minilib.models.VARIANTS` in PyTorch: :func:`minilib.models.lenet`'s
    network, with the same weights for the same ``rng`` (a ``numpy.random.Generator``); float64 by default
    (``.float()`` trains faster)."""
    spec = variant(name)
    return build(spec, in_channels, num_classes, np.random.default_rng() if rng is None else rng, dtype)
