"""LeNet for MNIST and its efficient-filter variants, each described as data.

The baseline is MatConvNet's ``cnn_mnist_init`` LeNet, the network of Wang et al. (NeurIPS 2018,
Sec. 3.1): conv 5x5x1x20 - maxpool 2 - conv 5x5x20x50 - maxpool 2 - conv 4x4x50x500 - ReLU -
conv 1x1x500x10, with no ReLU after the first two convolutions. A 28x28 input becomes
24 -> 12 -> 8 -> 4 -> 1, so the last layer's 10 maps of size 1x1 are the logits.

A variant is a spec: a list of ``(kind, kwargs)`` layers (:data:`VARIANTS`). Convolution
layers take their input width from the layer before; :data:`CLASSES` stands for
``num_classes``. A convolution's kind is a method's (:mod:`minilib.methods`: "conv" for the
baseline's, "versatile", "basis", "fullstack"), its kwargs out_channels, kernel_size and the
method's keywords. :func:`build` turns a spec into a minilib ``Sequential``;
:func:`minilib.torch.models.build` (and :func:`minilib.torch.models.lenet`) turns the same spec into a
``torch.nn.Sequential`` with the same layer names, parameter names and, for the same ``rng``, the same
initial weights. This module never imports torch.

The printed rows of the paper's Tables 2 and 3 are in :mod:`minilib.reports.papers`
(``VERSATILE_TABLE2``, ``VERSATILE_TABLE3``, keyed by variant name), to compare with
:func:`minilib.accounting.summarize`. Baseline, Versatile-Model 1-3 and v2-Model 1 follow from
the printed architecture exactly; v2-Model 2 and 3 do not, and :func:`search_v2` lists the
networks near their printed numbers (the comments in :data:`VARIANTS` say which we chose).
"""
from __future__ import annotations

import math

import numpy as np

from . import checks, methods
from .accounting import paper_number, summarize
from .layers import Flatten, MaxPool2d, ReLU, Sequential

CLASSES = "num_classes"     # placeholder in a spec: the classifier's width is lenet(num_classes=...)


def conv(out_channels, kernel_size, **kw):
    return ("conv", {"out_channels": out_channels, "kernel_size": kernel_size, **kw})


def versatile(out_channels, kernel_size, **kw):
    """A :class:`~minilib.versatile.VersatileConv2d`; out_channels = s*n*P outputs from P primaries."""
    return ("versatile", {"out_channels": out_channels, "kernel_size": kernel_size, **kw})


def basis(out_channels, kernel_size, n_basis, basis_channels, **kw):
    """A :class:`~minilib.basis.BasisConv2d`: m = n_basis filters of p = basis_channels channels, s = c/p splits.

    The layer's input width c comes from the layer before, so p must divide it (Eq. 9).
    """
    return ("basis", {"out_channels": out_channels, "kernel_size": kernel_size, "n_basis": n_basis,
                      "basis_channels": basis_channels, **kw})


