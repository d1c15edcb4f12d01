"""Max and average pooling, written with the same im2col used for convolution.

Pooling treats every channel as its own image: x (N, C, H, W) is viewed as
(N*C, 1, H, W), so ``im2col`` gives one column of kh*kw values per output position
and pooling is a max or a mean down each column.
"""
from __future__ import annotations

import numpy as np

from . import checks
from .im2col import check_memory, col2im, im2col, window_geometry


def _columns(x, kernel_size, stride, padding, pad_value=0.0):
    """im2col of every channel as its own image: cols (kh*kw, N*C*OH*OW) and (OH, OW).

    The padding is applied here with ``pad_value`` (im2col itself pads with zeros).
    """
    checks.array(x, "x", 4, "(N, C, H, W)")
    geometry = window_geometry(x.shape, kernel_size, stride, padding)
    (kh, kw), _, (ph, pw), _, out_hw = geometry
    n, c = x.shape[:2]
    check_memory(x.shape, geometry, x.dtype, padded_images=n, unfolded=(kh * kw, n * c * out_hw[0] * out_hw[1]),
                 unfolded_name="the column matrix (kh*kw, N*C*OH*OW)")
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    n, c, hp, wp = x_pad.shape
    return im2col(x_pad.reshape(n * c, 1, hp, wp), kernel_size, stride), out_hw


def _check_padding(kernel_size, padding):
    """PyTorch's rule for both poolings: padding at most half the kernel, so no window is all padding."""
    ph, pw = checks.non_negative_pair(padding, "padding")
    kh, kw = checks.positive_pair(kernel_size, "kernel_size")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding={padding!r} must be at most half of kernel_size={kernel_size!r}")


def _check_dout(dout, x_shape, kernel_size, stride, padding):
    *_, out_hw = window_geometry(x_shape, kernel_size, stride, padding)
    checks.upstream_gradient(dout, (*x_shape[:2], *out_hw))


def _fold(dcols, x_shape, kernel_size, stride, padding):
    """Adjoint of :func:`_columns`: col2im onto the padded image, then crop the padding."""
    n, c, h, w = x_shape
    _, _, (ph, pw), _, _ = window_geometry(x_shape, kernel_size, stride, padding)
    padded = col2im(dcols, (n * c, 1, h + 2 * ph, w + 2 * pw), kernel_size, stride)
    return padded.reshape(n, c, h + 2 * ph, w + 2 * pw)[:, :, ph:ph + h, pw:pw + w]


def _to_nchw(values, x_shape, out_hw):
    """(N*C*OH*OW,) values ordered (n*c, oh, ow) -> (N, C, OH, OW)."""
    return values.reshape(x_shape[0], x_shape[1], *out_hw)


def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max over every kh x kw window; padding is -inf (as in PyTorch), so it is never chosen.

    x (N, C, H, W) -> out (N, C, OH, OW). ``stride`` defaults to ``kernel_size``.
    """
    stride = kernel_size if stride is None else stride
    _check_padding(kernel_size, padding)
    cols, out_hw = _columns(x, kernel_size, stride, padding, pad_value=-np.inf)
    argmax = cols.argmax(axis=0)
    out = _to_nchw(cols[argmax, np.arange(cols.shape[1])], x.shape, out_hw)
    return out, (x.shape, cols.shape, argmax, (kernel_size, stride, padding))


def maxpool2d_backward(dout, cache):
    """The gradient goes to the position that held the max (the first one on ties)."""
    x_shape, cols_shape, argmax, (kernel_size, stride, padding) = cache
    _check_dout(dout, x_shape, kernel_size, stride, padding)
    dcols = np.zeros(cols_shape, dtype=dout.dtype)
    dcols[argmax, np.arange(cols_shape[1])] = dout.reshape(-1)
    return _fold(dcols, x_shape, kernel_size, stride, padding)


def avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Mean over every kh x kw window; padded zeros count in the mean (PyTorch's default).

    x (N, C, H, W) -> out (N, C, OH, OW). ``stride`` defaults to ``kernel_size``; padding
    may be at most half of ``kernel_size``, as in PyTorch.
    """
    stride = kernel_size if stride is None else stride
    _check_padding(kernel_size, padding)
    cols, out_hw = _columns(x, kernel_size, stride, padding)
    out = _to_nchw(cols.mean(axis=0), x.shape, out_hw)
    return out, (x.shape, cols.shape, (kernel_size, stride, padding))


def avgpool2d_backward(dout, cache):
    """Every position of a window receives 1/(kh*kw) of that window's gradient."""
    x_shape, cols_shape, (kernel_size, stride, padding) = cache
    _check_dout(dout, x_shape, kernel_size, stride, padding)
    dcols = np.broadcast_to(dout.reshape(1, -1) / cols_shape[0], cols_shape)
    return _fold(np.ascontiguousarray(dcols), x_shape, kernel_size, stride, padding)
