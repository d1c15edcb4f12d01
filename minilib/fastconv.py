"""Fast convolution: the function of :mod:`minilib.conv`, organised for speed.

It computes exactly what :func:`minilib.conv.conv2d_forward` and
:func:`minilib.conv.conv2d_backward` compute (Y = W im2col(x) + b and its gradients; the
tests hold the two to float64 agreement with each other and with PyTorch) and differs only
in how the work is laid out in memory. ``minilib.layers.Conv2d`` uses it.

How the fast version is organised (each choice measured on a 2-core AVX-512 machine, float32,
batch 128; ``benchmarks/conv_benchmark.py`` reproduces the numbers):

* **Channels last.** ``x`` is copied once to (N, H, W, C) and each chunk is zero-padded. A
  kernel window of one output pixel is then ``kh`` runs of ``kw*C`` contiguous numbers, so
  unfolding is one fast strided copy, and the column matrix comes out *transposed*: rows
  (n, oh, ow), columns (i, j, c). It holds exactly the numbers of ``im2col(x).T`` with the
  columns reordered from (c, i, j) to (i, j, c); the weight is reordered to match
  (``w_rows``). The helpers (unfold, fold, padding, chunks) are :mod:`minilib.unfold`, shared
  with the versatile and full-stack layers.
* **Tall GEMM.** ``rows @ w_rows`` with rows (B*OH*OW, K) and w_rows (K, F) is the BLAS
  orientation that runs fastest for these shapes (F is small; ``W @ cols`` with only F rows
  in the result is markedly slower), and one product per chunk beats a stack of per-image ones.
* **Batch chunks.** A few images at a time, so that a chunk's column matrix (about
  :data:`minilib.unfold.CHUNK_BYTES`) is still in cache when the GEMM reads it. Memory stays
  bounded: the cache keeps the channels-last input (the size of x), not the kh*kw times
  larger column matrix; the backward pass unfolds each chunk again.
* **Output layout.** The (B*OH*OW, F) product is copied transposed into the NCHW output
  (computing NCHW directly, as W @ cols per image, slows the GEMM by more than the copy
  costs); the bias is then added in place while the chunk is still in cache.
* **Backward, stride 1.** The input gradient is a correlation of the zero-padded dY with the
  flipped kernel, and dW is the correlation of that same padded dY with x; so ONE unfold of
  padded dY per chunk feeds both GEMMs: no fold (kh*kw scatter-add passes) and no second
  unfold of x. Used when it costs no extra products (H*W <= OH*OW, e.g. 'same' padding) and
  F <= 8*C: it unfolds dY (F channels) instead of x (C channels), which does not pay off for
  layers with many more outputs than inputs, such as a first layer on grayscale images.
* **Backward, otherwise.** dW = X^T dY per chunk (summed over chunks) and dX = dY W^T,
  folded back (col2im: one add per kernel tap into a preallocated padded buffer).
* No dtype changes: float32 stays float32 end to end.
"""
from __future__ import annotations

import numpy as np

from . import checks
from .conv import check_conv_args
from .im2col import check_memory, window_geometry
from .unfold import batch_chunks, channels_last, fold_rows, unfold_buffer, unfold_rows, unfolds_by_row, zero_pad


