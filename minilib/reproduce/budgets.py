"""Matched budgets for the side-by-side comparison (chapter 10): one LeNet, each method at about 50 %, 25 % and
12 % of the baseline's stored filter weights.

The network is the MNIST LeNet of :mod:`minilib.models` (conv 5x5x1x20 - pool - conv 5x5x20x50 - pool -
conv 4x4x50x500 - ReLU - conv 1x1x500x10). Every method converts the SAME layers: the three feature
convolutions conv1-conv3 (425,500 of the 430,500 weights); the 1x1 classifier (5,000 weights, 1.2 %) stays an
ordinary convolution in every network and is counted in every total.

What a budget counts (:class:`Choice`):

- ``weight_ratio``: stored 32-bit filter weights of ALL convolutions (classifier included, biases not, as
  Wang et al.'s Tables 2-3 count whole networks) over the baseline's 430,500;
- ``stored_ratio``: stored bits, 32 per filter weight plus 1 per MVNet mask entry, over the baseline's
  32 x 430,500; a mask bit is 1/32 of a weight (MVNet's "#param (32-bit)"). Budgets are matched on this
  one; for every method without masks the two ratios are equal;
- ``flops_ratio``: multiplications per image on each method's fast path (versatile Prop. 1, basis Eq. 11,
  MVNet Eq. 13), from :func:`minilib.accounting.summarize`.

The hyperparameters each method may choose (:func:`candidates`):

- ``versatile`` (Wang et al., Eq. 2-3): a d x d primary always yields s = ceil(d/2) secondaries, 3 for the
  5x5 layers and 2 for conv3's 4x4, so there is one network: Versatile-Model 3 (P = 7, 17, 250 primaries,
  21, 51, 500 outputs, one bias per primary), 50.7 % of the weights. It cannot go lower: conv3 holds 93 % of
  the weights and can at best be halved.
- ``versatile-v2`` (Eq. 8): conv1 as above (its single input channel leaves no channel window to slide);
  conv2 and conv3 with c - ĉ = ``delta`` and channel stride ``g``, n = delta/g + 1 windows, as the paper's
  Table 3 (the same delta, g in both layers, paper channel mode: a primary stores all c channels). P =
  ceil(width / (s n)) primaries, the rule of every row of Tables 2-3, so the widths move a little (conv2's 50
  becomes 54 or 60, and 21 for conv1 as in Versatile-Model 3). delta = 1 ... 8 and every g dividing delta; of equal costs the smallest delta wins (ĉ
  closest to c, as v2-Model 1). n >= 2 stores at most 1/(s n) of a layer, so 50 % is out of reach.
- ``basis`` (Li et al., Eq. 6, 9-11), for both ``basis-scratch`` and ``basis-from-conv``: s per layer from
  Eq. 7 (:func:`minilib.basis.optimal_splits`: s = 1, 4, 1, i.e. p = 1, 5, 50 channels per split) and one
  common rate r: each layer takes the smallest m whose Eq. 6 rate reaches r (rounding up, so the small conv1
  and conv2 are never starved below r), r running over the rates of conv3's m = 1 ... p k^2 (at most
  p k^2 basis filters, the rank :func:`minilib.basis.from_conv` can fit).
- ``mvnet-a`` / ``mvnet-b`` (Han et al., Eq. 3-5, 9-10): the same s masks per full-stack filter in all three
  layers, s = 2 ... 20, k = ceil(n / s) filters (the rule that reproduces MVNet's Table 1); shared (A) or
  separate (B) 1-bit masks.

:func:`match_budget` picks, per method and budget, the candidate whose ``stored_ratio`` is nearest the budget
(distance |log(ratio / budget)|); the budget is *reachable* when that ratio is within a factor
:data:`TOLERANCE` of it, and otherwise the choice says why not.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import numpy as np

from ..accounting import summarize
from ..basis import optimal_splits
from ..models import V3, VARIANTS, basis, build, lenet_spec, mvnet_spec, versatile

BUDGETS = (0.50, 0.25, 0.12)
TOLERANCE = 1.25            # reachable: the nearest configuration stores between budget / 1.25 and budget * 1.25
INPUT_SHAPE = (1, 28, 28)
METHODS = ("versatile", "versatile-v2", "basis-scratch", "basis-from-conv", "mvnet-a", "mvnet-b")
# the method of minilib.methods.REGISTRY behind each compared one (its layers, vocabulary and cost)
REGISTERED = {"versatile": "versatile", "versatile-v2": "versatile", "basis-scratch": "basis",
              "basis-from-conv": "basis", "mvnet-a": "fullstack", "mvnet-b": "fullstack"}
# the converted layers: (name, index in the Sequential, c, n, k) of the baseline's feature convolutions
CONVERTED = (("conv1", 0, 1, 20, 5), ("conv2", 2, 20, 50, 5), ("conv3", 4, 50, 500, 4))
CLASSIFIER = ("conv4", 6, 500, 10, 1)       # kept as an ordinary 1x1 convolution in every network
V2_DELTAS = range(1, 9)
MVNET_S = range(2, 21)

LIMITS = {                  # why a method cannot go further, for the budgets it does not reach
    "versatile": "a d x d primary yields at most s = ceil(d/2) secondaries (Eq. 2): 3 for the 5x5 layers, 2 for "
                 "conv3's 4x4, which holds 93 % of the weights, so the network is at best halved",
    "versatile-v2": "n >= 2 channel windows (Eq. 8) store at most 1/(s n) of a layer; n = 1 is the spatial method",
    "basis-scratch": "m ranges over 1 ... p k^2 basis filters per layer (Eq. 6)",
    "basis-from-conv": "m ranges over 1 ... p k^2 basis filters per layer (Eq. 6)",
    "mvnet-a": f"s ranges over {MVNET_S.start} ... {MVNET_S.stop - 1} (Eq. 9)",
    "mvnet-b": f"s ranges over {MVNET_S.start} ... {MVNET_S.stop - 1}; the separate 1-bit masks alone are 3.1 % "
               f"(Eq. 10)",
}


@dataclasses.dataclass(frozen=True)
class Cost:
    """Stored filter weights, mask bits and multiplications of one network for one 28x28 image."""
    conv_weights: int
    mask_bits: int
    flops: int

    @property
    def stored_bits(self) -> int:
        """32 bits per filter weight plus 1 per mask entry."""
        return 32 * self.conv_weights + self.mask_bits


@functools.cache
def _spec_cost(spec_key) -> Cost:
    summary = summarize(build(_unfreeze(spec_key), rng=np.random.default_rng(0)), INPUT_SHAPE)
    return Cost(summary.conv_weights, summary.mask_bits, summary.flops)


def _freeze(spec):
    return tuple((kind, tuple(sorted(kwargs.items()))) for kind, kwargs in spec)


def _unfreeze(key):
    return [(kind, dict(items)) for kind, items in key]


def spec_cost(spec) -> Cost:
    """:class:`Cost` of a LeNet spec (:func:`minilib.accounting.summarize` of the built network; cached)."""
    return _spec_cost(_freeze(spec))


def baseline_cost() -> Cost:
    """The baseline LeNet: 430,500 filter weights, no masks, 2,293,000 multiplications."""
    return spec_cost(VARIANTS["baseline"])


@dataclasses.dataclass(frozen=True)
class Choice:
    """A method's configuration for one budget (``budget`` None: the baseline).

    ``hyperparameters``: JSON-ready values (lists per converted layer); ``spec``: the LeNet spec
    (:mod:`minilib.models`); ``cost``: its :class:`Cost`; ``reachable`` False with ``reason`` when the
    nearest configuration is not within a factor :data:`TOLERANCE` of the budget.
    """
    method: str
    budget: float | None
    hyperparameters: dict
    spec: list
    cost: Cost
    reachable: bool = True
    reason: str | None = None

    @property
    def run(self) -> str:
        """The run name: ``baseline`` or ``<method>-b<percent>``, e.g. ``mvnet-a-b25``."""
        return "baseline" if self.budget is None else f"{self.method}-b{round(100 * self.budget)}"

    @property
    def weight_ratio(self) -> float:
        return self.cost.conv_weights / baseline_cost().conv_weights

    @property
    def stored_ratio(self) -> float:
        return self.cost.stored_bits / baseline_cost().stored_bits

    @property
    def flops_ratio(self) -> float:
        return self.cost.flops / baseline_cost().flops

    def describe(self) -> str:
        """The hyperparameters in the papers' symbols, e.g. ``"s = 2; k = 10, 25, 250; shared masks"``."""
        return describe(self.method, self.hyperparameters)


