"""Checks for the conv_backward exercise (chapter 2): dx, dw and db against PyTorch autograd in float64.

The forward pass is the library's ``conv2d_forward`` (its cache is the exercise's input); the expected
gradients come from ``torch.nn.functional.conv2d`` and ``backward``, which share no code with minilib.
"""
import numpy as np
import pytest

from minilib import conv2d_forward

EXERCISE = "conv_backward"


def torch_gradients(x, w, b, dout, stride, padding, dilation):
    # imported here: a stub fails before this point, so checking one never waits for torch to load
    import torch
    import torch.nn.functional as TF

    xt, wt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w))
    bt = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    out = TF.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation)
    out.backward(torch.from_numpy(dout))
    return xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


def check(implementation, seed, x_shape, w_shape, stride=1, padding=0, dilation=1, bias=True):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dout = rng.standard_normal(out.shape)
    grads = implementation(dout, cache)
    assert isinstance(grads, tuple) and len(grads) == 3, "return the tuple (dx, dw, db)"
    for name, got, expected in zip(("dx", "dw", "db"), grads, torch_gradients(x, w, b, dout, stride, padding,
                                                                              dilation)):
        if expected is None:
            assert got is None, f"{name} must be None when the forward pass had no bias"
            continue
        assert np.shape(got) == expected.shape, f"{name} has shape {np.shape(got)}, expected {expected.shape}"
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, err_msg=name)


def test_one_image_one_channel(implementation):
    check(implementation, 0, (1, 1, 5, 5), (1, 1, 3, 3))


def test_batch_and_channels(implementation):
    check(implementation, 1, (3, 2, 6, 5), (4, 2, 3, 3))


def test_padding(implementation):
    check(implementation, 2, (2, 3, 5, 5), (2, 3, 3, 3), padding=1)


def test_stride_two_leaves_some_pixels_without_gradient(implementation):
    check(implementation, 3, (2, 2, 8, 8), (3, 2, 2, 2), stride=2)
    check(implementation, 4, (1, 2, 7, 7), (3, 2, 1, 1), stride=3)


def test_dilation_and_rectangular_kernel(implementation):
    check(implementation, 5, (2, 2, 9, 8), (3, 2, 2, 3), stride=(1, 2), padding=(2, 1), dilation=(2, 1))


def test_without_bias_db_is_none(implementation):
    check(implementation, 6, (2, 2, 5, 5), (3, 2, 3, 3), padding=1, bias=False)


@pytest.mark.parametrize("seed", range(8))
def test_random_configurations(implementation, seed):
    rng = np.random.default_rng(100 + seed)
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 2, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    c, f = (int(v) for v in rng.integers(1, 4, size=2))
    check(implementation, seed, (int(rng.integers(1, 4)), c, 7, 6), (f, c, *kernel), stride, padding, dilation,
          bias=bool(rng.integers(2)))
