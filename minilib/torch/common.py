"""Helpers the torch twins share: the NumPy layers' initial draws, the checks of the torch side's arguments and
of the twins' forward inputs, and the baseline's twin (:func:`standard_conv`).

Every check raises an error that names the argument, the value it got and the rule it broke: a ``TypeError`` for
a value of the wrong kind (a string for a flag, a NumPy array for a tensor, an integer tensor), a ``ValueError``
for one of the right kind out of range. The rules for plain values (numbers, counts, flags, choices, seeds, memory)
are :mod:`minilib.checks`', the NumPy core's, reused here; only what is about torch (tensors, torch dtypes, modules,
None as torch's generator) is checked here.
Values inside tensors are never checked: layers propagate NaN and inf as torch's do (the training loops stop on a
non-finite loss, :mod:`minilib.training`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import checks

# The dtypes a layer or builder of minilib.torch is made in (their names as ``build`` and the trainer take them).
# A built model may still be cast (``.half()``) or run under autocast: the forward checks accept an input of the
# parameters' own dtype, and any floating input under autocast, which casts it itself.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def show(value, limit: int = 60) -> str:
    """``value`` for a message: its type and, for short values, its repr (``str 'x'``, ``ndarray``)."""
    kind = type(value).__name__
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{kind} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return kind if len(text) > limit else f"{kind} {text}"


# ----------------------------------------------------------------------------- scalar arguments
# The rules a number, a count, a flag, a choice or a seed must follow are the NumPy core's (minilib.checks): one
# validation layer, one message for one mistake. The torch side only adds None meaning torch's own generator.
flag = checks.flag          # a real bool (NumPy's bool_ too); 1, "no" or None are not flags
choice = checks.one_of      # one of a few allowed strings; a non-string (even an unhashable one) is a TypeError
integer = checks.integer    # an int (NumPy integers too, bools not) >= minimum; None too with allow_none

# real()'s rules as the bounds of checks.number
RULES = {">= 0": dict(low=0), "> 0": dict(low=0, low_open=True), "[0, 1)": dict(low=0, high=1, high_open=True),
         "any": {}}


def real(value, name: str, rule: str = ">= 0", allow_none: bool = False) -> float | None:
    """A finite real number satisfying ``rule``: ``">= 0"``, ``"> 0"``, ``"[0, 1)"`` or ``"any"``
    (:func:`minilib.checks.number`); None too with ``allow_none``.

    ``TypeError`` for a non-number (bools included: ``True`` is no learning rate), ``ValueError`` for NaN, inf or
    a number outside the rule, e.g. ``lr=inf must be a finite number >= 0``, ``momentum=1 must be in [0, 1)``.
    """
    if value is None and allow_none:
        return None
    return checks.number(value, name, **RULES[rule])


def generator(rng, name: str = "rng") -> np.random.Generator | None:
    """The NumPy Generator ``rng`` stands for (:func:`minilib.checks.rng`): a Generator as it is, an int seed >= 0
    as ``numpy.random.default_rng(seed)``; but None stays None (the caller's default: torch's own generator for a
    twin, a fresh NumPy one for a builder that draws every layer from one generator)."""
    return None if rng is None else checks.rng(rng, name)


def dtype_of(dtype, name: str = "dtype", allow_none: bool = True) -> torch.dtype | None:
    """``torch.float32`` or ``torch.float64``, given as the torch dtype or its name (:data:`DTYPES`); None (torch's
    default dtype) with ``allow_none``. Other floating dtypes are refused: the layers are made in these two (cast a
    built model with ``.half()`` or use autocast for less)."""
    if dtype is None and allow_none:
        return None
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    allowed = "torch.float32, torch.float64 (or their names 'float32', 'float64')" + (" or None" if allow_none else "")
    if isinstance(dtype, (str, torch.dtype)):
        raise ValueError(f"{name}={dtype!r} must be one of {allowed}")
    raise TypeError(f"{name} must be one of {allowed}, got {show(dtype)}")


def module(value, name: str = "module") -> nn.Module:
    """A ``torch.nn.Module``; a NumPy minilib model is named as such, with the torch way to the same network."""
    if isinstance(value, nn.Module):
        return value
    from ..layers import Module as NumpyModule          # the NumPy core: no torch import there
    if isinstance(value, NumpyModule):
        raise TypeError(f"{name} is a NumPy minilib model ({type(value).__name__}), not a torch.nn.Module: build "
                        f"the network with minilib.torch (the twins VersatileConv2d, BasisConv2d, FullStackConv2d, "
                        f"or minilib.torch.models.build / lenet for a spec) instead of converting the NumPy one")
    raise TypeError(f"{name} must be a torch.nn.Module, got {show(value)}")


def parameters_fit(layer: str, shapes, dtype: torch.dtype | None, cause: str) -> None:
    """Refuse a twin whose parameters would not fit in memory before torch allocates them, as the NumPy layers are
    refused (:func:`minilib.layers.check_parameters`): a ``ValueError`` giving the size and ``cause``, the
    constructor arguments behind it, instead of torch's allocation error (or an overflowed storage size).
    ``shapes``: (name, shape) pairs; ``dtype``: the layer's (None: torch's default)."""
    from ..layers import check_parameters               # the NumPy core: no torch import there
    check_parameters(layer, shapes, cause, torch.get_default_dtype() if dtype is None else dtype)


# ----------------------------------------------------------------------------- tensors
def tensor(x, name: str = "x") -> torch.Tensor:
    """A floating ``torch.Tensor``: a NumPy array is told to go through ``torch.from_numpy``."""
    if isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor, got a numpy.ndarray of shape {x.shape}; pass "
                        f"torch.from_numpy({name}) (the NumPy layers of minilib take arrays)")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {show(x)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}; convert it, e.g. {name}.float()")
    return x


# the dtypes autocast casts to its own (it leaves float64 alone)
AUTOCAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def same_dtype(x: torch.Tensor, parameter: torch.Tensor, name: str = "x") -> None:
    """``x`` in the dtype of the layer's ``parameter``, as ``F.conv2d`` needs; under autocast, both in dtypes
    autocast casts (float32, float16, bfloat16)."""
    if x.dtype == parameter.dtype:
        return
    if torch.is_autocast_enabled(x.device.type) and x.dtype in AUTOCAST_DTYPES and parameter.dtype in AUTOCAST_DTYPES:
        return
    raise TypeError(f"{name} has dtype {x.dtype} but the layer's parameters are {parameter.dtype}; convert one "
                    f"to the other (e.g. {name}.to({parameter.dtype}) or layer.to({x.dtype}))")


def check_input(x, in_channels: int, kernel_size, padding, parameter: torch.Tensor | None = None) -> None:
    """The forward-pass checks of a twin: a floating ``torch.Tensor`` of 4 dimensions with the layer's channel
    count, in the dtype of the layer's ``parameter`` (when given; :func:`same_dtype`), and a kernel that fits the
    padded input.
    An empty batch (N = 0) passes: the twins then return an empty output, as ``nn.Conv2d`` does."""
    tensor(x)
    if x.dim() != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"x has {x.shape[1]} channels but the layer expects in_channels={in_channels}")
    if parameter is not None:
        same_dtype(x, parameter)
    (kh, kw), (ph, pw) = kernel_size, padding
    if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
        raise ValueError(f"kernel_size={kernel_size} is larger than the padded input "
                         f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw} (padding={padding})")


# ----------------------------------------------------------------------------- initialisation
def uniform_(tensor: torch.Tensor, bound: float, rng) -> None:
    """U(-bound, bound): from the NumPy Generator ``rng`` (the NumPy layer's draws) or from torch's generator."""
    with torch.no_grad():
        if rng is None:
            nn.init.uniform_(tensor, -bound, bound)
        else:
            tensor.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=tuple(tensor.shape))))


def standard_conv(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None, *, device=None,
                  dtype=None) -> nn.Conv2d:
    """The baseline's twin: an ``nn.Conv2d`` whose weight, then bias, are drawn from the NumPy Generator ``rng``
    as :class:`minilib.layers.Conv2d` draws them, U(±1/sqrt(c*kh*kw)) (``nn.Conv2d``'s own bound), so one seed
    gives the same layer in both backends; without ``rng``, ``nn.Conv2d``'s own initialisation. ``rng`` may be an
    int seed; ``dtype`` float32 or float64 (or None, torch's default)."""
    in_channels = checks.positive_int(in_channels, "in_channels")
    out_channels = checks.positive_int(out_channels, "out_channels")
    kernel_size = checks.positive_pair(kernel_size, "kernel_size")
    stride = checks.positive_pair(stride, "stride")
    padding = checks.non_negative_pair(padding, "padding")
    bias, rng, dtype = flag(bias, "bias"), generator(rng), dtype_of(dtype)
    parameters_fit("Conv2d", [("weight", (out_channels, in_channels, *kernel_size))], dtype,
                   f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={kernel_size}")
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                     device=device, dtype=dtype)
    if rng is not None:
        bound = 1.0 / math.sqrt(conv.weight[0].numel())
        uniform_(conv.weight, bound, rng)
        if conv.bias is not None:
            uniform_(conv.bias, bound, rng)
    return conv
