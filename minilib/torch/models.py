"""PyTorch builder for the LeNet specs of :mod:`minilib.models`: :func:`lenet` and :func:`build`.

Layer order, names ("0.weight", ...) and parameter shapes are those of the minilib model built
from the same spec, and every layer draws its initial weights from the same NumPy ``rng`` in the
same order (each method's twin from :data:`minilib.methods.REGISTRY`), so one seed gives the same
network in both backends. This module imports the NumPy specs; the NumPy side never imports it.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import checks
from ..models import method_of, resolve, variant
from .common import dtype_of

LAYERS = {                  # kind -> factory(**kwargs) of the layers that are no method's convolution
    "maxpool": lambda **kw: nn.MaxPool2d(**kw),
    "relu": lambda: nn.ReLU(),
    "flatten": lambda: nn.Flatten(),
}


def _check_spec(spec) -> None:
    """A spec is a list (or tuple) of ``(kind, keywords)`` pairs, ``kind`` a string and ``keywords`` a dict."""
    if not isinstance(spec, (list, tuple)):
        raise TypeError(f"spec must be a list of (kind, keywords) pairs, got {type(spec).__name__}")
    for index, layer in enumerate(spec):
        if not (isinstance(layer, (list, tuple)) and len(layer) == 2 and isinstance(layer[0], str)
                and isinstance(layer[1], dict)):
            raise TypeError(f"spec[{index}]={layer!r} must be a (kind, keywords) pair: a layer kind (str) and "
                            f"a dict of its keywords")


def build(spec, in_channels=1, num_classes=10, rng=None, dtype=torch.float64) -> nn.Sequential:
    """A ``torch.nn.Sequential`` from a spec of :mod:`minilib.models` (float64 by default, like minilib);
    ``dtype`` ``torch.float32`` or ``torch.float64``, or its name, ``"float32"`` or ``"float64"``; ``rng`` a
    NumPy Generator, an int seed, or None (a fresh generator)."""
    _check_spec(spec)
    in_channels = checks.positive_int(in_channels, "in_channels")
    num_classes = checks.positive_int(num_classes, "num_classes")
    dtype = dtype_of(dtype, allow_none=False)
    rng = checks.rng(rng)       # one Generator for every layer (None: a fresh one), so the layers draw in turn
    layers = []
    for kind, channels, kwargs in resolve(spec, in_channels, num_classes):
        method = method_of(kind, kwargs, "twin")
        layers.append(LAYERS[kind](**kwargs) if method is None else method.twin_class()(channels, rng=rng,
                                                                                         dtype=dtype, **kwargs))
    return nn.Sequential(*layers)


def lenet(name="baseline", *, rng=None, in_channels=1, num_classes=10, dtype=torch.float64) -> nn.Sequential:
    """The LeNet variant ``name`` of :data:`minilib.models.VARIANTS` in PyTorch: :func:`minilib.models.lenet`'s
    network, with the same weights for the same ``rng`` (a ``numpy.random.Generator``); float64 by default
    (``.float()`` trains faster). ``rng`` may also be an int seed."""
    spec = variant(name)
    return build(spec, in_channels, num_classes, rng, dtype)