def describe(method: str, hyperparameters: dict) -> str:
    """One line of a method's hyperparameters in the papers' symbols."""
    h = hyperparameters

    def per_layer(key):
        return ", ".join(str(v) for v in h[key])

    if method == "baseline":
        return "widths 20, 50, 500"
    if method not in REGISTERED:
        raise ValueError(f"method={method!r} is not one of {('baseline',) + METHODS}")
    if method == "versatile":
        return f"s = {per_layer('secondaries')} secondaries; P = {per_layer('primaries')} primaries"
    if method == "versatile-v2":
        return (f"c - ĉ = {h['delta']}, g = {h['g']} (n = {h['n']}) in conv2-3; P = {per_layer('primaries')}; "
                f"widths {per_layer('widths')}")
    if REGISTERED[method] == "basis":
        return f"m = {per_layer('n_basis')}; p = {per_layer('basis_channels')} (s = {per_layer('splits')})"
    return f"s = {h['s']}; k = {per_layer('n_filters')}; {h['masks']} masks"        # fullstack: MVNet-A or -B


# ----------------------------------------------------------------------------- candidates per method
def _versatile_candidates():
    spec = VARIANTS["versatile-3"]
    yield {"secondaries": [3, 3, 2], "primaries": [7, 17, 250], "widths": [21, 51, 500], "shared_bias": True}, spec


