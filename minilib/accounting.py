"""Storage and multiplications of a model, layer by layer, counted as the papers' tables count them.

Columns, for one sample:

- ``conv_weights``: filter weights of convolution and linear layers, biases excluded (the
  tables' "Weights");
- ``mask_bits``: entries of 1-bit masks (full-stack filters); 0 for every other layer;
- ``params``: every 32-bit parameter, biases included;
- ``memory_kb`` = (32 * conv_weights + mask_bits) / 8 / 1024: filters stored as 32-bit floats,
  masks as bits, 1 KB = 1024 bytes (the tables' "Memory");
- ``flops``: multiplications (the tables' "FLOPs").

:func:`summarize` runs one zero batch through the model to learn every layer's input and
output shape, then costs each leaf layer. Plain ``Conv2d`` / ``Linear`` layers are costed here:
weight taps x output positions (:func:`conv_cost`). A layer with a method
``cost(in_shape, out_shape) -> dict(conv_weights, mask_bits, params, flops)`` is costed by
that method: each method file owns its formulas (versatile filters: Proposition 1), so this
module knows nothing about any method. Storage that several layers may hold (one filter
basis shared across layers) is included in each such layer's counts and also listed under
the optional key ``shared`` as ``[(owner, conv_weights, params), ...]``; :func:`summarize`
keeps it in the first row that lists the owner (by identity) and subtracts it from the others.

This module never imports torch. Torch models are traced by :mod:`minilib.torch.accounting`, which
:func:`register_backend` s the torch tracer and torch's plain layers when ``minilib.torch`` is
imported (every torch model of this project comes from there); :func:`summarize` then takes either.

The ``format_*`` helpers print numbers the way Wang et al. (NeurIPS 2018, Tables 2 and 3) do.
Checked against every row those tables derive from: weights and memory are *rounded*
(218,100 -> "2.2×10^5", not 2.1; 851.95 KB -> "852.0KB", not 851.9), FLOPs are *truncated*
to two decimals (1,200,800 -> "12.00×10^5", not 12.01; 1,217,520 -> "12.17×10^5", not 12.18).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import numpy as np

from .layers import BatchNorm2d, Conv2d, Linear, Module

COST_KEYS = ("conv_weights", "mask_bits", "params", "flops")


# ----------------------------------------------------------------------------- paper-style numbers
def memory_kb(conv_weights: int, mask_bits: int = 0) -> float:
    """(32 * conv_weights + mask_bits) / 8 / 1024: 32-bit filters plus 1-bit masks, in KB of 1024 bytes."""
    return (32 * int(conv_weights) + int(mask_bits)) / 8 / 1024


def _fixed(value, decimals: int, rounding) -> str:
    # Decimal: the float of a count / 10^k is not exact, and 1.175 must not become 1.17 by accident
    return str(Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=rounding))


def format_weights(count: int, decimals: int = 1, exponent: int = 5) -> str:
    """A weight count as the paper prints it: count / 10^exponent *rounded* half-up, e.g. 218,100 -> '2.2×10^5'.

    Table 2 uses one decimal, Table 3's v2 rows two ('1.18×10^5'); the exponent stays 5 even
    below 10^5 ('0.79×10^5').
    """
    return f"{_fixed(Decimal(int(count)).scaleb(-exponent), decimals, ROUND_HALF_UP)}×10^{exponent}"


def format_memory(kb: float, decimals: int = 1) -> str:
    """Memory as the paper prints it: KB *rounded* half-up to one decimal, e.g. 851.953 -> '852.0KB'."""
    return f"{_fixed(Decimal(float(kb)), decimals, ROUND_HALF_UP)}KB"


def format_flops(count: int, decimals: int = 2, exponent: int = 5) -> str:
    """Multiplications as the paper prints them: count / 10^exponent *truncated*, e.g. 1,217,520 -> '12.17×10^5'.

    Rounding would print 12.18 there and 12.01 for 1,200,800 (the paper: 12.00); truncation
    matches every row of Tables 2 and 3 that follows from the architecture.
    """
    return f"{_fixed(Decimal(int(count)).scaleb(-exponent), decimals, ROUND_DOWN)}×10^{exponent}"


def format_millions(count: int, decimals: int = 2) -> str:
    """A count in millions, rounded half-up, as MVNet's #MUL column prints it: 2,293,000 -> '2.29'."""
    return _fixed(Decimal(int(count)).scaleb(-6), decimals, ROUND_HALF_UP)


