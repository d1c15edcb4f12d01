"""A small EDSR (Lim et al., CVPRW 2017) whose residual blocks use efficient filters.

EDSR: head conv 3x3 (3 -> w); body = B residual blocks x + ρ conv(relu(conv(x))) (no batch
norm, residual scaling ρ) and a closing conv 3x3 (w -> w), with a skip from the head's
output around the whole body; tail = upsampler (conv 3x3 w -> w r^2, PixelShuffle(r)) and a
conv 3x3 (w -> 3). Inputs are RGB in [0, 1]; the fixed mean RGB of DIV2K (EDSR's MeanShift) is
subtracted at the input and added back at the output.

Only the two 3x3 convolutions of every residual block change with ``method`` (a name of
:data:`minilib.methods.REGISTRY`; the filter basis paper compresses exactly these, Table 1:
"parameters ... for one residual block"); the head, the body's closing conv and the tail stay
standard ``nn.Conv2d``:

* ``"baseline"``: ``nn.Conv2d(w, w, 3)``; per block 2 (9 w^2 + w) parameters;
* ``"basis"`` (Li et al., ICCV 2019, Eq. 9-11): :class:`minilib.torch.BasisConv2d` with m
  basis filters of p channels, s = w/p splits (``n_basis`` = m, ``basis_channels`` = p); per conv
  9 m p + w s m + w (Eq. 6's m p k^2 + n s m, plus biases). With ``share_basis`` the two convs
  of a block use ONE :class:`minilib.torch.SharedBasis` (Sec. 4.2, Table 1's "Basis Share"),
  stored once: per block 9 m p + 2 (w s m + w);
* ``"fullstack"`` (MVNet, Han et al., NeurIPS 2019, Eq. 3-5): :class:`minilib.torch.FullStackConv2d`
  with k = w/s full-stack filters and s masks per filter (``s``; ``masks="separate"`` is MVNet-B,
  ``"shared"`` MVNet-A; ``learn_masks``); per conv 9 k w + w 32-bit parameters plus 9 w^2
  (separate) or 9 s w (shared) 1-bit masks;
* ``"versatile"`` (Wang et al., NeurIPS 2018, Eq. 2-3, 8): :class:`minilib.torch.VersatileConv2d`, a
  3x3 primary filter giving s = 2 secondaries (3x3 and its centre 1x1) on n = delta/g + 1 channel
  windows, so P = w/(2n) primaries (``delta``, ``g``, ``shared_bias``, ...); per conv 9 P c' + w
  parameters, c' = w (ĉ with ``channel_mode="official"``).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import checks, methods
from .basis import SharedBasis
from .common import choice, flag, generator, real, standard_conv

METHODS = tuple(methods.REGISTRY)
DEFAULTS = {"fullstack": {"masks": "separate", "learn_masks": True}}    # MVNet-B unless told otherwise
DIV2K_MEAN_RGB = (0.4488, 0.4371, 0.4040)      # EDSR's MeanShift (rgb_mean of the DIV2K training images)


def _conv3x3(in_channels, out_channels, rng=None) -> nn.Conv2d:
    """A standard ``nn.Conv2d(in, out, 3, padding=1)``; with ``rng`` its weight, then bias, drawn from the NumPy
    Generator with nn.Conv2d's own distribution U(-1/sqrt(9 c), +1/sqrt(9 c))."""
    return standard_conv(in_channels, out_channels, 3, padding=1, rng=rng)


class ResidualBlock(nn.Module):
    """x + ρ conv2(relu(conv1(x))), w channels in and out, no batch norm (EDSR's ResBlock).

    ``conv1`` and ``conv2`` are 3x3, padding 1, the twins of ``method`` (see the module docstring);
    ``shared_basis`` is the block's :class:`SharedBasis` when the two basis convs share one
    (then ``conv1.basis is conv2.basis is shared_basis.basis``), else None. ``method_kw``: the
    method's keywords, as in :func:`edsr`, which validates them.
    """

    def __init__(self, width, method="baseline", res_scale=1.0, share_basis=False, rng=None, **method_kw):
        super().__init__()
        twin = methods.get(method, METHODS).twin_class()
        self.res_scale = float(res_scale)
        self.shared_basis = None
        options = {**DEFAULTS.get(method, {}), **method_kw}
        if method == "basis":
            if share_basis:
                self.shared_basis = SharedBasis(options["n_basis"], options["basis_channels"], 3, rng=rng)
            options["basis"] = self.shared_basis
        self.conv1, self.conv2 = (twin(width, width, 3, padding=1, rng=rng, **options) for _ in range(2))
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.res_scale * self.conv2(self.relu(self.conv1(x)))


