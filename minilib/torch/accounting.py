"""Costing torch models with :func:`minilib.accounting.summarize`: the torch tracer and torch's plain layers.

:mod:`minilib.accounting` is NumPy only and never imports torch; importing ``minilib.torch`` (which every
torch model of this project comes from) registers :data:`BACKEND`, so ``summarize`` takes a
``torch.nn.Module`` as it takes a minilib ``Module``: the same rows, the same counts.
"""
from __future__ import annotations

import torch
from torch import nn

from ..accounting import Backend, conv_cost, leaves, linear_cost, register_backend


def trace(model: nn.Module, input_shape) -> list:
    """Calls (name, module, in_shape, out_shape) of the leaves, in order, for one zero sample.

    Forward hooks record every leaf's shapes; the model runs once in eval mode without gradients, in its
    own dtype and on its own device, and its modes are restored.
    """
    found = list(leaves(model, lambda m: list(m.named_children())))
    calls = []

    def hook(name):
        return lambda module, inputs, out: calls.append(
            (name, module, tuple(inputs[0].shape[1:]), tuple(out.shape[1:])))

    handles = [module.register_forward_hook(hook(name)) for name, module in found]
    modes = [(m, m.training) for m in model.modules()]
    first = next(model.parameters(), None)
    dtype, device = (torch.get_default_dtype(), None) if first is None else (first.dtype, first.device)
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return calls


def _parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def plain_cost(module: nn.Module, out_shape) -> dict | None:
    """Costs of ``nn.Conv2d``, ``nn.Linear`` and ``nn.BatchNorm2d`` (as minilib's own layers), or None."""
    if isinstance(module, nn.Conv2d):
        return conv_cost(module, out_shape[1:])
    if isinstance(module, nn.Linear):
        return linear_cost(module.weight.numel(), _parameters(module), out_shape)
    if isinstance(module, nn.BatchNorm2d):
        # scale and shift fold into the preceding convolution at inference: parameters, no multiplications
        return {"conv_weights": 0, "mask_bits": 0, "params": _parameters(module), "flops": 0}
    return None


BACKEND = Backend(nn.Module, trace, plain_cost)
register_backend(BACKEND)