def fullstack(out_channels, kernel_size, s, **kw):
    """A :class:`~minilib.fullstack.FullStackConv2d` with s masks per full-stack filter.

    k = out_channels / s filters; where s does not divide out_channels (LeNet's 50 maps with
    s = 20, its 20 maps with s = 50) k = ceil(out_channels / s) and the first out_channels of
    the k*s sub-filters are used. That reading reproduces every #param entry of MVNet's Table 1.
    """
    if out_channels % s:
        kw = {"n_filters": -(-out_channels // s), **kw}
    return ("fullstack", {"out_channels": out_channels, "kernel_size": kernel_size, "s": s, **kw})


MAXPOOL2 = ("maxpool", {"kernel_size": 2})
RELU = ("relu", {})
FLATTEN = ("flatten", {})


def lenet_spec(conv1, conv2, conv3):
    """MatConvNet's LeNet around three feature layers; the 1x1 classifier is an ordinary conv."""
    return [conv1, MAXPOOL2, conv2, MAXPOOL2, conv3, RELU, conv(CLASSES, 1), FLATTEN]


V3 = {"shared_bias": True}  # Versatile-Model 3: b_1 = ... = b_s, one bias per primary filter

VARIANTS = {
    # Table 2. 430,500 filter weights.
    "baseline": lenet_spec(conv(20, 5), conv(50, 5), conv(500, 4)),
    # Eq. 4: the s secondaries summed = one filter with the fixed mask sum_i M_i (Eq. 5); same widths
    "versatile-1": lenet_spec(*(versatile(w, d, combine="sum") for w, d in ((20, 5), (50, 5), (500, 4)))),
    # Eq. 3: P = 7, 17, 250 primaries -> s*P = 21, 51, 500 outputs (s = 3, 3, 2); separate biases b_1..b_s
    "versatile-2": lenet_spec(versatile(21, 5), versatile(51, 5), versatile(500, 4)),
    "versatile-3": lenet_spec(versatile(21, 5, **V3), versatile(51, 5, **V3), versatile(500, 4, **V3)),
    # Table 3 (Eq. 8 in layers 2 and 3 only; built on Versatile-Model 3, so biases are shared).
    # v2-Model 1, c - ĉ = 1, g = 1, n = 2: 9 primaries (5x5x21x9, as the paper says) -> 3*2*9 = 54
    # outputs; 125 primaries -> 2*2*125 = 500.
    "versatile-v2-1": lenet_spec(versatile(21, 5, **V3), versatile(54, 5, delta=1, g=1, **V3),
                                 versatile(500, 4, delta=1, g=1, **V3)),
    # v2-Model 2: the paper prints c - ĉ = 1, g = 2, which gives n = 1/2 + 1, not an integer.
    # We use c - ĉ = 2, g = 2 (n = 2): the same primaries as v2-Model 1, so exactly the printed
    # weights and memory (117,900, 460.5KB); the FLOPs drop with ĉ to 1,172,200 ("11.72×10^5",
    # printed "11.17×10^5"). Reading g = 2 as the released code's loop does (window offsets 0, g, ...
    # up to c - ĉ = 1: one window, n = 1) reuses nothing and keeps Versatile-Model 3's 218,100
    # weights. See search_v2.
    "versatile-v2-2": lenet_spec(versatile(21, 5, **V3), versatile(54, 5, delta=2, g=2, **V3),
                                 versatile(500, 4, delta=2, g=2, **V3)),
    # v2-Model 3: c - ĉ = 2, g = 1 as printed, n = 3; 6 primaries -> 3*3*6 = 54 outputs. search_v2's
    # nearest candidate to the printed row has 82 primaries -> 2*3*82 = 492 outputs: 79,093 weights
    # ("0.79×10^5" as printed), 309.0KB (printed 309.1KB), 1,167,960 FLOPs (printed 12.12×10^5).
    # The rule P = ceil(width / (s*n)) of the other rows would give 84 -> 504 (80,941 weights). No
    # candidate reaches the printed FLOPs: with the widths kept, multiplications fall with ĉ, so a
    # network smaller than v2-Model 1 cannot cost nearly as much (1,217,520).
    "versatile-v2-3": lenet_spec(versatile(21, 5, **V3), versatile(54, 5, delta=2, g=1, **V3),
                                 versatile(492, 4, delta=2, g=1, **V3)),
}



def mvnet_spec(s, masks, learn_masks=True):
    """MVNet on LeNet (Han et al., Sec. 3.1): the first three layers full-stack, the 1x1 classifier kept."""
    options = {"masks": masks, "learn_masks": learn_masks}
    return lenet_spec(fullstack(20, 5, s, **options), fullstack(50, 5, s, **options), fullstack(500, 4, s, **options))


for _s in (2, 5, 10, 20, 50):       # Table 1 (s = 10, 20) and Fig. 2(a) (s = 2 ... 50)
    VARIANTS[f"mvnet-a-{_s}"] = mvnet_spec(_s, "shared")
    VARIANTS[f"mvnet-b-{_s}"] = mvnet_spec(_s, "separate")
VARIANTS["mvnet-a-rand-20"] = mvnet_spec(20, "shared", learn_masks=False)    # fixed random masks
VARIANTS["mvnet-b-rand-20"] = mvnet_spec(20, "separate", learn_masks=False)

SPEC_ARGUMENTS = ("out_channels", "kernel_size", "stride", "padding", "bias")  # a convolution's own, any method
LAYERS = {                  # kind -> factory(rng, **kwargs) of the layers that are no method's convolution
    "maxpool": lambda rng, **kw: MaxPool2d(**kw),
    "relu": lambda rng: ReLU(),
    "flatten": lambda rng: Flatten(),
}


def kinds() -> list:
    """Every layer kind a spec may use: the methods' (:data:`minilib.methods.REGISTRY`) and :data:`LAYERS`."""
    return sorted([method.layer_kind for method in methods.REGISTRY.values()] + list(LAYERS))


def method_of(kind, kwargs, where):
    """The :class:`~minilib.methods.Method` of a spec's convolution kind, its keywords checked for ``where``
    ("numpy" or "twin"); None for the other kinds."""
    method = methods.by_kind(kind)
    if method is not None:
        methods.check_keywords(method.name, kwargs, where, allow=SPEC_ARGUMENTS)
    return method


def resolve(spec, in_channels=1, num_classes=10):
    """Yield ``(kind, in_channels, kwargs)`` per layer: widths chained, :data:`CLASSES` replaced."""
    channels = in_channels
    for kind, kwargs in spec:
        if methods.by_kind(kind) is None and kind not in LAYERS:
            raise ValueError(f"layer kind {kind!r} is not known; known kinds: {kinds()}")
        kwargs = {key: num_classes if value == CLASSES else value for key, value in kwargs.items()}
        yield kind, channels, kwargs
        channels = kwargs.get("out_channels", channels)


def build(spec, in_channels=1, num_classes=10, rng=None) -> Sequential:
    """A minilib ``Sequential`` from a spec; layers draw their initial weights from ``rng`` in order.

    ``rng``: a ``numpy.random.Generator``, an int seed or None, made a Generator once here so that
    the layers draw one stream in turn (a seed passed to each layer would give each the same numbers).
    """
    rng = checks.rng(rng)
    layers = []
    for kind, channels, kwargs in resolve(spec, in_channels, num_classes):
        method = method_of(kind, kwargs, "numpy")
        layers.append(LAYERS[kind](rng, **kwargs) if method is None else method.numpy_layer(channels, rng=rng,
                                                                                            **kwargs))
    return Sequential(*layers)


def variant(name) -> list:
    """The spec of the LeNet variant ``name`` (see :data:`VARIANTS`)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a variant name (str), got {type(name).__name__}; "
                        f"pass a generator as rng=..., e.g. lenet('baseline', rng=rng)")
    if name not in VARIANTS:
        raise ValueError(f"name={name!r} is not a LeNet variant; known variants: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def lenet(name="baseline", *, rng=None, in_channels=1, num_classes=10) -> Sequential:
    """The LeNet variant ``name`` (see :data:`VARIANTS`) as a minilib model mapping (N, in_channels, 28, 28)
    images to (N, num_classes) logits, float64 (``.astype(np.float32)`` trains faster).

    ``rng`` (a ``numpy.random.Generator``, or an int seed) draws the initial weights;
    :func:`minilib.torch.models.lenet` builds the same network, with the same weights for the same seed, in PyTorch.
    """
    spec = variant(name)
    return build(spec, in_channels, num_classes, checks.rng(rng))


def search_v2(delta, g, target=None, width_tolerance=0.1):
    """Channel-versatile LeNets (Eq. 8 with ``delta`` = c - ĉ and ``g`` in layers 2 and 3) near the paper's widths.

    Layer 1 keeps Versatile-Model 3's 7 primaries (21 outputs). For layers 2 and 3 every primary
    count P whose width s*n*P is within ``width_tolerance`` of 50 and 500 is built and costed
    with :func:`minilib.accounting.summarize`. Each candidate is a dict: primaries, widths,
    conv_weights, memory_kb, flops, ``ceil_rule`` (P = ceil(width / (s*n)), the rule behind
    every row of Tables 2 and 3 that the architecture explains) and ``distance`` =
    |log(memory / printed memory)| + |log(flops / printed flops)| to ``target`` (a printed row,
    e.g. ``VERSATILE_TABLE3["versatile-v2-3"]`` of :mod:`minilib.reports.papers`), by which the
    list is sorted.
    """
    if delta % g:
        raise ValueError(f"delta={delta} must be divisible by g={g}: n = delta/g + 1 must be an integer (Eq. 8)")
    n = delta // g + 1
    options = {"delta": delta, "g": g, **V3}

    def counts(width, s):
        per = s * n
        return [p for p in range(1, 2 * width // per + 2) if abs(per * p - width) <= width_tolerance * width]

    candidates = []
    for p2 in counts(50, 3):
        for p3 in counts(500, 2):
            spec = lenet_spec(versatile(21, 5, **V3), versatile(3 * n * p2, 5, **options),
                              versatile(2 * n * p3, 4, **options))
            summary = summarize(build(spec, rng=np.random.default_rng(0)), (1, 28, 28))
            found = {"primaries": (7, p2, p3), "widths": (21, 3 * n * p2, 2 * n * p3),
                     "conv_weights": summary.conv_weights, "memory_kb": summary.memory_kb, "flops": summary.flops,
                     "ceil_rule": (p2, p3) == (math.ceil(50 / (3 * n)), math.ceil(500 / (2 * n)))}
            if target is not None:
                found["distance"] = (abs(math.log(summary.memory_kb / paper_number(target["memory"])))
                                     + abs(math.log(summary.flops / paper_number(target["flops"]))))
            candidates.append(found)
    return sorted(candidates, key=lambda c: c.get("distance", 0.0))