class EDSR(nn.Module):
    """The network of the module docstring; x (N, 3, H, W) in [0, 1] -> (N, 3, rH, rW). Build it with :func:`edsr`."""

    def __init__(self, n_blocks, width, scale, method, res_scale, share_basis, rng, method_kw):
        super().__init__()
        self.n_blocks, self.width, self.scale, self.method = n_blocks, width, scale, method
        self.res_scale, self.share_basis, self.method_kw = res_scale, share_basis, dict(method_kw)
        self.register_buffer("rgb_mean", torch.tensor(DIV2K_MEAN_RGB).reshape(1, 3, 1, 1))
        self.head = _conv3x3(3, width, rng)
        self.blocks = nn.Sequential(*(ResidualBlock(width, method, res_scale, share_basis, rng, **method_kw)
                                      for _ in range(n_blocks)))
        self.body_end = _conv3x3(width, width, rng)
        self.upsample = nn.Sequential(_conv3x3(width, width * scale ** 2, rng), nn.PixelShuffle(scale))
        self.tail = _conv3x3(width, 3, rng)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
        features = self.head(x - self.rgb_mean)
        features = features + self.body_end(self.blocks(features))      # EDSR's long skip around the body
        return self.tail(self.upsample(features)) + self.rgb_mean


def edsr(n_blocks=4, width=32, scale=2, method="baseline", share_basis=False, res_scale=1.0, rng=None,
         **method_kw) -> EDSR:
    """A small EDSR (module docstring) with ``n_blocks`` residual blocks of ``width`` channels, x``scale``.

    ``method`` "baseline" | "basis" | "fullstack" | "versatile" sets the residual blocks' two 3x3 convs;
    its keywords are the method's (:mod:`minilib.methods`): "basis" needs ``n_basis`` (m) and
    ``basis_channels`` (p, dividing ``width``: s = width/p splits), and takes ``share_basis`` (one basis
    for both convs of a block, Sec. 4.2); "fullstack" needs ``s`` (dividing ``width``: k = width/s
    full-stack filters) and takes ``masks`` ("separate", the default: MVNet-B; "shared": MVNet-A),
    ``learn_masks`` (default True) and ``n_filters``; "versatile" takes ``delta`` and ``g`` (``width``
    divisible by s*n = 2 (delta/g + 1)), ``shared_bias``, ``combine``, ``channel_mode``. ``res_scale``
    is ρ (EDSR uses 0.1 for its widest model, 1 for the small ones; a finite number > 0). ``rng``: a NumPy
    Generator (or an int seed) from which every layer draws its initial weights in order (same seed, same
    network), or None for torch's generator. Returns a float32 :class:`EDSR`.
    """
    n_blocks = checks.non_negative_int(n_blocks, "n_blocks")
    width = checks.positive_int(width, "width")
    scale = checks.positive_int(scale, "scale")
    method = choice(method, "method", METHODS)
    share_basis = flag(share_basis, "share_basis")
    if share_basis and method != "basis":
        raise ValueError(f"share_basis=True needs method='basis' (a filter basis to share), got method={method!r}")
    res_scale = real(res_scale, "res_scale", "> 0")
    rng = generator(rng)
    methods.check_keywords(method, method_kw, "network")
    if method == "basis":
        checks.positive_int(method_kw["n_basis"], "n_basis")
        _check_divides(method_kw["basis_channels"], "basis_channels", width,
                       "s = width/p splits of p channels (Eq. 9)")
    if method == "fullstack":
        _check_divides(method_kw["s"], "s", width, "k = width/s full-stack filters (Eq. 3)")
    return EDSR(n_blocks, width, scale, method, res_scale, bool(share_basis), rng, method_kw).float()


def _check_divides(value, name, width, rule):
    value = checks.positive_int(value, name)
    if width % value:
        raise ValueError(f"{name}={value} must divide width={width}: {rule}")
