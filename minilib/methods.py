"""The one method registry: a method's name -> its NumPy layer, its torch twin, its keywords and its cost.

Four methods, named as the code and the stored results name them (:data:`REGISTRY`):

* ``"baseline"``: the ordinary convolution, :class:`minilib.layers.Conv2d`; n filters of c x kh x kw,
  n*c*kh*kw stored weights and as many multiplications per output pixel. A LeNet spec
  (:mod:`minilib.models`) and the stored architectures name its layer kind ``"conv"``.
* ``"versatile"`` (Wang et al., NeurIPS 2018): P primary d x d filters, each giving s = ceil(d/2)
  spatial secondaries (Eq. 2-3) on n = (c - ĉ)/g + 1 channel windows (Eq. 8): s*n*P outputs from
  P*c*d^2 stored weights (Proposition 1).
* ``"basis"`` (Li et al., ICCV 2019): every filter is cut into s = c/p splits of p channels, each a
  combination of the same m basis filters (Eq. 9-10), computed as two convolutions (Eq. 11); it stores
  m*p*k^2 + n*s*m numbers (Eq. 6).
* ``"fullstack"`` (Han et al., NeurIPS 2019): k = n/s full-stack filters times s binary masks each
  (Eq. 3-5, MVNet-A shared masks, MVNet-B separate ones): k*c*d^2 32-bit weights plus 1-bit masks
  (Eq. 9-10), and k*c*d^2 multiplications per output pixel (Eq. 13-14).

Each :class:`Method` names its NumPy layer (the class), its torch twin as a dotted path resolved only
when asked for (:meth:`Method.twin_class`: this module, like the whole NumPy core, never imports torch),
its keyword vocabulary and its cost function ``cost(layer, out_hw) -> {conv_weights, mask_bits, params,
flops}`` (the method file's ``*_cost``, which the layer's ``cost`` method and
:func:`minilib.accounting.summarize` use). :func:`check_keywords` is the one check of a method's keywords:
the LeNet specs (:mod:`minilib.models`, :mod:`minilib.torch.models`), :func:`minilib.torch.convert`, the
ResNet and EDSR builders (:mod:`minilib.torch.resnet`, :mod:`minilib.torch.edsr`) and the model zoo
(:mod:`minilib.torch.zoo`) call it, and the comparison (:mod:`minilib.reproduce.budgets`) names the
registry's method behind each of its runs.

One vocabulary per method. A keyword has a scope: ``"all"`` (every layer and builder takes it),
``"layer"`` (the NumPy layer and the twin; network builders make their own), ``"twin"`` (the torch twin
only) or ``"network"`` (the network builders only: ResNet, EDSR). The basis method's vocabulary is its
layer's own, ``n_basis`` (m) and ``basis_channels`` (p), not ``splits`` (s) or ``basis_ratio`` (m/n):
m and p fix the shape of what is stored and shared, the basis (m, p, k, k) that a
:class:`~minilib.basis.SharedBasis` holds, that :func:`~minilib.basis.from_conv` fits and that layers of
different widths share (Sec. 4.2, Fig. 3), while s = c/p follows from each layer's input width c; the
NumPy layer, its twin and the LeNet specs (and so the stored comparison architectures) already spoke it.
The old words stay only at the edges whose stored results or command lines use them, translated there:
``splits`` in the CIFAR-10 and super-resolution runs and results (:mod:`minilib.reproduce.cifar10`,
:mod:`minilib.reproduce.sr`, with :func:`basis_channels_from_splits`), and ``splits`` (a number or
``"optimal"``, Eq. 7) and ``basis_ratio`` in the full-scale trainer's ``--method-kw``, per-layer rules
that :func:`minilib.torch.zoo.layer_rules` turns into this vocabulary.

A new method now touches these files:

1. ``minilib/<method>.py``: the NumPy layer (forward, backward, its ``*_shape`` rules and its ``*_cost``);
2. ``minilib/torch/<method>.py``: its twin (same arguments, parameter names and draws), exported in
   ``minilib/torch/__init__.py``;
3. ``minilib/methods.py``: one :class:`Method` entry in :data:`REGISTRY` (this file): name, paper, layer,
   twin path, vocabulary with scopes, cost function and a small ``example``;
4. ``tests/test_<method>.py`` and its parity test; ``tests/test_methods.py`` checks the new entry (layer,
   twin, vocabulary and cost agree; builders refuse words outside the vocabulary) without an edit.

The LeNet specs, ``convert``, the ResNet and EDSR builders and the model zoo then take it by name. Only
a spec helper for LeNet variants (like :func:`minilib.models.basis`), a choice of which layers stay
ordinary (``minilib/torch/zoo.py``'s ``kept_leading``) or a place in the comparison
(``minilib/reproduce/budgets.py``: its hyperparameter search) needs more, and only if wanted.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from . import checks
from .accounting import conv_cost
from .basis import BasisConv2d, basis_cost
from .fullstack import FullStackConv2d, fullstack_cost
from .layers import Conv2d
from .versatile import VersatileConv2d, versatile_cost

BASELINE = "baseline"
EXAMPLE_SHAPE = (4, 8, 3)   # in_channels, out_channels, kernel_size of every method's example layer
SCOPES = {                  # who takes a keyword of each scope
    "numpy": ("all", "layer"),
    "twin": ("all", "layer", "twin"),
    "network": ("all", "network"),
}


class KeywordError(TypeError, ValueError):
    """A keyword a method does not take, or one it needs and did not get.

    A ``TypeError``, as Python's own for an unexpected keyword argument, and a ``ValueError``, as the
    builders report their other bad arguments.
    """


@dataclasses.dataclass(frozen=True)
class Keyword:
    """One word of a method's vocabulary: its name, what it means in the paper's symbols, who takes it."""
    name: str
    description: str
    scope: str = "all"
    required: bool = False

    def __post_init__(self):
        if self.scope not in ("all", "layer", "twin", "network"):
            raise ValueError(f"scope={self.scope!r} must be 'all', 'layer', 'twin' or 'network'")


@dataclasses.dataclass(frozen=True)
class Method:
    """A method: ``name``, the ``paper`` it comes from, its NumPy layer class, its torch ``twin`` (a dotted
    path, imported by :meth:`twin_class`), its ``keywords`` (the vocabulary) and its ``cost(layer, out_hw)``.

    Layers and twins are built as ``layer(in_channels, out_channels, kernel_size, stride=..., padding=...,
    bias=..., rng=..., **keywords)``; ``example``: keywords of a small layer of :data:`EXAMPLE_SHAPE` (for
    the tests and the docs); ``kind``: the layer kind a LeNet spec gives it (its name unless set).
    """
    name: str
    paper: str
    numpy_layer: type
    twin: str
    keywords: tuple
    cost: Callable
    example: dict = dataclasses.field(default_factory=dict, hash=False)
    kind: str = ""

    @property
    def layer_kind(self) -> str:
        return self.kind or self.name

    @property
    def vocabulary(self) -> dict:
        """name -> description of every keyword."""
        return {word.name: word.description for word in self.keywords}

    def accepted(self, where: str) -> tuple:
        """The keyword names that ``where`` ("numpy", "twin" or "network") takes."""
        scopes = SCOPES[where]
        return tuple(word.name for word in self.keywords if word.scope in scopes)

    @property
    def required(self) -> tuple:
        return tuple(word.name for word in self.keywords if word.required)

    def twin_class(self):
        """The torch twin (imports torch): built like the NumPy layer, same parameter names and draws."""
        module, _, name = self.twin.rpartition(".")
        return getattr(importlib.import_module(module), name)


REGISTRY = {method.name: method for method in (
    Method(BASELINE, "the ordinary convolution of every paper's baseline", Conv2d,
           "minilib.torch.common.standard_conv", (), conv_cost, {}, kind="conv"),
    Method("versatile", "Wang et al., Learning Versatile Filters for Efficient CNNs, NeurIPS 2018",
           VersatileConv2d, "minilib.torch.versatile.VersatileConv2d", (
               Keyword("delta", "c - ĉ: every secondary reads ĉ = c - delta of the c input channels (Eq. 8); "
                                "0 (the default) is the spatial method"),
               Keyword("g", "the channel stride between the n = delta/g + 1 channel windows (Eq. 8)"),
               Keyword("shared_bias", "b_1 = ... = b_s: one bias per primary filter (Versatile-Model 3)"),
               Keyword("combine", "'concat': the s*n*P secondary responses are the outputs (Eq. 3); 'sum': the "
                                  "s spatial responses added into one filter (Eq. 4-5)"),
               Keyword("channel_mode", "'paper': a primary stores all c channels (Fig. 2); 'official': ĉ "
                                       "channels, as the released VConv2d"),
           ), versatile_cost, {"delta": 1, "g": 1}),
    Method("basis", "Li et al., Learning Filter Basis for Convolutional Neural Network Compression, ICCV 2019",
           BasisConv2d, "minilib.torch.basis.BasisConv2d", (
               Keyword("n_basis", "m: the number of basis filters (Eq. 9-10)", required=True),
               Keyword("basis_channels", "p: the channels of a basis filter; the c input channels are cut "
                                         "into s = c/p splits (Eq. 9)", required=True),
               Keyword("basis", "a SharedBasis (or another layer's basis) to use instead of a new one "
                                "(Sec. 4.2)", scope="layer"),
               Keyword("split_mode", "how the twin runs Eq. 11: 'reshape' (one convolution of N*s images), "
                                     "'loop' (s convolutions), 'grouped' (one grouped convolution) or 'dense' "
                                     "(W = coeff . basis, Eq. 9-10, and one convolution)", scope="twin"),
               Keyword("share_basis", "one basis for the layers that read the same width: per stage in the "
                                      "ResNet, per residual block in EDSR (Sec. 4.2)", scope="network"),
           ), basis_cost, {"n_basis": 3, "basis_channels": 2}),
    Method("fullstack", "Han et al., Full-Stack Filters to Build Minimum Viable CNNs, NeurIPS 2019",
           FullStackConv2d, "minilib.torch.fullstack.FullStackConv2d", (
               Keyword("s", "the number of masks per full-stack filter; k = n/s filters (Eq. 3)", required=True),
               Keyword("masks", "'shared': s masks for all k filters (MVNet-A, Eq. 3); 'separate': every filter "
                                "its own (MVNet-B, Eq. 4-5)"),
               Keyword("learn_masks", "False: fixed random masks (the '-Rand' rows of Table 1)"),
               Keyword("n_filters", "k, where s does not divide n: the first n of the k*s sub-filters"),
           ), fullstack_cost, {"s": 2, "masks": "separate"}),
)}
EFFICIENT = tuple(name for name in REGISTRY if name != BASELINE)    # the methods that replace a convolution


def get(name, among=None) -> Method:
    """The :class:`Method` called ``name``; ``among`` (names) limits the methods a caller takes."""
    known = tuple(REGISTRY) if among is None else tuple(among)
    if name not in known:
        raise ValueError(f"method={name!r} is not known; known methods: {sorted(known)}")
    return REGISTRY[name]


def by_kind(kind) -> Method | None:
    """The method whose LeNet-spec layer kind is ``kind`` ("conv", "versatile", ...), or None (pooling, ...)."""
    return next((method for method in REGISTRY.values() if method.layer_kind == kind), None)


def check_keywords(name, keywords, where="network", *, among=None, allow=(), require=True) -> Method:
    """Check ``keywords`` (a dict) against the vocabulary of method ``name`` and return the :class:`Method`.

    ``where``: who takes them, "numpy" (the NumPy layer), "twin" (the torch twin) or "network" (a network
    builder; see the module docstring for the scopes). ``allow``: more names the caller takes itself
    (e.g. a spec's out_channels and kernel_size). ``require``: the method's required keywords must be there.
    Raises ``ValueError`` for an unknown method and :class:`KeywordError` naming the keyword, its value
    and the rule.
    """
    method = get(name, among)
    accepted = method.accepted(where)
    unknown = [key for key in keywords if key not in accepted and key not in allow]
    if unknown:
        given = ", ".join(f"{key}={keywords[key]!r}" for key in unknown)
        others = [key for key in unknown if key in method.vocabulary]
        why = (f"; {', '.join(others)} {'is' if len(others) == 1 else 'are'} for "
               f"{' or '.join(_takers(method, key) for key in others)}") if others else ""
        raise KeywordError(f"method={name!r} takes the keywords {list(accepted) or 'none'}, not {given}{why}")
    missing = [key for key in method.required if require and key in accepted and key not in keywords]
    if missing:
        needs = " and ".join(f"{key}= ({method.vocabulary[key]})" for key in missing)
        raise KeywordError(f"method={name!r} needs {needs}")
    return method


def _takers(method, key) -> str:
    scope = next(word.scope for word in method.keywords if word.name == key)
    return {"layer": "its layers (a network builder makes its own)", "twin": "its torch twin",
            "network": "the network builders"}[scope]


def basis_channels_from_splits(splits, widths, where="width"):
    """p = c/s for the old word ``splits`` (s) of stored results and command lines (see the module docstring).

    ``widths``: the input width c (an int: returns one p) or one per stage (a tuple: returns one p per
    stage, ``splits`` an int or one per stage). Raises ValueError where s does not divide c (Eq. 9).
    """
    per_stage = isinstance(widths, (tuple, list))
    widths = tuple(widths) if per_stage else (widths,)
    values = tuple(splits) if isinstance(splits, (tuple, list)) else (splits,) * len(widths)
    if len(values) != len(widths):
        raise ValueError(f"splits={splits!r} must be one int or {len(widths)} ints (one per stage)")
    channels = []
    for s, c in zip(values, widths):
        s = checks.positive_int(s, "splits")
        if c % s:
            raise ValueError(f"splits={s} must divide {where}={c}: p = c/s channels per split (Eq. 9)")
        channels.append(c // s)
    return tuple(channels) if per_stage else channels[0]
