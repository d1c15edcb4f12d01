"""Swap the ordinary convolutions of a PyTorch model for an efficient-filter twin.

Every ``nn.Conv2d`` becomes the method's twin (:data:`minilib.methods.REGISTRY`) with the same in/out
channels, kernel size, stride, padding and bias flag, so the model's feature-map widths and output shapes
are unchanged while the stored weights shrink (for versatile filters by s*n, Prop. 1 and Eq. 8; for a
filter basis to m*p*k*k + n*s*m, Eq. 6; for full-stack filters to k*c*d*d 32-bit weights, k = n/s,
plus 1-bit masks, Eq. 9-10).
"""
from __future__ import annotations

from torch import nn

from .. import methods
from .common import generator, module as torch_module

METHODS = methods.EFFICIENT     # the methods convert takes: every registered one but the baseline


def _unconvertible(conv: nn.Conv2d) -> str | None:
    """The rule a convolution breaks that the twins do not model, or None."""
    if conv.groups != 1:
        return f"groups={conv.groups} must be 1"
    if conv.dilation != (1, 1):
        return f"dilation={conv.dilation} must be 1"
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} must be 'zeros'"
    if isinstance(conv.padding, str):
        return f"padding={conv.padding!r} must be given as numbers"
    return None


def _names(exclude) -> set:
    """``exclude`` as a set of layer names: one name (a string), or a list, tuple or set of names; None is none."""
    if exclude is None:
        return set()
    if isinstance(exclude, str):
        return {exclude}                    # one name, not its letters
    if not isinstance(exclude, (list, tuple, set, frozenset)):
        raise TypeError(f"exclude must be a layer name or a list of layer names, got {type(exclude).__name__} "
                        f"{exclude!r}")
    wrong = [name for name in exclude if not isinstance(name, str)]
    if wrong:
        raise TypeError(f"exclude={list(exclude)!r} must hold layer names (strings), got {wrong!r}")
    return set(exclude)


def convert(module: nn.Module, method: str, *, exclude=(), rng=None, per_layer=None, **kw) -> nn.Module:
    """Replace, in place, every ``nn.Conv2d`` of ``module`` (except the qualified names in ``exclude``)
    by the twin of ``method`` with the same out_channels; ``kw`` go to every new layer: the method's
    keywords (:mod:`minilib.methods`; for "versatile": delta, g, shared_bias, combine, channel_mode; for
    "basis": n_basis, basis_channels, and basis, split_mode; for "fullstack": s, and masks, learn_masks,
    n_filters). ``rng``: a NumPy Generator every new layer draws from in turn (default: torch's generator).
    ``per_layer``: a function of the ``nn.Conv2d`` being replaced that returns more keywords for its twin
    (a per-layer rule, e.g. m = n/2 basis filters), merged over ``kw``.

    Returns ``module`` (or the new layer when ``module`` itself is an ``nn.Conv2d``). New
    layers take the old weight's device and dtype and are freshly initialised. A layer
    that cannot be converted raises ``ValueError`` naming it and the rule it breaks, e.g.
    ``out_channels`` not divisible by s*n, or ``basis_channels`` not dividing ``in_channels``; exclude it
    to keep it as it is. A keyword outside the method's vocabulary raises
    :class:`minilib.methods.KeywordError`.

    ``module`` must be a ``torch.nn.Module`` (a NumPy minilib model is refused with a ``TypeError``: build the
    torch network with the twins or :func:`minilib.torch.models.build` instead). ``exclude``: qualified layer
    names as a list, tuple or set of strings, or ONE name as a plain string (``exclude="conv1"`` keeps the layer
    ``conv1``; it is never split into letters); a name that is no ``nn.Conv2d`` of the model raises
    ``ValueError``. ``rng`` may also be an int seed (one Generator for all the new layers, drawn in turn).
    The twins are made in float32 or float64: convert a half-precision model before casting it (``.half()``).
    """
    module = torch_module(module, "module")
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {', '.join(map(repr, METHODS))}, got {type(method).__name__} "
                        f"{method!r}")
    spec = methods.check_keywords(method, kw, "twin", among=METHODS, require=per_layer is None)
    twin_class = spec.twin_class()
    exclude = _names(exclude)
    rng = generator(rng)
    if per_layer is not None and not callable(per_layer):
        raise TypeError(f"per_layer must be None or a function of the nn.Conv2d being replaced, "
                        f"got {type(per_layer).__name__}")
    convs = {name: m for name, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    unknown = sorted(exclude - set(convs))
    if unknown:
        raise ValueError(f"exclude={unknown} names no nn.Conv2d of the model; its Conv2d layers are {sorted(convs)}")
    for name, conv in convs.items():
        if name in exclude:
            continue
        label = name or type(module).__name__
        rule = _unconvertible(conv)
        if rule:
            raise ValueError(f"cannot convert layer {label!r} ({conv}) to {method!r}: {rule}; exclude it to keep it")
        try:
            options = kw
            if per_layer is not None:
                extra = per_layer(conv)
                if not isinstance(extra, dict):
                    raise TypeError(f"per_layer must return a dict of keywords, got {type(extra).__name__} for "
                                    f"layer {label!r}")
                options = {**kw, **extra}
                methods.check_keywords(method, options, "twin")
            twin = twin_class(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                              padding=conv.padding, bias=conv.bias is not None, rng=rng, device=conv.weight.device,
                              dtype=conv.weight.dtype, **options)
        except methods.KeywordError:
            raise                           # the same for every layer: no layer to name
        except ValueError as err:
            raise ValueError(f"cannot convert layer {label!r} ({conv}) to {method!r}: {err}") from err
        if not name:
            return twin
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent), child, twin)
    return module
