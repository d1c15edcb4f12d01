"""Model registry for ``python -m minilib.training``: standard networks, then ``convert``ed to a method.

``MODELS`` maps a name to a :class:`ModelEntry`; :func:`build_model` builds one and swaps its convolutions for a
method's twin with :func:`minilib.torch.convert`. Every builder takes ``num_classes``, ``in_channels`` and a
``width`` multiplier (every channel count times ``width``, at least 1), so tests build the same architecture
at a few channels.

Which layers stay ordinary (:func:`default_exclude`), as the papers and released code do:

* versatile: every convolution is converted, the first included (Sec. 3.2 converts AlexNet's first
  11x11 layer; the released ``vcnn.py`` makes every VGG-16 convolution and fc6 a ``VConv2d``). For
  ``vgg16`` fc7 stays ordinary, as in ``vcnn.py`` where it is an ``nn.Linear``.
* fullstack: every convolution, and VGG-16's fc6 and fc7 ("all the fully connected layers except the last
  one in VGG-16 are regarded as convolution layers", MVNet Sec. 3.3).
* basis: the first convolution stays (3 input channels cannot be split usefully); for ``cifar-vgg16`` the
  first three, as the released ``vgg_basis.py`` decomposes only from the fourth convolution on.
* ``cifar-resnet20/56`` (:mod:`minilib.torch.resnet`) convert themselves: every block convolution, the stem
  stays, and "basis" shares one basis per stage as the released ResNet-56 (``n_basis`` and
  ``basis_channels`` or ``splits`` per stage, ``share_basis``). With an explicit ``exclude`` they are built
  plain and go through ``convert`` like the others.
* The classifier (the last ``nn.Linear``) is never converted: ``convert`` only touches ``nn.Conv2d``.

VGG-16's fc6 and fc7 are written as 7x7 and 1x1 convolutions (same weights and outputs as the linear layers
for 224x224 inputs) so that ``convert`` reaches them.

Method keywords are the method's vocabulary (:mod:`minilib.methods`), plus, for "basis", two words of the
trainer's ``--method-kw`` that are rules per layer rather than numbers, which :func:`layer_rules` turns into
the vocabulary layer by layer: ``basis_ratio`` r (m = max(1, round(r n)) basis filters, in place of
``n_basis``) and ``splits`` s (p = c/s channels, in place of ``basis_channels``; ``splits=optimal`` takes each
layer's s of Eq. 7, :func:`minilib.basis.optimal_splits`; for the CIFAR ResNets one s or one per stage).
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .. import checks
from ..basis import optimal_splits
from ..methods import KeywordError, basis_channels_from_splits
from .common import flag, real
from .convert import METHODS, convert


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _check_width(width) -> float:
    if not isinstance(width, (int, float)) or isinstance(width, bool):
        raise TypeError(f"width must be a number (the channel multiplier), got {type(width).__name__} {width!r}")
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width={width!r} must be a positive number (the channel multiplier) and finite")
    return float(width)


def _check_sizes(num_classes, in_channels, width) -> float:
    """The arguments every builder takes: class and input-channel counts (ints >= 1), the width multiplier."""
    checks.positive_int(num_classes, "num_classes")
    checks.positive_int(in_channels, "in_channels")
    return _check_width(width)


def _init_standard(model: nn.Module) -> None:
    """He initialisation for convolutions (fan_out, as torchvision's ResNet/VGG), unit batch-norm scales."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------------
# ResNet-50 (He et al. 2016), stride on the 3x3 convolution of each bottleneck (torchvision's "v1.5")
# --------------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride) -> 1x1 expand by 4, batch norm after each, identity or projection shortcut."""
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet50(nn.Module):
    """ResNet-50: 7x7/2 stem, 3x3/2 max pool, stages of 3, 4, 6, 3 bottlenecks, global average pool, fc."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        width = _check_sizes(num_classes, in_channels, width)
        stem = _scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = stem
        stages = []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            planes = _scaled(planes, width)
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(channels, planes, stride if b == 0 else 1))
                channels = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        _init_standard(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# --------------------------------------------------------------------------------------------------
# VGG-16 (Simonyan & Zisserman 2015, configuration D)
# --------------------------------------------------------------------------------------------------

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg_features(in_channels: int, width: float, batch_norm: bool, bias: bool) -> tuple[nn.Sequential, int]:
    layers, channels = [], in_channels
    for item in VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        out = _scaled(item, width)
        layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=bias))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        channels = out
    return nn.Sequential(*layers), channels


class VGG16(nn.Module):
    """VGG-16 for ImageNet: 13 3x3 convolutions, fc6 (a 7x7 conv), fc7 (a 1x1 conv), fc8 (linear).

    An adaptive average pool to 7x7 precedes fc6 (as torchvision's VGG), so any input size works;
    at 224x224 it is the identity. ``batch_norm=False`` is the original network (the papers' baseline).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, batch_norm: bool = False,
                 dropout: float = 0.5):
        super().__init__()
        width = _check_sizes(num_classes, in_channels, width)
        batch_norm, dropout = flag(batch_norm, "batch_norm"), real(dropout, "dropout", "[0, 1)")
        self.features, channels = _vgg_features(in_channels, width, batch_norm, bias=not batch_norm)
        hidden = _scaled(4096, width)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.fc6 = nn.Conv2d(channels, hidden, 7)
        self.fc7 = nn.Conv2d(hidden, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.fc8 = nn.Linear(hidden, num_classes)
        _init_standard(self)
        nn.init.normal_(self.fc8.weight, 0, 0.01)
        nn.init.zeros_(self.fc8.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        x = self.drop6(self.relu(self.fc6(x)))
        x = self.drop7(self.relu(self.fc7(x)))
        return self.fc8(x.flatten(1))


class CifarVGG16(nn.Module):
    """VGG-16 for 32x32 inputs: the 13 convolutions with batch norm, then one linear layer on the 1x1x512 map.

    The variant the filter-basis paper compares on ("only one instead of three fully-connected layer is
    appended after the last pooling layer", Sec. 5.2, following [45]); convolutions keep their bias, as the
    released ``vgg_basis.py``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        width = _check_sizes(num_classes, in_channels, width)
        self.features, channels = _vgg_features(in_channels, width, batch_norm=True, bias=True)
        self.classifier = nn.Linear(channels, num_classes)
        _init_standard(self)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class TinyCNN(nn.Module):
    """Two 3x3 convolutions (8 and 16 channels times ``width``), global average pool, linear; no batch norm
    and no dropout, so a run on W processes equals a run on one (nothing in the model depends on the batch)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        width = _check_sizes(num_classes, in_channels, width)
        hidden1, hidden2 = _scaled(8, width), _scaled(16, width)
        self.conv1 = nn.Conv2d(in_channels, hidden1, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden1, hidden2, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(hidden2, num_classes)

    def forward(self, x):
        x = self.relu(self.conv2(self.relu(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


def _cifar_resnet(depth: int) -> Callable[..., nn.Module]:
    """A builder for :func:`minilib.torch.resnet.cifar_resnet` (option-A shortcuts), which converts its block
    convolutions itself: the stem stays an ``nn.Conv2d``, and for "basis" there is one basis per stage shared
    by its blocks, as the released ResNet-56 (``n_basis`` and ``splits`` per stage, ``share_basis``)."""

    def build(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, method: str | None = None,
              method_kw: dict | None = None) -> nn.Module:
        resnet = importlib.import_module(".resnet", __package__)
        if in_channels != 3:
            raise ValueError(f"model 'cifar-resnet{depth}' takes 3-channel images, got in_channels={in_channels}")
        channels = 2 * max(1, round(8 * _check_width(width)))  # w = 16 * width, even for option-A padding
        # cifar_resnet draws from a NumPy generator; seed it from torch's, which build_model's caller seeded
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), device="cpu").item()))
        method_kw = dict(method_kw or {})
        if method == "basis" and "splits" in method_kw:     # the trainer's word: p = w_i / s per stage
            if "basis_channels" in method_kw:
                raise KeywordError("give exactly one of basis_channels (p) and splits (s = in_channels / p)")
            widths = tuple(channels * 2 ** i for i in range(resnet.STAGES))
            method_kw["basis_channels"] = basis_channels_from_splits(method_kw.pop("splits"), widths, "stage width")
        return resnet.cifar_resnet(depth=depth, width=channels, method=method or "baseline", num_classes=num_classes,
                                   rng=rng, **method_kw)

    return build


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """``build(num_classes, in_channels, width)``; ``image_size`` the input side it was designed for;
    ``kept_leading`` method -> how many leading convolutions stay ordinary, ``kept_names`` method -> more layer
    names that stay; ``converts_itself``: ``build`` also takes ``method`` and ``method_kw`` and applies them."""
    build: Callable[..., nn.Module]
    description: str
    image_size: int
    kept_leading: dict = dataclasses.field(default_factory=dict)
    kept_names: dict = dataclasses.field(default_factory=dict)
    converts_itself: bool = False


MODELS = {
    "resnet50": ModelEntry(ResNet50, "ResNet-50 for ImageNet (torchvision layout, stride in the 3x3)", 224,
                           kept_leading={"basis": 1}),
    "vgg16": ModelEntry(VGG16, "VGG-16 for ImageNet, no batch norm; fc6/fc7 as convolutions", 224,
                        kept_leading={"basis": 1}, kept_names={"versatile": ("fc7",)}),
    "vgg16-bn": ModelEntry(lambda num_classes=1000, in_channels=3, width=1.0: VGG16(num_classes, in_channels, width,
                                                                                     batch_norm=True),
                           "VGG-16 for ImageNet with batch norm after every convolution", 224,
                           kept_leading={"basis": 1}, kept_names={"versatile": ("fc7",)}),
    "cifar-vgg16": ModelEntry(CifarVGG16, "VGG-16 with batch norm and one linear layer, for 32x32 inputs", 32,
                              kept_leading={"basis": 3}),
    "cifar-resnet20": ModelEntry(_cifar_resnet(20), "CIFAR ResNet-20, option-A shortcuts (minilib.torch.resnet)",
                                 32, kept_leading=dict.fromkeys(METHODS, 1), converts_itself=True),
    "cifar-resnet56": ModelEntry(_cifar_resnet(56), "CIFAR ResNet-56, option-A shortcuts (minilib.torch.resnet)",
                                 32, kept_leading=dict.fromkeys(METHODS, 1), converts_itself=True),
    "tiny-cnn": ModelEntry(TinyCNN, "two convolutions and a linear layer, no batch norm (tests, smoke runs)", 8,
                           kept_leading={"basis": 1}),
}


def layer_rules(method: str | None, method_kw: dict | None) -> tuple[dict, Callable | None]:
    """``(keywords, per_layer)``: ``method_kw`` with the trainer's per-layer rule words for "basis"
    (``basis_ratio``, ``splits``; see the module docstring) taken out, and the function of a convolution that
    gives its twin the ``n_basis`` and ``basis_channels`` they stand for (None when there are none), as
    :func:`minilib.torch.convert` takes them."""
    kw = dict(method_kw or {})
    if method != "basis":
        return kw, None
    ratio, splits = kw.pop("basis_ratio", None), kw.pop("splits", None)
    # the trainer takes either word for m and for p, so a missing or doubled one names both
    if (ratio is None) == ("n_basis" not in kw):
        raise KeywordError("give exactly one of n_basis (m) and basis_ratio (m = round(basis_ratio * out_channels))")
    if (splits is None) == ("basis_channels" not in kw):
        raise KeywordError("give exactly one of basis_channels (p) and splits (s = in_channels / p)")
    if ratio is None and splits is None:
        return kw, None
    if ratio is not None:
        ratio = checks.positive_number(ratio, "basis_ratio")
    if splits is not None and splits != "optimal":
        splits = checks.positive_int(splits, "splits")

    def per_layer(conv: nn.Conv2d) -> dict:
        rule = {}
        if ratio is not None:
            rule["n_basis"] = max(1, round(ratio * conv.out_channels))
        if splits is not None:
            s = optimal_splits(conv.in_channels, conv.out_channels, conv.kernel_size) if splits == "optimal" \
                else splits
            rule["basis_channels"] = basis_channels_from_splits(s, conv.in_channels, "in_channels")
        return rule

    return kw, per_layer


def default_exclude(model: nn.Module, name: str, method: str) -> tuple[str, ...]:
    """Qualified names of the convolutions of ``model`` (built from entry ``name``) that ``method`` leaves
    ordinary by default; see the module docstring for the papers' reasons."""
    entry = MODELS[name]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return tuple(convs[:entry.kept_leading.get(method, 0)]) + tuple(entry.kept_names.get(method, ()))


def build_model(name: str, *, num_classes: int, in_channels: int = 3, width: float = 1.0, method: str | None = None,
                method_kw: dict | None = None, exclude=None) -> nn.Module:
    """Build ``MODELS[name]`` and, with ``method``, convert its convolutions (``method_kw`` to every new layer).

    ``exclude=None`` keeps the method's default layers ordinary (:func:`default_exclude`); pass a list of
    qualified layer names to choose yourself (``()`` converts every convolution). Initial weights come
    from torch's global generator: seed it first for reproducible models.
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"model={name!r} is not known; known models: {', '.join(sorted(MODELS))}")
    if method is not None and (not isinstance(method, str) or method not in METHODS):
        raise ValueError(f"method={method!r} is not known; known methods: {', '.join(sorted(METHODS))}")
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label}={value!r} must be a positive integer")
    _check_width(width)
    if method_kw is not None and not isinstance(method_kw, dict):
        raise TypeError(f"method_kw must be a dict of the method's keywords or None, got {type(method_kw).__name__} "
                        f"{method_kw!r}")
    entry = MODELS[name]
    if entry.converts_itself and exclude is None:
        return entry.build(num_classes=num_classes, in_channels=in_channels, width=width, method=method,
                           method_kw=method_kw)
    model = entry.build(num_classes=num_classes, in_channels=in_channels, width=width)
    if method is None:
        if method_kw:
            raise ValueError(f"method_kw={method_kw!r} needs a method; known methods: {', '.join(sorted(METHODS))}")
        return model
    if exclude is None:
        exclude = default_exclude(model, name, method)
    method_kw, per_layer = layer_rules(method, method_kw)
    return convert(model, method, exclude=exclude, per_layer=per_layer, **method_kw)
