"""Per-layer choice among a twin's equal formulations, by measurement.

Every twin computes its paper's function in more than one way, all equal in exact arithmetic, with the same
gradients (float32 rounding may differ in the last bits, as any reordering of a sum does):

* :class:`~minilib.torch.versatile.VersatileConv2d` (Wang et al.'s Eq. 2-4, 8): ``"cropped"`` (s convolutions with
  the secondaries' cropped kernels, Prop. 1's multiplications) or ``"dense"`` (one convolution with the stacked
  masked weight);
* :class:`~minilib.torch.basis.BasisConv2d` (Li et al.'s Eq. 9-11): ``"reshape"``, ``"loop"``, ``"grouped"`` (Eq. 11's
  basis convolutions and 1x1 mix, three ways) or ``"dense"`` (W = coeff · basis, Eq. 9-10, and one convolution);
* :class:`~minilib.torch.fullstack.FullStackConv2d` (Han et al.'s Eq. 3-5): ``"dense"`` only (M∘B and one
  convolution; :mod:`minilib.torch.fullstack` says why Eq. 13 is not a candidate).

Which runs fastest depends on the layer's shape, the batch, the threads and the machine: fewer multiplications do
not make a small convolution proportionally faster. :func:`choose_formulations` times every formulation of every
twin of a model on the layer's own input shape (captured from one forward pass) and keeps the fastest; the record
it returns (JSON-ready) says what was measured and chosen, and :func:`set_formulations` replays it.

Without a choice, a layer keeps the formulation it was built with: the defaults (``"cropped"``, ``"reshape"``,
``"dense"``) are fixed, so a network built the same way computes the same floats. A chosen formulation changes only
the rounding; but which one wins depends on the timing, so a run that must be repeatable bit for bit stores the
record and replays it with :func:`set_formulations` rather than choosing again.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from . import basis, fullstack, versatile
from .common import integer, module, real, show, tensor

TWINS = {   # twin class -> (its formulations, its default)
    versatile.VersatileConv2d: (versatile.FORMULATIONS, versatile.DEFAULT_FORMULATION),
    basis.BasisConv2d: (basis.FORMULATIONS, basis.DEFAULT_FORMULATION),
    fullstack.FullStackConv2d: (fullstack.FORMULATIONS, fullstack.DEFAULT_FORMULATION),
}


def twin_layers(model: nn.Module) -> list:
    """(qualified name, layer) of every twin in ``model`` that has formulations, in ``named_modules`` order."""
    return [(name, layer) for name, layer in module(model, "model").named_modules() if type(layer) in TWINS]


def formulations_of(model: nn.Module) -> dict:
    """``{layer name: formulation}`` of every twin in ``model``."""
    return {name: layer.formulation for name, layer in twin_layers(model)}


def set_formulations(model: nn.Module, choices) -> dict:
    """Give the named twins of ``model`` their formulations and return :func:`formulations_of` afterwards.

    ``choices``: ``{layer name: formulation}`` or a record of :func:`choose_formulations` (a list of dicts with
    ``"layer"`` and ``"choice"``), e.g. read back from a result's JSON. A name that is no twin of the model, or a
    formulation the layer does not have, raises ``ValueError`` before any layer changes.
    """
    layers = dict(twin_layers(model))
    if isinstance(choices, (list, tuple)):
        if not all(isinstance(entry, dict) and {"layer", "choice"} <= entry.keys() for entry in choices):
            raise TypeError("choices must be a dict {layer name: formulation} or a record of choose_formulations "
                            "(dicts with 'layer' and 'choice')")
        choices = {entry["layer"]: entry["choice"] for entry in choices}
    if not isinstance(choices, dict):
        raise TypeError(f"choices must be a dict {{layer name: formulation}} or a record of choose_formulations, "
                        f"got {show(choices)}")
    for name, value in choices.items():
        if name not in layers:
            known = ", ".join(layers) or "none"
            raise ValueError(f"choices names layer {name!r}, which is not a twin with formulations in the model "
                             f"(its twins: {known})")
        allowed = TWINS[type(layers[name])][0]
        if value not in allowed:
            raise ValueError(f"choices[{name!r}]={value!r} must be one of {', '.join(map(repr, allowed))} "
                             f"(the formulations of {type(layers[name]).__name__})")
    for name, value in choices.items():
        layers[name].formulation = value
    return formulations_of(model)


# ----------------------------------------------------------------------------- measuring
def input_shapes(model: nn.Module, example_input: torch.Tensor) -> dict:
    """``{layer name: input shape}`` of every twin, from ONE forward pass of ``example_input``.

    The pass runs in eval mode without gradients (so BatchNorm's running statistics are left alone) and the modes
    are restored; only the shapes are kept.
    """
    shapes, handles = {}, []

    def keep(name):
        def hook(_, inputs):            # returns None: a pre-hook's return value would replace the input
            shapes.setdefault(name, tuple(inputs[0].shape))
        return hook

    for name, layer in twin_layers(model):
        handles.append(layer.register_forward_pre_hook(keep(name)))
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training
    return shapes


def _signature(layer: nn.Module, shape: tuple) -> tuple:
    """What a layer's timing depends on besides its formulation: class, configuration (its ``extra_repr`` under
    the default formulation), parameter shapes, input shape, dtype and device. Equal signatures share a timing."""
    current = layer.formulation
    layer.formulation = TWINS[type(layer)][1]
    try:
        config = layer.extra_repr()
    finally:
        layer.formulation = current
    parameters = tuple((name, tuple(p.shape)) for name, p in layer.named_parameters())
    first = next(layer.parameters())
    return type(layer).__name__, config, parameters, shape, str(first.dtype), str(first.device)


def time_formulations(layer: nn.Module, shape: tuple, repeats: int = 3, backward: bool = True,
                      seed: int = 0) -> dict:
    """``{formulation: best seconds}`` of one call of ``layer`` on a random input of ``shape``.

    With ``backward`` the call is a training step's share of the layer: forward, then backward from a fixed random
    output gradient into the input and the parameters (their gradients freed before each call, as
    ``zero_grad(set_to_none=True)`` does); without, the forward alone under ``no_grad``. Each formulation is
    called once untimed (a convolution backend prepares its kernels on the first call), then the formulations
    take turns, ``repeats`` timed calls each, so a burst of load on the machine hits all of them; the best call
    counts. The layer keeps its formulation and its parameters' gradients; torch's global generator is not used.
    """
    allowed = TWINS[type(layer)][0]
    first = next(layer.parameters())
    generator = torch.Generator(device=first.device).manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=first.dtype, device=first.device)
    params = list(layer.parameters())
    saved = [p.grad for p in params]
    current = layer.formulation

    def call():
        if not backward:
            with torch.no_grad():
                layer(x)
            return
        for p in params:
            p.grad = None
        x.grad = None
        layer(x).backward(grad_out)

    try:
        with torch.enable_grad():
            x.requires_grad_(backward)
            with torch.no_grad():
                out_shape = layer(x).shape
            grad_out = torch.randn(out_shape, generator=generator, dtype=first.dtype, device=first.device)
            for name in allowed:
                layer.formulation = name
                call()
            times = {name: float("inf") for name in allowed}
            for _ in range(repeats):
                for name in allowed:
                    layer.formulation = name
                    start = time.perf_counter()
                    call()
                    times[name] = min(times[name], time.perf_counter() - start)
    finally:
        layer.formulation = current
        for p, grad in zip(params, saved):
            p.grad = grad
    return times


def fastest(times: dict, default: str, margin: float = 0.05) -> str:
    """The formulation to use given ``times``: the fastest, unless it saves less than ``margin`` (a fraction) of
    the ``default``'s time, when the default stays (a near-tie is noise, and the default is the documented one)."""
    best = min(times, key=times.get)
    return best if times[best] < (1 - margin) * times[default] else default