_PRINTED = re.compile(r"^\s*([0-9.]+)\s*(?:×\s*10\^(\d+)|KB|%)?\s*$")


def paper_number(text: str) -> float:
    """The value of a printed table entry: '4.3×10^5' -> 430000.0, '1681.6KB' -> 1681.6, '99.20%' -> 99.2."""
    match = _PRINTED.match(text)
    if not match:
        raise ValueError(f"text={text!r} is not a number as the paper prints it ('4.3×10^5', '1681.6KB', '99.20%')")
    mantissa, exponent = match.groups()
    return float(Decimal(mantissa).scaleb(int(exponent or 0)))


def printed_decimals(text: str) -> int:
    """How many decimals a printed entry has: '1.18×10^5' -> 2."""
    mantissa = re.split(r"[×K%]", text)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


# ----------------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class LayerCost:
    """One leaf layer's row: shapes per sample (C, H, W) and its costs."""
    name: str
    type: str
    in_shape: tuple
    out_shape: tuple
    conv_weights: int
    mask_bits: int
    params: int
    flops: int

    @property
    def memory_kb(self) -> float:
        return memory_kb(self.conv_weights, self.mask_bits)

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), **{key: getattr(self, key) for key in COST_KEYS},
                "memory_kb": self.memory_kb}


@dataclass
class Summary:
    """Rows of :class:`LayerCost` in forward order, with totals; ``str(summary)`` is a table."""
    input_shape: tuple
    rows: list = field(default_factory=list)

    def _total(self, key) -> int:
        return sum(getattr(row, key) for row in self.rows)

    @property
    def conv_weights(self) -> int:
        return self._total("conv_weights")

    @property
    def mask_bits(self) -> int:
        return self._total("mask_bits")

    @property
    def params(self) -> int:
        return self._total("params")

    @property
    def flops(self) -> int:
        return self._total("flops")

    @property
    def memory_kb(self) -> float:
        return memory_kb(self.conv_weights, self.mask_bits)

    @property
    def params_32bit(self) -> float:
        """All parameters in units of 32-bit numbers, 1-bit masks as 1/32 each (MVNet's "#param (32-bit)")."""
        return self.params + self.mask_bits / 32

    @property
    def totals(self) -> dict:
        return {**{key: self._total(key) for key in COST_KEYS}, "memory_kb": self.memory_kb}

    def paper_strings(self, weight_decimals: int = 1, flops_decimals: int = 2, like: dict | None = None) -> dict:
        """Totals printed as the paper prints them; ``like`` (a printed row) sets the decimals from its strings."""
        if like is not None:
            weight_decimals, flops_decimals = printed_decimals(like["weights"]), printed_decimals(like["flops"])
        return {"weights": format_weights(self.conv_weights, weight_decimals), "memory": format_memory(self.memory_kb),
                "flops": format_flops(self.flops, flops_decimals)}

    def to_dict(self) -> dict:
        """Plain dicts and lists (JSON-ready): input_shape, layers, totals, paper_strings."""
        return {"input_shape": list(self.input_shape), "layers": [row.to_dict() for row in self.rows],
                "totals": self.totals, "paper_strings": self.paper_strings()}

    def table(self) -> str:
        """The rows, a total line and the totals in the paper's style, as aligned text."""
        def shape(dims):
            return "x".join(map(str, dims))

        def counts(item):
            return [f"{item.conv_weights:,}", f"{item.mask_bits:,}", f"{item.params:,}", f"{item.memory_kb:.1f}",
                    f"{item.flops:,}"]

        head = ["layer", "type", "in", "out", "weights", "mask bits", "params", "memory KB", "FLOPs"]
        lines = [[row.name, row.type, shape(row.in_shape), shape(row.out_shape), *counts(row)] for row in self.rows]
        lines.append(["total", "", shape(self.input_shape), "", *counts(self)])
        widths = [max(len(line[k]) for line in [head, *lines]) for k in range(len(head))]
        text = ["  ".join(v.ljust(w) if k < 4 else v.rjust(w) for k, (v, w) in enumerate(zip(line, widths))).rstrip()
                for line in [head, *lines]]
        paper = self.paper_strings()
        text.append(f"paper style: weights {paper['weights']}, memory {paper['memory']}, FLOPs {paper['flops']}")
        return "\n".join(text)

    def __str__(self) -> str:
        return self.table()


