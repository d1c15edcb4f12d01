"""Initialisation shared by the torch twins: the NumPy layers' draws, so both backends can start identical."""
from __future__ import annotations

import torch
from torch import nn


def uniform_(tensor: torch.Tensor, bound: float, rng) -> None:
    """U(-bound, bound): from the NumPy Generator ``rng`` (the NumPy layer's draws) or from torch's generator."""
    with torch.no_grad():
        if rng is None:
            nn.init.uniform_(tensor, -bound, bound)
        else:
            tensor.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=tuple(tensor.shape))))