def choose_formulations(model: nn.Module, example_input: torch.Tensor, *, repeats: int = 3, backward: bool = True,
                        margin: float = 0.05) -> list:
    """Time every formulation of every twin in ``model`` on its own input shape, give each the fastest, and return
    the record: one dict per twin, in ``named_modules`` order, with ``layer`` (its name), ``kind`` (the class),
    ``input_shape``, ``default``, ``times_s`` (``{formulation: best seconds}``, see :func:`time_formulations`),
    ``choice`` (see :func:`fastest`) and ``measured_on`` (the layer whose timing it shares: layers of equal class,
    configuration and input shape are timed once and choose alike).

    ``example_input``: a batch as training will feed it (the shapes, and so the batch size, matter; the values do
    not); ``repeats``: timed calls per formulation, the best counts; ``backward``: time forward + backward (for
    training) or the forward alone (for inference); ``margin``: how much faster than the default a formulation
    must be to replace it. A model without twins gives an empty record. It takes seconds: the chapter-7 ResNet-20
    at batch 128 has five distinct block convolutions.
    """
    model, example_input = module(model, "model"), tensor(example_input, "example_input")
    repeats = integer(repeats, "repeats", 1)
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {show(backward)}")
    margin = real(margin, "margin", "[0, 1)")
    shapes = input_shapes(model, example_input)
    measured, record = {}, []
    for name, layer in twin_layers(model):
        if name not in shapes:          # a twin the forward pass does not reach keeps its formulation
            continue
        key = _signature(layer, shapes[name])
        if key not in measured:
            measured[key] = name, time_formulations(layer, shapes[name], repeats, backward)
        source, times = measured[key]
        default = TWINS[type(layer)][1]
        layer.formulation = fastest(times, default, margin)
        record.append({"layer": name, "kind": type(layer).__name__, "input_shape": list(shapes[name]),
                       "default": default, "times_s": times, "choice": layer.formulation, "measured_on": source})
    return record
