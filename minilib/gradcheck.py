"""Numerical gradient checks by centred differences.

For a scalar function L(x), dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / (2h), with an
error of O(h^2). For a function with array output y = f(x) and upstream gradient
dy, we check the vector-Jacobian product: L(x) = <f(x), dy>.
"""
from __future__ import annotations

import numpy as np

from . import checks


def rel_error(a, b, eps=1e-12) -> float:
    """max |a - b| / max(|a| + |b|, eps), elementwise: ~1e-10 or less means the gradients agree."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), eps)))


def numeric_gradient(f, x, dout=None, h=1e-5):
    """Centred-difference gradient of ``<f(x), dout>`` with respect to ``x``.

    ``f`` is called with no arguments and must read ``x`` (which is perturbed in place
    and restored), so it works for parameters held inside a layer too. ``dout``
    defaults to 1 (a scalar ``f``). Costs 2 * x.size calls of ``f``.
    """
    # an integer x would round x + h back to x and give a zero gradient
    checks.array(x, "x")
    checks.positive_number(h, "h")
    grad = np.zeros_like(x, dtype=float)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        saved = x[i].copy()
        x[i] = saved + h
        plus = np.sum(f() * (1.0 if dout is None else dout))
        x[i] = saved - h
        minus = np.sum(f() * (1.0 if dout is None else dout))
        x[i] = saved
        grad[i] = (plus - minus) / (2 * h)
    return grad


def check_layer_gradients(layer, x, rng, h=1e-5):
    """Compare a layer's analytic ``backward`` with centred differences, for the input
    and every parameter. Returns ``{name: rel_error}`` with keys ``"x"`` and each
    parameter. ``rng`` (a ``numpy.random.Generator`` or an int seed) draws the
    upstream gradient."""
    rng = checks.rng(rng)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    errors = {
        "x": rel_error(dx, numeric_gradient(lambda: layer.forward(x), x, dout, h))
    }
    for key, param in layer.params.items():
        analytic = layer.grads[key]
        numeric = numeric_gradient(lambda: layer.forward(x), param, dout, h)
        errors[key] = rel_error(analytic, numeric)
    return errors
