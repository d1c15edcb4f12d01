"""PyTorch twin of :class:`minilib.basis.BasisConv2d` and :class:`minilib.basis.SharedBasis` (Li et al., ICCV 2019).

Same constructor arguments, parameter names ("basis", "coeff", "bias"), shapes and output of
the NumPy layer, so weights copy across by ``state_dict`` name. Symbols as in the paper:
c in_channels, n out_channels, k x k kernel, s splits of p = c/s channels (``basis_channels``),
m basis filters (``n_basis``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..basis import basis_cost, configure_layer
from .common import check_input, choice, dtype_of, flag, generator, parameters_fit, uniform_

# How the forward pass computes Li et al.'s Eq. 11 (``split_mode``, the layer's formulation): every one gives the same
# numbers in exact arithmetic and the same gradients (float32 rounding may differ in the last bits).
# :mod:`minilib.torch.formulations` times them per layer and picks the fastest.
SPLIT_MODES = ("reshape", "loop", "grouped", "dense")
DEFAULT_SPLIT_MODE = "reshape"
FORMULATIONS, DEFAULT_FORMULATION = SPLIT_MODES, DEFAULT_SPLIT_MODE


class SharedBasis(nn.Module):
    """m basis filters B̄_1..B̄_m of size p x kh x kw that several layers share (Sec. 4.2).

    Parameter ``basis`` (m, p, kh, kw), initialised like a ``Conv2d`` weight of fan-in p*kh*kw.
    Pass the module as ``basis=`` to every :class:`BasisConv2d` that uses it; a layer with
    fewer basis channels than p takes the first ones (the DenseNet slice of Fig. 3).
    """

    def __init__(self, n_basis, basis_channels, kernel_size, rng=None, *, device=None, dtype=None):
        super().__init__()
        self.n_basis = checks.positive_int(n_basis, "n_basis")
        self.basis_channels = checks.positive_int(basis_channels, "basis_channels")
        self.kernel_size = checks.positive_pair(kernel_size, "kernel_size")
        rng, dtype = generator(rng), dtype_of(dtype)
        parameters_fit("SharedBasis", [("basis", (self.n_basis, self.basis_channels, *self.kernel_size))], dtype,
                       f"n_basis={n_basis}, basis_channels={basis_channels}, kernel_size={self.kernel_size}")
        self.basis = nn.Parameter(torch.empty((self.n_basis, self.basis_channels, *self.kernel_size),
                                              device=device, dtype=dtype))
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """U(-1/sqrt(p*kh*kw), +1/sqrt(p*kh*kw)), as ``nn.Conv2d`` initialises a weight of that shape."""
        uniform_(self.basis, 1.0 / math.sqrt(self.basis[0].numel()), generator(rng))

    def forward(self, x):
        raise TypeError("SharedBasis only holds a basis; pass it to BasisConv2d(..., basis=shared) and call the layers")

    def extra_repr(self) -> str:
        return f"n_basis={self.n_basis}, basis_channels={self.basis_channels}, kernel_size={self.kernel_size}"


class BasisConv2d(nn.Module):
    """A k x k convolution c -> n whose n*s filter splits are combinations of m basis filters (Eq. 9-11).

    W_i = [W̄_{i,1}; ...; W̄_{i,s}] (Eq. 9), W̄_{i,g} = sum_b coeff[i, g*m + b] B̄_b (Eq. 10), so by
    linearity x * W_i = sum_g sum_b coeff[i, g*m + b] (x̄_g * B̄_b) (Eq. 11): every input split
    x̄_g (channels g*p .. g*p + p - 1) is convolved with the m basis filters, giving s*m maps in
    split-major order g*m + b (as the released code), and a 1x1 convolution with ``coeff``
    (n, s*m) plus ``bias`` (n,) mixes them into the n outputs.

    ``split_mode`` (the layer's ``formulation``) picks how Eq. 11 runs; all give the same outputs and gradients:

    * ``"reshape"`` (default): x viewed as a batch of N*s images of p channels, ONE convolution
      with the basis;
    * ``"loop"``: s convolutions that share the basis, as the paper's implementation (Sec. 3.3);
    * ``"grouped"``: ONE convolution with s groups, the basis repeated once per split;
    * ``"dense"``: the dense weight W of Eq. 9-10 (:meth:`dense_weight`), rebuilt from ``coeff`` and
      ``basis`` in every forward pass (so autograd takes the gradients back to both through the product),
      and ONE ordinary convolution: the standard convolution's multiplications, none of Eq. 11's saving,
      but one large convolution instead of a convolution and a 1x1 mix.

    Measured on this project's 2-core CPU (float32, batch 64, nine layers with c = 32..128,
    k = 1..5, s = 2..16, paired calls), "loop" took 1.1x the time of "reshape" for
    forward+backward (geometric mean; 0.96-1.36x per layer) and 1.06x for the forward alone
    (0.91-1.47x), hence the default; ``benchmarks/basis_benchmark.py`` times both again, and
    :func:`minilib.torch.formulations.choose_formulations` times all four on a network's own layers.

    ``basis``: None (the layer owns a new one), a :class:`SharedBasis`, or the ``basis``
    parameter of another layer. A shared basis parameter (m, p', kh, kw) is registered under
    ``basis`` in every layer that uses it, as in the NumPy layer: ``state_dict`` lists it under
    each layer's name, ``named_parameters`` yields it once, its gradient is the sum over the
    layers, and a layer with p < p' convolves with the first p channels (:meth:`layer_basis`,
    the DenseNet slice of Fig. 3).

    Initialisation as in the NumPy layer, like ``nn.Conv2d`` for each of the two convolutions:
    basis U(-1/sqrt(p*kh*kw), +) (only when the layer owns it), coeff and bias
    U(-1/sqrt(s*m), +), drawn in that order from ``rng`` (a NumPy Generator: the NumPy layer's
    draws) or, without it, from torch's generator.

    Shapes: x (N, c, H, W) -> (N, n, OH, OW), OH = floor((H + 2*ph - kh) / sh) + 1, likewise OW. ``x`` is a
    floating tensor in the parameters' dtype (any floating one under autocast); N = 0 gives an empty output.
    ``rng`` may also be an int seed; ``dtype`` float32 or float64 (None: torch's default), and a shared basis
    must have the layer's dtype; ``bias`` a real bool. Bad arguments raise ``TypeError`` or ``ValueError``
    naming the argument, its value and the rule.
    """

    def __init__(self, in_channels, out_channels, kernel_size, n_basis, basis_channels, stride=1, padding=0,
                 bias=True, basis=None, rng=None, split_mode=DEFAULT_SPLIT_MODE, *, device=None, dtype=None):
        super().__init__()
        shape = configure_layer(self, in_channels, out_channels, kernel_size, n_basis, basis_channels, stride, padding)
        self.split_mode = split_mode
        bias, rng, dtype = flag(bias, "bias"), generator(rng), dtype_of(dtype)

        owned = [("basis", (shape.m, shape.p, *shape.kernel))] if basis is None else []
        parameters_fit("BasisConv2d", owned + [("coeff", (shape.n, shape.s * shape.m))], dtype,
                       f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={shape.kernel}, "
                       f"n_basis={n_basis}, basis_channels={basis_channels}")
        factory = dict(device=device, dtype=dtype)
        self.owns_basis = basis is None
        if basis is None:
            basis = nn.Parameter(torch.empty((shape.m, shape.p, *shape.kernel), **factory))
        self.basis = _shared_parameter(basis, shape)
        self.coeff = nn.Parameter(torch.empty((shape.n, shape.s * shape.m), **factory))
        if self.basis.dtype != self.coeff.dtype:
            raise TypeError(f"basis has dtype {self.basis.dtype} but the layer is made in {self.coeff.dtype} "
                            f"(dtype={dtype}); give the layer the shared basis's dtype")
        self.bias = nn.Parameter(torch.empty(shape.n, **factory)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """Draw basis (if the layer owns it), coeff and bias, in that order (see the class docstring)."""
        rng = generator(rng)
        if self.owns_basis:
            uniform_(self.basis, 1.0 / math.sqrt(self.basis[0].numel()), rng)
        bound = 1.0 / math.sqrt(self.splits * self.n_basis)
        for param in (self.coeff, self.bias):
            if param is not None:
                uniform_(param, bound, rng)

    def layer_basis(self) -> torch.Tensor:
        """(m, p, kh, kw): the basis this layer convolves with; the first p channels of a wider shared one."""
        return self.basis if self.basis.shape[1] == self.basis_channels else self.basis[:, :self.basis_channels]

    @property
    def split_mode(self) -> str:
        """How :meth:`forward` computes Eq. 11: one of :data:`SPLIT_MODES` (see the class docstring)."""
        return self._split_mode

    @split_mode.setter
    def split_mode(self, value) -> None:
        self._split_mode = choice(value, "split_mode", SPLIT_MODES)

    @property
    def formulation(self) -> str:
        """The layer's ``split_mode``, under the name :mod:`minilib.torch.formulations` uses for every twin."""
        return self._split_mode

    @formulation.setter
    def formulation(self, value) -> None:
        self._split_mode = choice(value, "formulation", FORMULATIONS)

    def dense_weight(self) -> torch.Tensor:
        """(n, c, kh, kw): W_i = [W̄_{i,1}; ...; W̄_{i,s}] (Eq. 9), W̄_{i,g} = sum_b coeff[i, g*m + b] B̄_b (Eq. 10),
        as :func:`minilib.basis.weight_from_basis`, differentiable in ``coeff`` and ``basis``."""
        basis, n, s = self.layer_basis(), self.out_channels, self.splits
        splits = torch.einsum("ngb,bpyx->ngpyx", self.coeff.reshape(n, s, self.n_basis), basis)
        return splits.reshape(n, s * self.basis_channels, *self.kernel_size)

    def basis_responses(self, x: torch.Tensor) -> torch.Tensor:
        """(N, s*m, OH, OW): x̄_g * B̄_b for every split g and basis filter b, channel g*m + b (Eq. 11)."""
        basis, s, p = self.layer_basis(), self.splits, self.basis_channels
        if self.split_mode == "grouped":
            # group g reads channels g*p .. g*p + p - 1 and writes its m responses to channels g*m .. g*m + m - 1
            return F.conv2d(x, basis.repeat(s, 1, 1, 1), None, self.stride, self.padding, groups=s)
        if self.split_mode == "loop":
            return torch.cat([F.conv2d(x[:, g * p:(g + 1) * p], basis, None, self.stride, self.padding)
                              for g in range(s)], dim=1)
        n, _, h, w = x.shape
        out = F.conv2d(x.reshape(n * s, p, h, w), basis, None, self.stride, self.padding)   # (N*s, m, OH, OW)
        return out.reshape(n, s * self.n_basis, *out.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.kernel_size, self.padding, self.coeff)
        if self.split_mode == "dense":
            return F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding)
        # the linear combination of Eq. 11 as a 1x1 convolution
        return F.conv2d(self.basis_responses(x), self.coeff[:, :, None, None], self.bias)

    def cost(self, in_shape, out_shape) -> dict:
        """Weights, parameters and multiplications per sample, as the NumPy layer's ``cost`` (Eq. 6, 11)."""
        return basis_cost(self, tuple(out_shape)[-2:])

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, n_basis={self.n_basis}, "
                f"basis_channels={self.basis_channels}, splits={self.splits}, stride={self.stride}, "
                f"padding={self.padding}")
        if self.bias is None:
            text += ", bias=False"
        if not self.owns_basis:
            text += f", shared basis {tuple(self.basis.shape)}"
        if self.split_mode != DEFAULT_SPLIT_MODE:
            text += f", split_mode={self.split_mode!r}"
        return text


def _shared_parameter(basis, shape) -> nn.Parameter:
    """The basis parameter of ``basis`` (a Parameter or a SharedBasis) if a layer of ``shape`` can use it."""
    if isinstance(basis, SharedBasis):
        basis = basis.basis
    if not isinstance(basis, nn.Parameter):
        raise TypeError(f"basis must be None, a SharedBasis or an nn.Parameter, got {type(basis).__name__}")
    (kh, kw), found = shape.kernel, tuple(basis.shape)
    if len(found) != 4 or found[0] != shape.m or found[1] < shape.p or found[2:] != shape.kernel:
        raise ValueError(f"basis has shape {found} but the layer needs (n_basis={shape.m}, basis_channels>={shape.p}, "
                         f"{kh}, {kw}): m filters of at least p channels and the layer's kernel size "
                         f"(Sec. 4.2, Fig. 3)")
    return basis
