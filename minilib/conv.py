"""2-D convolution (cross-correlation, as in PyTorch) with a hand-written backward pass.

Forward, for x (N, C, H, W), w (F, C, kh, kw), b (F,):

    out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

With X = im2col(x) of shape (C*kh*kw, N*OH*OW) and W = w.reshape(F, C*kh*kw) this is
one matrix product, Y = W X + b. Backward, given dY = dL/dY (F, N*OH*OW):

    dW = dY X^T           (reshaped to w.shape)
    db = sum over columns of dY
    dX = W^T dY, then dx = col2im(dX)   (col2im is the adjoint of im2col)

This is the version the book derives: it keeps X for the backward pass, as the derivation
does. ``minilib.fastconv`` computes the same function organised for speed (channels-last
unfold, batch chunks that stay in cache); the layers use that one.
"""
from __future__ import annotations

import numpy as np

from . import checks
from .im2col import check_memory, col2im, im2col, window_geometry


def check_conv_args(x, w, b):
    """x (N, C, H, W), w (F, C, kh, kw) and b (F,) or None: float32/float64 arrays whose shapes fit together."""
    checks.array(x, "x", 4, "(N, C, H, W)")
    checks.array(w, "w", 4, "(out_channels, in_channels, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects in_channels={w.shape[1]} (w.shape={w.shape})")
    if b is not None:
        checks.array(b, "b", 1, "(out_channels,)")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"b has shape {b.shape} but w has out_channels={w.shape[0]}; b must have shape ({w.shape[0]},)")


def check_conv_memory(x, w, stride=1, padding=0, dilation=1, padded=False, out_channels=None):
    """Refuse up front a convolution whose output (N, F, OH, OW) would not fit in memory (and, with
    ``padded``, the zero-padded copy of the whole batch); :func:`minilib.im2col.check_memory` says how.
    F is ``out_channels``, by default w.shape[0]."""
    geometry = window_geometry(x.shape, w.shape[2:], stride, padding, dilation)
    check_memory(x.shape, geometry, np.result_type(x.dtype, w.dtype),
                 out_channels=w.shape[0] if out_channels is None else out_channels,
                 padded_images=x.shape[0] if padded else None)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """Convolution forward pass through im2col and one matrix product.

    Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> out (N, F, OH, OW),
    OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise OW.
    Returns ``(out, cache)``; ``cache`` holds what :func:`conv2d_backward` needs.
    """
    check_conv_args(x, w, b)
    # the output must fit in memory (im2col checks the columns)
    check_conv_memory(x, w, stride, padding, dilation)
    f, _, kh, kw = w.shape
    *_, (oh, ow) = window_geometry(x.shape, (kh, kw), stride, padding, dilation)
    cols = im2col(x, (kh, kw), stride, padding, dilation)          # (C*kh*kw, N*OH*OW)
    out = w.reshape(f, -1) @ cols                                  # (F, N*OH*OW)
    if b is not None:
        out += b[:, None]
    out = np.ascontiguousarray(out.reshape(f, x.shape[0], oh, ow).transpose(1, 0, 2, 3))
    cache = (x.shape, w, b is not None, cols, (stride, padding, dilation))
    return out, cache


def conv2d_backward(dout, cache):
    """Gradients of :func:`conv2d_forward`.

    dout (N, F, OH, OW) -> ``(dx, dw, db)`` with the shapes of x, w and b (``db`` is
    None when the forward pass had no bias).
    """
    x_shape, w, has_bias, cols, (stride, padding, dilation) = cache
    f, _, kh, kw = w.shape
    n = x_shape[0]
    *_, (oh, ow) = window_geometry(x_shape, (kh, kw), stride, padding, dilation)
    checks.upstream_gradient(dout, (n, f, oh, ow))
    # (F, N*OH*OW), columns (n, oh, ow)
    dy = dout.transpose(1, 0, 2, 3).reshape(f, -1)
    dw = (dy @ cols.T).reshape(w.shape)
    db = dy.sum(axis=1) if has_bias else None
    dcols = w.reshape(f, -1).T @ dy                                # (C*kh*kw, N*OH*OW)
    dx = col2im(dcols, x_shape, (kh, kw), stride, padding, dilation)
    return dx, dw, db


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0, dilation=1):
    """Reference convolution with a loop over every output pixel.

    Slow, obviously correct. Same arguments and return value as :func:`conv2d_forward`.
    """
    check_conv_args(x, w, b)
    check_conv_memory(x, w, stride, padding, dilation, padded=True)
    f, _, kh, kw = w.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = window_geometry(
        x.shape, (kh, kw), stride, padding, dilation
    )
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((x.shape[0], f, oh, ow), dtype=x.dtype)
    for y in range(oh):
        for z in range(ow):
            rows = slice(y * sh, y * sh + dh * (kh - 1) + 1, dh)
            columns = slice(z * sw, z * sw + dw * (kw - 1) + 1, dw)
            field = x_pad[:, :, rows, columns]
            out[:, :, y, z] = np.tensordot(field, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        out += b[None, :, None, None]
    return out, (x, w, b is not None, (stride, padding, dilation))


def conv2d_backward_naive(dout, cache):
    """Reference backward pass with the same loops as :func:`conv2d_forward_naive`.

    Every output pixel sent ``w`` times its receptive field forward, so it sends
    ``dout`` times ``w`` back to that field and ``dout`` times the field to ``w``.
    """
    x, w, has_bias, (stride, padding, dilation) = cache
    (kh, kw), (sh, sw), (ph, pw), (dil_h, dil_w), (oh, ow) = window_geometry(
        x.shape, w.shape[2:], stride, padding, dilation
    )
    checks.upstream_gradient(dout, (x.shape[0], w.shape[0], oh, ow))
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for y in range(oh):
        for z in range(ow):
            window = (slice(None), slice(None),
                      slice(y * sh, y * sh + dil_h * (kh - 1) + 1, dil_h),
                      slice(z * sw, z * sw + dil_w * (kw - 1) + 1, dil_w))
            g = dout[:, :, y, z]                                    # (N, F)
            dx_pad[window] += np.tensordot(g, w, axes=(1, 0))
            dw += np.tensordot(g, x_pad[window], axes=(0, 0))
    dx = dx_pad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
