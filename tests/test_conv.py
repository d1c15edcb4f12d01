"""Functional convolution: ``conv2d_forward`` / ``conv2d_backward``.

Checks, over the same seeded random configurations (stride, padding, dilation,
rectangular kernels, batch 1, with and without bias):

* the im2col version (``minilib.conv``, the one the book derives) and the fast version
  (``minilib.fastconv``, which the layers use) each agree with the slow loop version
  (``*_naive``), forward and backward;
* all agree with ``torch.nn.functional.conv2d`` in float64 (output, dx, dw, db);
* a hand-computed example, so the pair cannot agree on a shared mistake unnoticed.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from minilib import (conv2d_backward, conv2d_backward_fast, conv2d_backward_naive, conv2d_forward, conv2d_forward_fast,
                     conv2d_forward_naive, conv_output_size)
from torch_helpers import assert_close, config_id, conv_configs, to_torch

CONFIGS = conv_configs(seed=0)
IMPLEMENTATIONS = {"im2col": (conv2d_forward, conv2d_backward), "fast": (conv2d_forward_fast, conv2d_backward_fast)}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def conv(request):
    """(forward, backward) of one implementation; every test below runs for each."""
    return IMPLEMENTATIONS[request.param]
IDS = [f"{i}-{config_id(c)}" for i, c in enumerate(CONFIGS)]


def make_inputs(cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w = rng.standard_normal((cfg["F"], cfg["C"], *cfg["kernel"]))
    b = rng.standard_normal(cfg["F"]) if cfg["bias"] else None
    return rng, x, w, b


def geometry(cfg):
    return cfg["stride"], cfg["padding"], cfg["dilation"]


def test_conv_configs_cover_the_edge_cases():
    """The random configurations must include the cases the parity tests promise to cover."""
    assert any(c["N"] == 1 for c in CONFIGS)
    assert any(c["kernel"][0] != c["kernel"][1] for c in CONFIGS)
    assert {s for c in CONFIGS for s in c["stride"]} == {1, 2, 3}
    assert {p for c in CONFIGS for p in c["padding"]} == {0, 1, 2}
    assert {d for c in CONFIGS for d in c["dilation"]} == {1, 2}
    assert {c["H"] % 2 for c in CONFIGS} == {0, 1} and {c["W"] % 2 for c in CONFIGS} == {0, 1}
    assert {c["bias"] for c in CONFIGS} == {True, False}


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_conv_forward_backward_match_naive_loops(idx, conv):
    forward, backward = conv
    cfg = CONFIGS[idx]
    rng, x, w, b = make_inputs(cfg, seed=100 + idx)
    out, cache = forward(x, w, b, *geometry(cfg))
    out_naive, cache_naive = conv2d_forward_naive(x, w, b, *geometry(cfg))
    assert_close(out, out_naive, "forward")

    dout = rng.standard_normal(out.shape)
    for got, want, name in zip(backward(dout, cache), conv2d_backward_naive(dout, cache_naive), "dx dw db".split()):
        if want is None:
            assert got is None, f"{name} must be None without bias"
        else:
            assert_close(got, want, name)


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=IDS)
def test_conv_functional_matches_torch(idx, conv):
    forward, backward = conv
    cfg = CONFIGS[idx]
    rng, x, w, b = make_inputs(cfg, seed=200 + idx)
    stride, padding, dilation = geometry(cfg)
    out, cache = forward(x, w, b, stride, padding, dilation)

    x_t, w_t = to_torch(x, True), to_torch(w, True)
    b_t = to_torch(b, True) if b is not None else None
    out_t = TF.conv2d(x_t, w_t, b_t, stride=stride, padding=padding, dilation=dilation)
    assert_close(out, out_t, "forward")
    expected_hw = tuple(conv_output_size(cfg[s], cfg["kernel"][a], stride[a], padding[a], dilation[a])
                        for a, s in enumerate("HW"))
    assert out.shape == (cfg["N"], cfg["F"], *expected_hw)

    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    out_t.backward(to_torch(dout))
    assert_close(dx, x_t.grad, "dx")
    assert_close(dw, w_t.grad, "dw")
    if b is None:
        assert db is None
    else:
        assert_close(db, b_t.grad, "db")


def test_conv_hand_computed_example(conv):
    """3x3 input 0..8, 2x2 kernel of ones, bias 1: each output is 1 + the sum of a 2x2 window."""
    forward, backward = conv
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    out, cache = forward(x, w, np.array([1.0]))
    np.testing.assert_array_equal(out, [[[[1 + 0 + 1 + 3 + 4, 1 + 1 + 2 + 4 + 5],
                                          [1 + 3 + 4 + 6 + 7, 1 + 4 + 5 + 7 + 8]]]])
    dx, dw, db = backward(np.ones_like(out), cache)
    # Each input pixel is counted once per window that contains it: corners 1, edges 2, centre 4.
    np.testing.assert_array_equal(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]])
    np.testing.assert_array_equal(dw, [[[[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]]])
    np.testing.assert_array_equal(db, [4.0])


def test_conv_stride_padding_dilation_example(conv):
    """A 1x1 input pixel reaches the output only through the taps that land on it."""
    forward, backward = conv
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    out, _ = forward(x, w, None, stride=1, padding=2, dilation=2)
    # out[oh, ow] = sum_ij w[i, j] x_pad[oh + 2i, ow + 2j]; the 1 sits at x_pad[4, 4] -> i = (4 - oh)/2.
    expected = np.zeros((5, 5))
    for i in range(3):
        for j in range(3):
            expected[4 - 2 * i, 4 - 2 * j] = w[0, 0, i, j]
    np.testing.assert_array_equal(out[0, 0], expected)


def test_conv_keeps_float32(conv):
    """float32 inputs stay float32 (the library's speed path) and still match float64 closely."""
    forward, backward = conv
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    out32, cache = forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 2, 1)
    out64, _ = forward(x, w, b, 2, 1)
    assert out32.dtype == np.float32
    dx32, dw32, db32 = backward(np.ones_like(out32), cache)
    assert dx32.dtype == dw32.dtype == db32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)


def test_conv_does_not_modify_inputs(conv):
    forward, backward = conv
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    copies = [a.copy() for a in (x, w, b)]
    out, cache = forward(x, w, b, 1, 1)
    backward(rng.standard_normal(out.shape), cache)
    for original, copy in zip((x, w, b), copies):
        np.testing.assert_array_equal(original, copy)


def test_torch_reference_is_float64():
    """Guard the premise of every parity test: the torch side really runs in float64."""
    assert to_torch(np.ones(2, dtype=np.float32)).dtype == torch.float64
