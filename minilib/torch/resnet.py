"""CIFAR ResNets (He et al., CVPR 2016, Sec. 4.2) whose 3x3 convolutions are the efficient-filter twins.

:func:`cifar_resnet` builds the 6n+2-layer network of He et al. for 32x32 inputs: a 3x3 stem
convolution (w channels), three stages of n basic blocks each (widths w, 2w, 4w; the first
block of stages 2 and 3 halves the resolution with stride 2), global average pooling and a
linear classifier. A basic block is conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU;
the shortcut is option A: parameter-free, the identity, or where the block downsamples, the
input subsampled with stride 2 (``x[:, :, ::2, ::2]``) and zero-padded with (2w - w)/2 channels
on each side (the filter-basis release averages 2x2 pixels instead of subsampling).

``method`` (a name of :data:`minilib.methods.REGISTRY`, keywords in its vocabulary) replaces the 2*3*n
block convolutions; the stem convolution and the classifier stay standard (``nn.Conv2d`` /
``nn.Linear``), as in the papers' CNNs. Every convolution has no bias (BatchNorm follows it).

- ``"baseline"``: ``nn.Conv2d``.
- ``"basis"``: :class:`~minilib.torch.basis.BasisConv2d` (Li et al., ICCV 2019, Eq. 9-11):
  m basis filters of p channels, s = c/p splits, coefficients (n, s*m). ``n_basis`` m and
  ``basis_channels`` p are an int or one value per stage (default: p = the stage width, s = 1). With
  ``share_basis=True`` (the released ResNet-56 config, Sec. 4.2) there is ONE
  :class:`~minilib.torch.basis.SharedBasis` per stage, shared by every block convolution that reads
  that stage's width: as in the released ``ResNet_Basis_Blockwise``, the downsampling convolution at
  the start of stage i+1 reads w_i channels and therefore uses stage i's basis. The bases live in
  ``model.bases`` (one entry per stage).
- ``"fullstack"``: :class:`~minilib.torch.fullstack.FullStackConv2d` (Han et al., NeurIPS 2019,
  Eq. 3-5): k = n/s full-stack filters with s binary masks each; ``s``, ``masks`` ("separate" is
  MVNet-B, the default here), ``learn_masks``, ``n_filters``.
- ``"versatile"``: :class:`~minilib.torch.versatile.VersatileConv2d` (Wang et al., NeurIPS 2018,
  Eq. 2-3, 8): a 3x3 primary filter yields s = 2 spatial secondaries (3x3 and its centre 1x1), so
  P = n/2 primaries; ``delta`` and ``g`` add channel versatility (default 0 and 1: spatial only), and
  ``shared_bias``, ``combine``, ``channel_mode`` as the layer.

Initialisation: every layer draws from one NumPy ``rng`` in construction order (stem, shared bases,
blocks in order with each conv1 before its conv2, classifier last), with the
``nn.Conv2d`` bound U(±1/sqrt(fan_in)) the twins use; BatchNorm starts at weight 1, bias 0. So
the same seed gives the same initial network.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks, methods
from .basis import SharedBasis
from .common import dtype_of, flag, standard_conv, uniform_

METHODS = tuple(methods.REGISTRY)
STAGES = 3                      # CIFAR ResNets: widths w, 2w, 4w
# this builder's defaults for the methods' keywords (the released ResNet-56 shares a basis per stage; MVNet-B);
# basis_channels defaults to each stage's width (s = 1)
DEFAULTS = {
    "basis": {"share_basis": True},
    "fullstack": {"masks": "separate", "learn_masks": True},
    "versatile": {"delta": 0, "g": 1},
}


class ShortcutA(nn.Module):
    """Option-A shortcut (He et al., Sec. 4.2): identity, or stride-s subsampling plus zero channels; no parameters.

    ``in_channels`` -> ``out_channels`` (out - in must be even: half the new channels go before,
    half after the input's, as the common CIFAR implementations do).
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.in_channels = checks.positive_int(in_channels, "in_channels")
        self.out_channels = checks.positive_int(out_channels, "out_channels")
        self.stride = checks.positive_int(stride, "stride")
        extra = self.out_channels - self.in_channels
        if extra < 0 or extra % 2:
            raise ValueError(f"out_channels={out_channels} - in_channels={in_channels} must be even and >= 0: "
                             f"the option-A shortcut pads the new channels with zeros, half on each side")
        self.pad = extra // 2

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad, self.pad))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """conv1 (3x3, stride) - BN - ReLU - conv2 (3x3) - BN, plus the option-A shortcut, then ReLU."""

    def __init__(self, conv1, conv2, in_channels, out_channels, stride=1, dtype=None):
        super().__init__()
        self.conv1, self.bn1 = conv1, nn.BatchNorm2d(out_channels, dtype=dtype)
        self.conv2, self.bn2 = conv2, nn.BatchNorm2d(out_channels, dtype=dtype)
        self.shortcut = ShortcutA(in_channels, out_channels, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """stem conv-BN-ReLU, ``stages`` (an ``nn.Sequential`` of three ``nn.Sequential``s of :class:`BasicBlock`),
    global average pooling, ``classifier``; ``bases`` holds the shared filter bases (empty unless shared)."""

    def __init__(self, stem, stages, classifier, bases=()):
        super().__init__()
        self.bases = nn.ModuleList(bases)   # first, so named_parameters lists a shared basis as bases.<stage>.basis
        self.stem, self.bn = stem, nn.BatchNorm2d(stem.out_channels, dtype=stem.weight.dtype)
        self.stages = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x):
        x = self.stages(F.relu(self.bn(self.stem(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def block_convs(self) -> list:
        """(qualified name, layer) of the 3x3 convolutions inside the blocks: the ones ``method`` replaces."""
        return [(name, module) for name, module in self.named_modules() if name.endswith((".conv1", ".conv2"))]


def blocks_per_stage(depth) -> int:
    """n of a 6n+2-layer CIFAR ResNet (depth 20 -> 3, 56 -> 9)."""
    depth = checks.positive_int(depth, "depth")
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth={depth} must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, ...): a stem conv, "
                         f"three stages of n two-conv blocks and the classifier")
    return (depth - 2) // 6


def _per_stage(value, name) -> tuple:
    """An int for every stage, or one value per stage, as a tuple of :data:`STAGES` positive ints."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * STAGES
    if len(values) != STAGES:
        raise ValueError(f"{name}={value!r} must be one int or {STAGES} ints (one per stage)")
    return tuple(checks.positive_int(v, name) for v in values)


def _method_options(method, method_kw, widths) -> dict:
    """The method's keywords with this builder's defaults filled in; unknown or missing ones raise
    :class:`minilib.methods.KeywordError`."""
    options = {**DEFAULTS.get(method, {}), **method_kw}
    if method == "basis":
        options.setdefault("basis_channels", widths)
    methods.check_keywords(method, options, "network", among=METHODS)
    return options


class _ConvFactory:
    """Builds the block convolutions of one method, in order, from one rng (and owns the shared bases)."""

    def __init__(self, method, widths, options, rng, dtype):
        self.twin = methods.get(method).twin_class()
        self.method, self.widths, self.options, self.rng, self.dtype = method, widths, options, rng, dtype
        self.bases = []
        if method == "basis":
            self.n_basis = _per_stage(options["n_basis"], "n_basis")
            self.basis_channels = _per_stage(options["basis_channels"], "basis_channels")
            for width, p in zip(widths, self.basis_channels):
                if width % p:
                    raise ValueError(f"basis_channels={p} must divide the stage width {width}: the c input channels "
                                     f"are cut into s = c/p splits of p channels (Eq. 9)")
            flag(options["share_basis"], "share_basis")
            if options["share_basis"]:
                self.bases = [SharedBasis(m, p, 3, rng=rng, dtype=dtype)
                              for m, p in zip(self.n_basis, self.basis_channels)]

    def __call__(self, in_channels, out_channels, stride):
        options = self.options
        if self.method == "basis":
            stage = self.widths.index(in_channels)      # the stage whose width the conv reads (released config)
            options = {"n_basis": self.n_basis[stage], "basis_channels": self.basis_channels[stage],
                       "basis": self.bases[stage] if self.bases else None}
        return self.twin(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, rng=self.rng,
                         dtype=self.dtype, **options)


def _draw_like_twins(layer, rng) -> None:
    """Weight (then bias) U(±1/sqrt(fan_in)) from ``rng``: ``nn.Linear``'s bound, drawn as the twins draw."""
    bound = 1.0 / math.sqrt(layer.weight[0].numel())
    uniform_(layer.weight, bound, rng)
    if layer.bias is not None:
        uniform_(layer.bias, bound, rng)


def cifar_resnet(depth=20, width=16, method="baseline", num_classes=10, rng=None, dtype=torch.float32,
                 **method_kw) -> CifarResNet:
    """The CIFAR ResNet-``depth`` of He et al. with stage widths w, 2w, 4w (``width`` = w) and ``method`` convs.

    ``method_kw``: the method's keywords (:mod:`minilib.methods`, see the module docstring): for "basis"
    ``n_basis`` (m, required), ``basis_channels`` (p, default the stage width) — each an int or one value
    per stage — and ``share_basis`` (default True: one basis per stage); for "fullstack" ``s`` (required),
    ``masks`` (default "separate", MVNet-B), ``learn_masks`` (default True); for "versatile" ``delta``,
    ``g`` (default 0, 1). Bad values raise ValueError naming the argument and the rule (e.g. out_channels
    divisible by s).
    ``rng``: a NumPy Generator or an int seed (default: a fresh generator); the same seed gives the same weights.
    ``dtype``: float32 (default) or float64, a torch dtype or its name.
    Input (N, 3, 32, 32) -> scores (N, num_classes); other square sizes work alike.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {', '.join(map(repr, METHODS))}, got {type(method).__name__} "
                        f"{method!r}")
    n_blocks = blocks_per_stage(depth)
    width = checks.positive_int(width, "width")
    if width % 2:
        raise ValueError(f"width={width} must be even: the option-A shortcut pads the doubled width with "
                         f"width/2 zero channels on each side")
    num_classes = checks.positive_int(num_classes, "num_classes")
    widths = tuple(width * 2 ** i for i in range(STAGES))
    options = _method_options(method, method_kw, widths)
    dtype = dtype_of(dtype, allow_none=False)
    rng = checks.rng(rng)       # one Generator for every layer (None: a fresh one), so the layers draw in turn

    stem = standard_conv(3, width, 3, padding=1, bias=False, rng=rng, dtype=dtype)
    make_conv = _ConvFactory(method, widths, options, rng, dtype)
    stages, in_channels = [], width
    for index, out_channels in enumerate(widths):
        blocks = []
        for b in range(n_blocks):
            stride = 2 if index > 0 and b == 0 else 1
            conv1 = make_conv(in_channels, out_channels, stride)
            conv2 = make_conv(out_channels, out_channels, 1)
            blocks.append(BasicBlock(conv1, conv2, in_channels, out_channels, stride, dtype))
            in_channels = out_channels
        stages.append(nn.Sequential(*blocks))
    classifier = nn.Linear(widths[-1], num_classes, dtype=dtype)
    _draw_like_twins(classifier, rng)
    return CifarResNet(stem, nn.Sequential(*stages), classifier, make_conv.bases)