def conv2d_forward_fast(x, w, b=None, stride=1, padding=0, dilation=1):
    """Same result as :func:`minilib.conv.conv2d_forward`, organised for speed.

    Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> out (N, F, OH, OW),
    OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise OW.
    Returns ``(out, cache)``; ``cache`` holds what :func:`conv2d_backward_fast` needs.

    The batch is processed in chunks (see the module docstring): for each chunk the windows
    are unfolded channels-last into rows (B*OH*OW, kh*kw*C) and multiplied by the reordered
    weight w_rows (kh*kw*C, F).
    """
    check_conv_args(x, w, b)
    geometry = window_geometry(x.shape, w.shape[2:], stride, padding, dilation)
    kernel, stride, padding, dilation, (oh, ow) = geometry
    n, f = x.shape[0], w.shape[0]
    dtype = np.result_type(x.dtype, w.dtype)
    one = min(n, 1)  # a chunk holds at least one image, whatever CHUNK_BYTES says
    check_memory(x.shape, geometry, dtype, out_channels=f, padded_images=one,
                 unfolded=(one * oh * ow, w[0].size), unfolded_name="the unfolded rows of one image (OH*OW, kh*kw*C)")
    # Row order (i, j, c) of the channels-last unfold, so w_rows[(i, j, c), f] = w[f, c, i, j].
    w_rows = np.ascontiguousarray(w.astype(dtype, copy=False).transpose(2, 3, 1, 0)).reshape(-1, f)
    x_cl = channels_last(x.astype(dtype, copy=False))
    bias = None if b is None else b.astype(dtype, copy=False)[:, None]
    out = np.empty((n, f, oh, ow), dtype=dtype)
    chunks = batch_chunks(n, oh * ow * w_rows.shape[0] * w_rows.itemsize)
    buffer = unfold_buffer(chunks, oh * ow, w_rows.shape[0], dtype)
    for chunk in chunks:
        rows = unfold_rows(zero_pad(x_cl[chunk], padding), kernel, stride, dilation, (oh, ow), buffer)  # (B*OH*OW, K)
        product = (rows @ w_rows).reshape(-1, oh * ow, f)                                # (B, OH*OW, F)
        out_chunk = out[chunk].reshape(-1, f, oh * ow)
        np.copyto(out_chunk, product.transpose(0, 2, 1))                                 # to NCHW
        if bias is not None:
            out_chunk += bias  # contiguous and still in cache: cheaper than fusing it into the transpose
    # The cache keeps the channels-last input (the size of x), not the kh*kw times larger columns.
    return out, (x_cl, w_rows, b is not None, geometry)