# ----------------------------------------------------------------------------- costing one layer
@dataclass(frozen=True)
class Backend:
    """How to cost the models of another library: ``trace(model, input_shape)`` returns the calls
    ``[(name, module, in_shape, out_shape), ...]`` of the leaf layers for one sample, ``plain_cost(module,
    out_shape)`` the costs of that library's plain layers (or None for a layer it does not know)."""
    model_type: type
    trace: Callable
    plain_cost: Callable


_BACKENDS: list = []


def register_backend(backend: Backend) -> None:
    """Let :func:`summarize` cost models of ``backend.model_type`` (``minilib.torch`` registers torch's)."""
    if all(known.model_type is not backend.model_type for known in _BACKENDS):
        _BACKENDS.append(backend)


def conv_cost(layer, out_hw) -> dict:
    """Storage and multiplications of one ordinary convolution for one sample (minilib ``Conv2d`` or torch's).

    ``conv_weights`` = the n*c*kh*kw weight taps, each one multiplication per output position, so
    ``flops`` = conv_weights * OH*OW; ``params`` adds the n biases. The baseline of every table.
    """
    weight = layer.params["weight"] if isinstance(layer, Module) else layer.weight
    taps = math.prod(tuple(weight.shape))
    return {"conv_weights": taps, "mask_bits": 0, "params": _num_params(layer),
            "flops": taps * math.prod(int(v) for v in out_hw)}


def linear_cost(weights: int, params: int, out_shape) -> dict:
    """A linear layer of ``weights`` taps: one multiplication per tap and output position; (out_features,)
    has one "position"."""
    positions = int(np.prod(out_shape[1:])) if len(out_shape) > 1 else 1
    return {"conv_weights": weights, "mask_bits": 0, "params": params, "flops": weights * positions}


def _plain_cost(module, out_shape):
    """Costs of the layers accounting knows itself (or a registered backend knows), or None for any other."""
    if isinstance(module, Conv2d):
        return conv_cost(module, out_shape[1:])
    if isinstance(module, Linear):
        return linear_cost(np.asarray(module.params["weight"]).size, _num_params(module), out_shape)
    if isinstance(module, BatchNorm2d):
        # scale and shift fold into the preceding convolution at inference: parameters, no multiplications
        return {"conv_weights": 0, "mask_bits": 0, "params": _num_params(module), "flops": 0}
    for backend in _BACKENDS:
        cost = backend.plain_cost(module, out_shape)
        if cost is not None:
            return cost
    if _num_params(module) == 0:            # ReLU, pooling, flatten, dropout: no stored filters
        return {"conv_weights": 0, "mask_bits": 0, "params": 0, "flops": 0}
    return None


def _num_params(module) -> int:
    if isinstance(module, Module):
        return int(sum(np.asarray(p).size for p in module.params.values()))
    return int(sum(p.numel() for p in module.parameters()))


