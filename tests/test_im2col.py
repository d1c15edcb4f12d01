"""im2col / col2im and the output-size formula.

* ``im2col`` and ``col2im`` agree with their loop versions (``*_naive``) on the seeded
  random convolution configurations (stride, padding, dilation, rectangular kernels);
* ``im2col`` agrees with ``torch.nn.functional.unfold`` once unfold's (N, C*kh*kw, L)
  layout is rearranged into minilib's (C*kh*kw, N*L);
* ``col2im`` is the adjoint of ``im2col`` (<im2col(x), y> == <x, col2im(y)>), a Hypothesis
  property over random shapes; this is the identity the convolution backward pass relies on;
* a hand-computed example and ``conv_output_size`` against torch's own output shapes.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings, strategies as st

from minilib import col2im, col2im_naive, conv_output_size, im2col, im2col_naive
from torch_helpers import assert_close, config_id, conv_configs, to_torch

CONFIGS = conv_configs(seed=10, max_dilation=3)
IDS = [f"{i}-{config_id(c)}" for i, c in enumerate(CONFIGS)]


def window_args(cfg):
    return cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"]


def random_x(cfg, seed):
    return np.random.default_rng(seed).standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_im2col_matches_naive(idx):
    x = random_x(CONFIGS[idx], seed=idx)
    cols = im2col(x, *window_args(CONFIGS[idx]))
    np.testing.assert_array_equal(cols, im2col_naive(x, *window_args(CONFIGS[idx])))


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_col2im_matches_naive(idx):
    cfg = CONFIGS[idx]
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    n_rows, n_cols = im2col(np.zeros(x_shape), *window_args(cfg)).shape
    cols = np.random.default_rng(50 + idx).standard_normal((n_rows, n_cols))
    got = col2im(cols, x_shape, *window_args(cfg))
    assert got.shape == x_shape
    # Summation order may differ between the two versions, hence allclose, not equality.
    assert_close(got, col2im_naive(cols, x_shape, *window_args(cfg)), "col2im")


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_im2col_matches_torch_unfold(idx):
    cfg = CONFIGS[idx]
    x = random_x(cfg, seed=100 + idx)
    kernel, stride, padding, dilation = window_args(cfg)
    unfolded = TF.unfold(to_torch(x), kernel, dilation=dilation, padding=padding, stride=stride)  # (N, C*kh*kw, L)
    expected = unfolded.permute(1, 0, 2).reshape(unfolded.shape[1], -1)                          # (C*kh*kw, N*L)
    assert_close(im2col(x, kernel, stride, padding, dilation), expected, "im2col vs unfold")


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_col2im_matches_torch_fold(idx):
    """torch's fold is unfold's adjoint too, so col2im must equal it on the same columns."""
    cfg = CONFIGS[idx]
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    kernel, stride, padding, dilation = window_args(cfg)
    n_rows, n_cols = im2col(np.zeros(x_shape), *window_args(cfg)).shape
    cols = np.random.default_rng(150 + idx).standard_normal((n_rows, n_cols))
    cols_t = to_torch(cols).reshape(n_rows, cfg["N"], -1).permute(1, 0, 2)                     # (N, C*kh*kw, L)
    expected = TF.fold(cols_t, (cfg["H"], cfg["W"]), kernel, dilation=dilation, padding=padding, stride=stride)
    assert_close(col2im(cols, x_shape, kernel, stride, padding, dilation), expected, "col2im vs fold")


def test_im2col_hand_computed_example():
    """x = 0..8 on a 3x3 grid, 2x2 kernel, stride 1: rows are kernel taps, columns are windows."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    expected = np.array([[0, 1, 3, 4],      # tap (0, 0) of windows at (0,0), (0,1), (1,0), (1,1)
                         [1, 2, 4, 5],      # tap (0, 1)
                         [3, 4, 6, 7],      # tap (1, 0)
                         [4, 5, 7, 8]], dtype=float)
    np.testing.assert_array_equal(im2col(x, 2), expected)
    # col2im of all ones counts how many windows read each pixel.
    np.testing.assert_array_equal(col2im(np.ones((4, 4)), x.shape, 2), [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]])


def test_im2col_column_order_is_batch_then_pixels():
    """Columns are ordered (n, oh, ow): with a 1x1 kernel im2col is x transposed to (C, N*H*W)."""
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5))
    np.testing.assert_array_equal(im2col(x, 1), x.transpose(1, 0, 2, 3).reshape(2, -1))


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (5, 3, 1, 0, 1), (5, 3, 2, 1, 1), (8, 3, 3, 2, 2), (7, 1, 2, 0, 1), (6, 2, 2, 0, 3), (4, 4, 1, 0, 1),
])
def test_conv_output_size_matches_torch(size, kernel, stride, padding, dilation):
    out = TF.conv2d(torch.zeros(1, 1, size, size, dtype=torch.float64), torch.zeros(1, 1, kernel, kernel, dtype=torch.float64),
                    stride=stride, padding=padding, dilation=dilation)
    assert conv_output_size(size, kernel, stride, padding, dilation) == out.shape[-1]


@st.composite
def window_problems(draw):
    """A random (x_shape, kernel, stride, padding, dilation); invalid combinations are skipped with assume."""
    shape = tuple(draw(st.integers(1, hi)) for hi in (3, 3, 9, 9))
    pair = lambda lo, hi: (draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))  # noqa: E731
    kernel, stride, padding, dilation = pair(1, 4), pair(1, 3), pair(0, 2), pair(1, 3)
    for axis in range(2):
        assume(dilation[axis] * (kernel[axis] - 1) + 1 <= shape[2 + axis] + 2 * padding[axis])
    return shape, kernel, stride, padding, dilation


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(problem=window_problems(), seed=st.integers(0, 2**32 - 1))
def test_col2im_is_adjoint_of_im2col(problem, seed):
    x_shape, kernel, stride, padding, dilation = problem
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    cols = im2col(x, kernel, stride, padding, dilation)
    y = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * y)                                                  # <im2col(x), y>
    rhs = np.sum(x * col2im(y, x_shape, kernel, stride, padding, dilation))  # <x, col2im(y)>
    # Relative to the size of the terms summed, so cancellation cannot make the bound vacuous or too tight.
    scale = np.sum(np.abs(cols * y)) + 1e-300
    assert abs(lhs - rhs) <= 1e-10 * scale, f"<im2col(x), y> = {lhs!r} but <x, col2im(y)> = {rhs!r}"
