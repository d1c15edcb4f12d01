"""Checks for the compression_rate exercise (chapter 6): Eq. 6 of the filter-basis paper against the weights a
:class:`minilib.basis.BasisConv2d` actually stores, and against its special cases Eq. 4 (s = 1) and Eq. 5 (s = c)."""
import math

import numpy as np
import pytest

from minilib.basis import BasisConv2d

EXERCISE = "compression_rate"


def stored_weight_ratio(c, n, k, m, s):
    """Count the parameters of a real basis layer (no bias) and divide by the dense layer's n*c*kh*kw."""
    layer = BasisConv2d(c, n, k, n_basis=m, basis_channels=c // s, bias=False, rng=np.random.default_rng(0))
    stored = sum(p.size for p in layer.params.values())
    kh, kw = (k, k) if isinstance(k, int) else k
    return stored / (n * c * kh * kw)


@pytest.mark.parametrize("c, n, k, m, s", [(16, 32, 3, 8, 4), (64, 64, 3, 32, 8), (12, 6, 5, 3, 3), (8, 8, 1, 4, 2)])
def test_equals_the_stored_weights_of_a_basis_layer(implementation, c, n, k, m, s):
    assert math.isclose(implementation(c, n, k, m, s), stored_weight_ratio(c, n, k, m, s), rel_tol=1e-12)


def test_one_split_is_eq4(implementation):
    c, n, k, m = 64, 128, 3, 32
    assert math.isclose(implementation(c, n, k, m, 1), m / n + m / (c * k * k), rel_tol=1e-12)


def test_one_channel_per_split_is_eq5(implementation):
    c, n, k, m = 64, 128, 3, 8
    assert math.isclose(implementation(c, n, k, m, c), m / (n * c) + m / (k * k), rel_tol=1e-12)


def test_rectangular_kernel(implementation):
    assert math.isclose(implementation(16, 8, (3, 5), 4, 2), stored_weight_ratio(16, 8, (3, 5), 4, 2), rel_tol=1e-12)


def test_returns_a_float(implementation):
    rate = implementation(256, 256, 3, 64, 4)
    assert isinstance(rate, float), f"got {type(rate).__name__}, expected float"
    assert math.isclose(rate, 64 / (256 * 4) + 64 / (64 * 9), rel_tol=1e-12)


def test_splits_must_divide_the_channels(implementation):
    with pytest.raises(ValueError, match=r"\bs\b"):
        implementation(10, 8, 3, 4, 3)