def layer_cost(name, module, in_shape, out_shape) -> dict:
    """``{conv_weights, mask_bits, params, flops}`` of one layer for one sample (shapes without the batch axis),
    plus ``shared`` when the layer's ``cost`` lists storage other layers may hold too."""
    if callable(getattr(module, "cost", None)):
        cost = module.cost(tuple(in_shape), tuple(out_shape))
        missing = [key for key in COST_KEYS if key not in cost]
        if missing:
            raise ValueError(f"{type(module).__name__}.cost() of layer {name!r} returned {sorted(cost)}; "
                             f"it must return the keys {list(COST_KEYS)} (missing {missing})")
        result = {key: int(cost[key]) for key in COST_KEYS}
        if cost.get("shared"):
            result["shared"] = [(owner, int(weights), int(params)) for owner, weights, params in cost["shared"]]
        return result
    cost = _plain_cost(module, tuple(out_shape))
    if cost is None:
        raise TypeError(f"layer {name!r} ({type(module).__name__}) has parameters but no cost information: "
                        f"accounting costs Conv2d and Linear itself; give other layers a method "
                        f"cost(in_shape, out_shape) returning {list(COST_KEYS)}")
    return cost


# ----------------------------------------------------------------------------- tracing shapes
def leaves(module, children, prefix=""):
    """(qualified name, module) of every leaf, PyTorch naming; a module with ``cost`` is a leaf.

    ``children(module)`` lists a module's ``(key, child)`` pairs; a backend's tracer passes its own.
    """
    kids = children(module)
    if callable(getattr(module, "cost", None)) or not kids:
        yield prefix, module
        return
    for key, child in kids:
        yield from leaves(child, children, f"{prefix}.{key}" if prefix else str(key))


def _trace_numpy(model, input_shape):
    """Calls (name, module, in_shape, out_shape) of the leaves, in order, for one zero sample."""
    found = list(leaves(model, lambda m: list(enumerate(m.children()))))
    modules = [m for _, m in model.named_modules()]
    saved = [(m, m.training, m.cache, m.__dict__.get("forward")) for m in modules]
    dtype = next((p.dtype for m in modules for p in m.params.values()), np.float64)
    calls = []
    for name, module in found:
        def traced(x, _name=name, _module=module, _forward=module.forward):
            out = _forward(x)
            calls.append((_name, _module, tuple(np.shape(x)[1:]), tuple(np.shape(out)[1:])))
            return out
        module.forward = traced             # an instance attribute shadows the class's forward
    try:
        model.eval()                        # BatchNorm must not update its running statistics
        model.forward(np.zeros((1, *input_shape), dtype=dtype))
    finally:
        for module, training, cache, forward in saved:
            module.training, module.cache = training, cache
            if forward is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = forward
    return calls


def summarize(model, input_shape) -> Summary:
    """Per-layer weights, mask bits, parameters, memory and multiplications of ``model`` for one sample.

    ``model``: a minilib ``Module`` or a ``torch.nn.Module``; ``input_shape``: one sample's shape,
    e.g. (1, 28, 28). The model runs once on a zero batch in eval mode (its modes, and for
    minilib its caches, are restored). A layer called twice counts its storage once and its
    multiplications every time; storage shared by several layers (``shared`` in a layer's
    cost, e.g. one filter basis) counts once, in the row of the first layer that uses it.
    """
    input_shape = tuple(int(v) for v in input_shape)
    if isinstance(model, Module):
        calls = _trace_numpy(model, input_shape)
    else:
        backend = next((known for known in _BACKENDS if isinstance(model, known.model_type)), None)
        if backend is None:
            raise TypeError(f"model must be a minilib Module or a torch.nn.Module, got {type(model).__name__} "
                            f"(torch models are costed once minilib.torch is imported)")
        calls = backend.trace(model, input_shape)
    rows, seen, owners = [], set(), set()
    for name, module, in_shape, out_shape in calls:
        cost = layer_cost(name, module, in_shape, out_shape)
        shared = cost.pop("shared", [])
        if id(module) in seen:              # a layer called twice stores its weights once
            cost.update(conv_weights=0, mask_bits=0, params=0)
        else:
            for owner, weights, params in shared:
                if id(owner) in owners:     # storage several layers hold (one basis) counts once, in the first
                    cost["conv_weights"] -= weights
                    cost["params"] -= params
                owners.add(id(owner))
        seen.add(id(module))
        rows.append(LayerCost(name or type(module).__name__, type(module).__name__, in_shape, out_shape, **cost))
    return Summary(input_shape, rows)