def _backward_by_fold(dout, x_cl, w_rows, geometry, dtype):
    """(dx, dw) for any stride: dW = X^T dY and dX = dY W^T folded (col2im), chunk by chunk."""
    kernel, stride, padding, dilation, (oh, ow) = geometry
    (kh, kw), (ph, pw), (n, h, w, c) = kernel, padding, x_cl.shape
    k, f = w_rows.shape
    dw_rows = np.zeros((k, f), dtype=dtype)
    dx = np.empty((n, c, h, w), dtype=dtype)
    chunks = batch_chunks(n, oh * ow * k * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, oh * ow, k, dtype)
    for chunk in chunks:
        dy = np.ascontiguousarray(dout[chunk].transpose(0, 2, 3, 1), dtype=dtype).reshape(-1, f)  # (B*OH*OW, F)
        x_pad = zero_pad(x_cl[chunk].astype(dtype, copy=False), padding)
        rows = unfold_rows(x_pad, kernel, stride, dilation, (oh, ow), buffer)    # unfolded again
        dw_rows += rows.T @ dy
        # dX = dY W^T; for few channels computed as (W dY^T)^T so the fold adds runs of pixels.
        drows = dy @ w_rows.T if unfolds_by_row(kw, c) else (w_rows @ dy.T).T
        dx_pad = fold_rows(drows, x_pad.shape, kernel, stride, dilation, (oh, ow))
        dx[chunk] = dx_pad[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    dw = dw_rows.reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
    return dx, np.ascontiguousarray(dw)


def _backward_by_correlation(dout, x_cl, w_rows, geometry, dtype):
    """(dx, dw) for stride 1 from ONE unfold per chunk, of the padded output gradient.

    With stride 1 the transposed convolution is a plain correlation: pad dy by
    q = d*(k-1) - p on each side (crop where q < 0) and
        dx[n, y, z, c]    = sum_{i,j,f} dy_pad[n, y + i*dh, z + j*dw, f] * w[f, c, kh-1-i, kw-1-j]
        dw[f, c, i', j']  = sum_{n,y,z} dy_pad[n, y + i*dh, z + j*dw, f] * x[n, c, y, z]  (i', j' = kh-1-i, kw-1-j),
    so rows = unfold(dy_pad) (B*H*W, kh*kw*F) gives dx = rows @ w_flipped and the flipped
    dw = rows^T @ x. No fold (kh*kw scatter-add passes) and no second unfold of x.
    """
    (kh, kw), _, (ph, pw), (dh, dw), (oh, ow) = geometry
    n, h, w, c = x_cl.shape
    f = w_rows.shape[1]
    # w_flipped[(i, j, f), c] = w[f, c, kh-1-i, kw-1-j]
    w_flipped = np.ascontiguousarray(w_rows.reshape(kh, kw, c, f)[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(-1, c)
    dw_flipped = np.zeros((kh * kw * f, c), dtype=dtype)
    dx = np.empty((n, c, h, w), dtype=dtype)
    qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    hq, wq = h + dh * (kh - 1), w + dw * (kw - 1)
    r0, r1, c0, c1 = max(qh, 0), min(qh + oh, hq), max(qw, 0), min(qw + ow, wq)  # dy_pad[r] = dy[r - q]
    chunks = batch_chunks(n, h * w * w_flipped.shape[0] * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, h * w, w_flipped.shape[0], dtype)
    for chunk in chunks:
        dout_chunk = dout[chunk]
        dy_pad = np.zeros((dout_chunk.shape[0], hq, wq, f), dtype=dtype)
        dy_pad[:, r0:r1, c0:c1] = dout_chunk[:, :, r0 - qh:r1 - qh, c0 - qw:c1 - qw].transpose(0, 2, 3, 1)
        rows = unfold_rows(dy_pad, (kh, kw), (1, 1), (dh, dw), (h, w), buffer)        # (B*H*W, kh*kw*F)
        dx[chunk] = (rows @ w_flipped).reshape(-1, h, w, c).transpose(0, 3, 1, 2)
        dw_flipped += rows.T @ x_cl[chunk].reshape(-1, c).astype(dtype, copy=False)
    dw = dw_flipped.reshape(kh, kw, f, c)[::-1, ::-1].transpose(2, 3, 0, 1)
    return dx, np.ascontiguousarray(dw)


def conv2d_backward_fast(dout, cache):
    """Gradients of :func:`conv2d_forward_fast` (same results as :func:`minilib.conv.conv2d_backward`).

    dout (N, F, OH, OW) -> ``(dx, dw, db)`` with the shapes of x, w and b (``db`` is
    None when the forward pass had no bias).

    Stride 1 with H*W <= OH*OW ('same' padding or more) and F <= 8*C uses the correlation
    form (one unfold of the padded dY feeds both gradients, no fold); otherwise (strided,
    'valid' padding where dy_pad would be mostly zeros, or F >> C where unfolding dY costs
    more than the fold) dX = dY W^T is folded back as in col2im.
    """
    x_cl, w_rows, has_bias, geometry = cache
    stride, (oh, ow) = geometry[1], geometry[4]
    n, h, w, c = x_cl.shape
    f = w_rows.shape[1]
    checks.array(dout, "dout", 4, "(N, F, OH, OW)")
    if dout.shape != (n, f, oh, ow):
        raise ValueError(f"dout has shape {dout.shape}, which does not match the forward output {(n, f, oh, ow)}")
    dtype = np.result_type(dout.dtype, x_cl.dtype)
    w_rows = w_rows.astype(dtype, copy=False)
    by_correlation = stride == (1, 1) and h * w <= oh * ow and f <= 8 * c
    # what one image unfolds to: rows of the padded dY (H*W, kh*kw*F), or of x again (OH*OW, kh*kw*C)
    rows = (min(n, 1) * h * w, w_rows.shape[0] // c * f) if by_correlation else (min(n, 1) * oh * ow, w_rows.shape[0])
    check_memory((n, c, h, w), geometry, dtype, unfolded=rows, unfolded_name="the unfolded rows of one image")
    if by_correlation:
        dx, dw = _backward_by_correlation(dout, x_cl, w_rows, geometry, dtype)
    else:
        dx, dw = _backward_by_fold(dout, x_cl, w_rows, geometry, dtype)
    db = dout.sum(axis=(0, 2, 3), dtype=dtype) if has_bias else None
    return dx, dw, db
