"""Helpers the torch twins share: the NumPy layers' initial draws, the input checks of their forward passes,
and the baseline's twin (:func:`standard_conv`)."""
from __future__ import annotations

import math

import torch
from torch import nn


def uniform_(tensor: torch.Tensor, bound: float, rng) -> None:
    """U(-bound, bound): from the NumPy Generator ``rng`` (the NumPy layer's draws) or from torch's generator."""
    with torch.no_grad():
        if rng is None:
            nn.init.uniform_(tensor, -bound, bound)
        else:
            tensor.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=tuple(tensor.shape))))


def check_input(x: torch.Tensor, in_channels: int, kernel_size, padding) -> None:
    """The forward-pass checks of a twin: 4 dimensions, the layer's channel count, a kernel that fits the padded input."""
    if x.dim() != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"x has {x.shape[1]} channels but the layer expects in_channels={in_channels}")
    (kh, kw), (ph, pw) = kernel_size, padding
    if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
        raise ValueError(f"kernel_size={kernel_size} is larger than the padded input "
                         f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw} (padding={padding})")


def standard_conv(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None, *, device=None,
                  dtype=None) -> nn.Conv2d:
    """The baseline's twin: an ``nn.Conv2d`` whose weight, then bias, are drawn from the NumPy Generator ``rng``
    as :class:`minilib.layers.Conv2d` draws them, U(±1/sqrt(c*kh*kw)) (``nn.Conv2d``'s own bound), so one seed
    gives the same layer in both backends; without ``rng``, ``nn.Conv2d``'s own initialisation."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                     device=device, dtype=dtype)
    if rng is not None:
        bound = 1.0 / math.sqrt(conv.weight[0].numel())
        uniform_(conv.weight, bound, rng)
        if conv.bias is not None:
            uniform_(conv.bias, bound, rng)
    return conv