def _v2_candidates():
    """Eq. 8 in conv2-3 with every (delta, g), g | delta, ordered by n then delta (equal costs: smallest delta)."""
    pairs = sorted(((delta, g) for delta in V2_DELTAS for g in range(1, delta + 1) if delta % g == 0),
                   key=lambda pair: (pair[0] // pair[1] + 1, pair[0]))
    for delta, g in pairs:
        n = delta // g + 1
        p2, p3 = math.ceil(50 / (3 * n)), math.ceil(500 / (2 * n))
        w2, w3 = 3 * n * p2, 2 * n * p3
        if delta >= min(21, w2):        # ĉ = c - delta must keep a channel in conv2 (c = 21) and conv3 (c = w2)
            continue
        options = {"delta": delta, "g": g, **V3}
        spec = lenet_spec(versatile(21, 5, **V3), versatile(w2, 5, **options), versatile(w3, 4, **options))
        yield ({"delta": delta, "g": g, "n": n, "secondaries": [3, 3, 2], "primaries": [7, p2, p3],
                "widths": [21, w2, w3], "shared_bias": True}, spec)


def basis_layer_weights(c, n, k, m, s) -> int:
    """Stored numbers of one basis layer, Eq. 6's numerator: m basis filters of p k^2 entries plus n s m
    coefficients, p = c/s."""
    return m * (c // s) * k * k + n * s * m


def basis_config(rate) -> dict:
    """Per converted layer the smallest m whose Eq. 6 rate reaches ``rate`` (at least 1, at most p k^2), with
    s from Eq. 7 (:func:`minilib.basis.optimal_splits`)."""
    config = {"n_basis": [], "basis_channels": [], "splits": []}
    for _, _, c, n, k in CONVERTED:
        s = optimal_splits(c, n, k)
        p = c // s
        per_filter = basis_layer_weights(c, n, k, 1, s)
        m = min(p * k * k, max(1, math.ceil(Fraction(rate) * n * c * k * k / per_filter)))
        config["n_basis"].append(m)
        config["basis_channels"].append(p)
        config["splits"].append(s)
    return config


def basis_spec(config) -> list:
    (_, _, _, n1, k1), (_, _, _, n2, k2), (_, _, _, n3, k3) = CONVERTED
    m, p = config["n_basis"], config["basis_channels"]
    return lenet_spec(basis(n1, k1, m[0], p[0]), basis(n2, k2, m[1], p[1]), basis(n3, k3, m[2], p[2]))


def basis_rates():
    """The common rates r: the Eq. 6 rates of conv3 with m = 1 ... p k^2 (conv3 holds 93 % of the weights)."""
    _, _, c, n, k = CONVERTED[-1]
    s = optimal_splits(c, n, k)
    return [Fraction(basis_layer_weights(c, n, k, m, s), n * c * k * k) for m in range(1, (c // s) * k * k + 1)]


def _basis_stored(config) -> int:
    """Stored weights of a basis LeNet by Eq. 6 (what summarize counts; the tests check it), classifier included."""
    _, _, c, n, k = CLASSIFIER
    return n * c * k * k + sum(basis_layer_weights(c, n, k, m, s)
                               for (_, _, c, n, k), m, s in zip(CONVERTED, config["n_basis"], config["splits"]))


def _mvnet_candidates(masks):
    for s in MVNET_S:
        spec = mvnet_spec(s, masks)
        yield {"s": s, "n_filters": [math.ceil(n / s) for _, _, _, n, _ in CONVERTED], "masks": masks}, spec


def candidates(method: str) -> list:
    """``[(hyperparameters, spec), ...]`` that ``method`` may choose from (see the module docstring)."""
    if method == "versatile":
        return list(_versatile_candidates())
    if method == "versatile-v2":
        return list(_v2_candidates())
    if REGISTERED.get(method) == "basis":     # basis-scratch and basis-from-conv differ in their start only
        return [(config, basis_spec(config)) for config in map(basis_config, basis_rates())]
    if method in ("mvnet-a", "mvnet-b"):
        return list(_mvnet_candidates("shared" if method == "mvnet-a" else "separate"))
    raise ValueError(f"method={method!r} is not one of {METHODS}")


# ----------------------------------------------------------------------------- matching
def _distance(stored_bits, budget) -> float:
    return abs(math.log(stored_bits / (budget * baseline_cost().stored_bits)))


@functools.cache
def match_budget(method: str, budget: float) -> Choice:
    """The configuration of ``method`` whose stored bits are nearest ``budget`` x the baseline's (ties: the
    first candidate), marked not reachable, with the reason, when it is off by more than a factor TOLERANCE."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if not isinstance(budget, (int, float)) or not 0 < budget < 1:
        raise ValueError(f"budget={budget!r} must be a fraction of the baseline's stored bits, 0 < budget < 1")
    options = candidates(method)
    if REGISTERED[method] == "basis":
        # Eq. 6 in closed form for the ~800 rates; summarize only the one chosen
        best = min(options, key=lambda option: _distance(32 * _basis_stored(option[0]), budget))
    else:
        best = min(options, key=lambda option: _distance(spec_cost(option[1]).stored_bits, budget))
    hyperparameters, spec = best
    choice = Choice(method, budget, hyperparameters, spec, spec_cost(spec))
    if choice.stored_ratio / budget > TOLERANCE or budget / choice.stored_ratio > TOLERANCE:
        reason = (f"the nearest configuration ({choice.describe()}) stores {100 * choice.stored_ratio:.1f} % of the "
                  f"baseline's bits, more than a factor {TOLERANCE} from {100 * budget:.0f} %: {LIMITS[method]}")
        choice = dataclasses.replace(choice, reachable=False, reason=reason)
    return choice


def baseline_choice() -> Choice:
    return Choice("baseline", None, {"widths": [20, 50, 500]}, VARIANTS["baseline"], baseline_cost())


def budget_table(methods=METHODS, budgets=BUDGETS) -> list:
    """Every (method, budget) :class:`Choice`, reachable or not, method-major, after the baseline."""
    return [baseline_choice()] + [match_budget(method, budget) for method in methods for budget in budgets]


def format_budget_table(choices=None) -> str:
    """The choices as aligned text: run, hyperparameters, % of the weights, % of the stored bits, % of the
    multiplications (and their count); unreachable ones with their reason."""
    choices = budget_table() if choices is None else choices
    lines = [f"{'run':<22} {'weights %':>9} {'bits %':>7} {'mults':>10} {'mults %':>7}  hyperparameters"]
    notes = []
    for choice in choices:
        if not choice.reachable:
            notes.append(f"not reachable: {choice.run}: {choice.reason}")
            continue
        lines.append(f"{choice.run:<22} {100 * choice.weight_ratio:>9.2f} {100 * choice.stored_ratio:>7.2f} "
                     f"{choice.cost.flops:>10,} {100 * choice.flops_ratio:>7.1f}  {choice.describe()}")
    return "\n".join(lines + notes)
