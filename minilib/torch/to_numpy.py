"""From a torch twin back to minilib's NumPy layer: the same constructor arguments and the same weights, so that a
NumPy measurement (a latency, a check) belongs to the very layer a torch model trained."""
from __future__ import annotations

import numpy as np
from torch import nn

from .. import basis, fullstack, layers, versatile
from .basis import BasisConv2d
from .fullstack import FullStackConv2d
from .versatile import VersatileConv2d


def numpy_twin(layer):
    """The NumPy layer (minilib) with the same constructor arguments and weights as the torch ``layer``.

    ``layer``: ``nn.Conv2d`` or a twin of :mod:`minilib.torch`. A basis layer that uses a
    shared basis gets its own copy of the channels it convolves with (``layer_basis()``).
    The result is float32, as the torch model.
    """

    if not isinstance(layer, (VersatileConv2d, BasisConv2d, FullStackConv2d, nn.Conv2d)):
        raise TypeError(f"layer must be nn.Conv2d or a minilib.torch twin (VersatileConv2d, BasisConv2d, "
                        f"FullStackConv2d), got {type(layer).__name__}")
    common = {"stride": layer.stride, "padding": layer.padding, "bias": layer.bias is not None}
    state = {name: value.detach().cpu().numpy() for name, value in layer.state_dict().items()}
    if isinstance(layer, VersatileConv2d):
        twin = versatile.VersatileConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, delta=layer.delta,
                                         g=layer.g, shared_bias=layer.shared_bias, combine=layer.combine,
                                         channel_mode=layer.channel_mode, **common)
    elif isinstance(layer, BasisConv2d):
        twin = basis.BasisConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.n_basis,
                                 layer.basis_channels, **common)
        state["basis"] = layer.layer_basis().detach().cpu().numpy()
    elif isinstance(layer, FullStackConv2d):
        twin = fullstack.FullStackConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.s,
                                         masks=layer.masks, learn_masks=layer.learn_masks,
                                         n_filters=layer.n_filters, **common)
    else:
        if layer.groups != 1 or layer.padding_mode != "zeros":
            raise ValueError(f"nn.Conv2d with groups={layer.groups}, padding_mode={layer.padding_mode!r} has no "
                             f"NumPy twin: minilib.layers.Conv2d needs groups=1 and zero padding")
        twin = layers.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, dilation=layer.dilation,
                             **common)
    twin = twin.astype(np.float32)
    twin.load_state_dict(state)
    return twin
