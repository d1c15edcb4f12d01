"""A torch LeNet started from a trained baseline: every basis layer set to the filter-basis fit of the baseline
convolution at its position (:func:`minilib.basis.from_conv`, the SVD start of the basis paper), every other
convolution copied (chapter 10's ``basis-from-conv`` runs)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..basis import approximation_error, from_conv
from .basis import BasisConv2d


def start_from_conv(model, state: dict) -> dict:
    """Set every basis layer of the torch LeNet ``model`` to :func:`minilib.basis.from_conv` of the baseline
    weight at the same position in ``state`` (a baseline ``state_dict`` as arrays), copying the biases, and
    copy every ordinary convolution (the classifier) as it is.

    Returns ``{layer index: relative error ||W - B A||_F / ||W||_F}`` of each fit (0 when m reaches the rank).
    """
    errors = {}
    with torch.no_grad():
        for index, layer in enumerate(model):
            if not isinstance(layer, (BasisConv2d, nn.Conv2d)):
                continue
            weight = np.asarray(state[f"{index}.weight"], dtype=np.float64)
            if isinstance(layer, BasisConv2d):
                found = (layer.out_channels, layer.in_channels, *layer.kernel_size)
                if weight.shape != found:
                    raise ValueError(f"state['{index}.weight'] has shape {weight.shape}; basis layer {index} "
                                     f"replaces a convolution of shape {found}")
                basis, coeff = from_conv(weight, layer.n_basis, layer.basis_channels)
                layer.basis.copy_(torch.from_numpy(basis))
                layer.coeff.copy_(torch.from_numpy(coeff))
                errors[index] = approximation_error(weight, basis, coeff)
            else:
                layer.weight.copy_(torch.from_numpy(weight))
            if layer.bias is not None:
                layer.bias.copy_(torch.from_numpy(np.asarray(state[f"{index}.bias"])))
    return errors
