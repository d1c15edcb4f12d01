"""2-D convolution (cross-correlation, as in PyTorch) with a hand-written backward pass.

Forward, for x (N, C, H, W), w (F, C, kh, kw), b (F,):

    out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

With X = im2col(x) of shape (C*kh*kw, N*OH*OW) and W = w.reshape(F, C*kh*kw) this is
one matrix product, Y = W X + b. Backward, given dY = dL/dY (F, N*OH*OW):

    dW = dY X^T           (reshaped to w.shape)
    db = sum over columns of dY
    dX = W^T dY, then dx = col2im(dX)   (col2im is the adjoint of im2col)

How the fast version is organised (measured on a 2-core AVX-512 machine, float32, batch 128):

* **Channels last.** ``x`` is copied once into a zero-padded (N, Hp, Wp, C) array. A kernel
  window of one output pixel is then ``kh`` runs of ``kw*C`` contiguous numbers, so unfolding is
  one fast strided copy (:func:`_unfold`), and the column matrix comes out *transposed*:
  rows (n, oh, ow), columns (i, j, c). It holds exactly the numbers of ``im2col(x).T`` with the
  columns reordered from (c, i, j) to (i, j, c); the weights are reordered to match.
* **Tall GEMM.** ``rows @ w_rows`` with rows (B*OH*OW, K) and w_rows (K, F) is the BLAS
  orientation that runs fastest for these shapes (F is small; ``W @ cols`` with only F rows in
  the result is markedly slower), and a single matrix product per chunk beats a stack of
  per-image products.
* **Batch chunks.** The batch is processed a few images at a time so that one chunk's column
  matrix (about ``_CHUNK_BYTES``) is still in cache when the GEMM reads it, and memory stays
  bounded: the cache keeps the padded input, not the (kh*kw times larger) column matrix, and the
  backward pass unfolds each chunk again.
* **Output layout.** The (B*OH*OW, F) product is copied transposed into the NCHW output
  (computing the NCHW layout directly, as W @ cols per image, makes the GEMM slower than this
  copy costs); the bias is then added in place while the chunk is still in cache.
* **Input gradient.** In general dX = dY W^T followed by a fold (col2im: scatter-add of every
  kernel tap). For stride 1 this is the same as correlating the zero-padded dY with the
  flipped kernel, which is another unfold + GEMM and avoids the kh*kw read-modify-write passes
  of the fold; it is used when it costs no extra products (H*W <= OH*OW, e.g. 'same' padding).
* No dtype changes: float32 stays float32 end to end.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import checks
from .im2col import window_geometry

# Bytes of column matrix per batch chunk (at least one image). About 1 MB keeps a chunk's
# columns in the L2 cache between being written by the unfold and read by the GEMM; much
# larger chunks are slower again (measured), much smaller ones make the GEMMs too small.
_CHUNK_BYTES = 1 << 20


def _check_conv_args(x, w, b):
    checks.array(x, "x", 4, "(N, C, H, W)")
    checks.array(w, "w", 4, "(out_channels, in_channels, kh, kw)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects in_channels={w.shape[1]} (w.shape={w.shape})")
    if b is not None:
        checks.array(b, "b", 1, "(out_channels,)")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"b has shape {b.shape} but w has out_channels={w.shape[0]}; b must have shape ({w.shape[0]},)")


def _batch_chunks(n, bytes_per_image):
    """Slices that cut a batch of ``n`` images into chunks of about ``_CHUNK_BYTES`` (>= 1 image)."""
    size = int(min(n, max(1, _CHUNK_BYTES // max(bytes_per_image, 1))))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _pad_channels_last(x, padding):
    """(N, C, H, W) -> zero-padded channels-last copy (N, H + 2*ph, W + 2*pw, C)."""
    (ph, pw), (n, c, h, w) = padding, x.shape
    x_pad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    x_pad[:, ph:ph + h, pw:pw + w, :] = x.transpose(0, 2, 3, 1)
    return x_pad


def _unfold(x_pad, kernel, stride, dilation, out_hw):
    """Column matrix of a channels-last padded batch, transposed: (B*OH*OW, kh*kw*C).

    rows[(n, oh, ow), (i, j, c)] = x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c]

    A read-only strided view puts every window next to its output pixel without copying;
    one ``np.ascontiguousarray`` then copies it (runs of kw*C contiguous numbers when dw = 1).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, _, _, c = x_pad.shape
    s_n, s_h, s_w, s_c = x_pad.strides
    windows = as_strided(x_pad, shape=(n, oh, ow, kh, kw, c),
                         strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c), writeable=False)
    return np.ascontiguousarray(windows).reshape(n * oh * ow, kh * kw * c)


def _fold(rows, padded_shape, kernel, stride, dilation, out_hw):
    """Adjoint of :func:`_unfold`: scatter-add rows (B*OH*OW, kh*kw*C) into (B, Hp, Wp, C).

    One vectorised add per kernel tap into a preallocated zero buffer (taps overlap, so they
    must be added one after another).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, _, _, c = padded_shape
    taps = rows.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(padded_shape, dtype=rows.dtype)
    for i in range(kh):
        for j in range(kw):
            x_pad[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += taps[:, :, :, i, j]
    return x_pad


def _geometry(x_shape, w_shape, stride, padding, dilation):
    """Validated ((kh, kw), stride, padding, dilation, (OH, OW)) as pairs."""
    return window_geometry(x_shape, w_shape[2:], stride, padding, dilation)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """Convolution forward pass through im2col and one matrix product.

    Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> out (N, F, OH, OW),
    OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise OW.
    Returns ``(out, cache)``; ``cache`` holds what :func:`conv2d_backward` needs.

    The batch is processed in chunks (see the module docstring): for each chunk the windows
    are unfolded channels-last into rows (B*OH*OW, kh*kw*C) and multiplied by the reordered
    weight w_rows (kh*kw*C, F).
    """
    _check_conv_args(x, w, b)
    geometry = _geometry(x.shape, w.shape, stride, padding, dilation)
    kernel, stride, padding, dilation, (oh, ow) = geometry
    n, f = x.shape[0], w.shape[0]
    dtype = np.result_type(x.dtype, w.dtype)
    # Row order (i, j, c) of the channels-last unfold, so w_rows[(i, j, c), f] = w[f, c, i, j].
    w_rows = np.ascontiguousarray(w.astype(dtype, copy=False).transpose(2, 3, 1, 0)).reshape(-1, f)
    x_pad = _pad_channels_last(x.astype(dtype, copy=False), padding)
    out = np.empty((n, f, oh, ow), dtype=dtype)
    bias = None if b is None else b.astype(dtype, copy=False)[:, None]
    for chunk in _batch_chunks(n, oh * ow * w_rows.nbytes // f):
        rows = _unfold(x_pad[chunk], kernel, stride, dilation, (oh, ow))  # (B*OH*OW, K)
        product = (rows @ w_rows).reshape(-1, oh * ow, f)                   # (B, OH*OW, F)
        out_chunk = out[chunk].reshape(-1, f, oh * ow)
        np.copyto(out_chunk, product.transpose(0, 2, 1))                    # to NCHW
        if bias is not None:
            out_chunk += bias       # contiguous and still in cache: cheaper than fusing it into the transpose
    cache = (x_pad, w_rows, x.shape, b is not None, geometry)
    return out, cache


def _input_grad_by_fold(dy, w_rows, x_shape, geometry):
    """dL/dx of one chunk, channels last (B, H, W, C): dX = dY W^T, folded (col2im) and cropped."""
    kernel, stride, (ph, pw), dilation, out_hw = geometry
    bsz, f = dy.shape[0], dy.shape[3]
    _, c, h, w = x_shape
    drows = dy.reshape(-1, f) @ w_rows.T                                    # (B*OH*OW, K)
    dx_pad = _fold(drows, (bsz, h + 2 * ph, w + 2 * pw, c), kernel, stride, dilation, out_hw)
    return dx_pad[:, ph:ph + h, pw:pw + w]


def _input_grad_by_correlation(dy, w_flipped, x_shape, geometry):
    """dL/dx of one chunk for stride 1, channels last (B, H, W, C), without a fold.

    With stride 1 the transposed convolution is a plain correlation: pad dy by
    q = d*(k-1) - p on each side (crop where q < 0) and correlate it with the kernel flipped
    in space and with F and C swapped,

        dx[n, y, z, c] = sum_{i,j,f} dy_pad[n, y + i*dh, z + j*dw, f] * w[f, c, kh-1-i, kw-1-j],

    i.e. one more unfold + GEMM instead of kh*kw scatter-add passes.
    """
    (kh, kw), _, (ph, pw), (dh, dw), (oh, ow) = geometry
    bsz, f = dy.shape[0], dy.shape[3]
    _, c, h, w = x_shape
    qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    dy_pad = np.zeros((bsz, h + dh * (kh - 1), w + dw * (kw - 1), f), dtype=dy.dtype)
    r0, r1 = max(qh, 0), min(qh + oh, dy_pad.shape[1])                      # dy_pad[r] = dy[r - q]
    c0, c1 = max(qw, 0), min(qw + ow, dy_pad.shape[2])
    dy_pad[:, r0:r1, c0:c1] = dy[:, r0 - qh:r1 - qh, c0 - qw:c1 - qw]
    rows = _unfold(dy_pad, (kh, kw), (1, 1), (dh, dw), (h, w))            # (B*H*W, kh*kw*F)
    return (rows @ w_flipped).reshape(bsz, h, w, c)


def conv2d_backward(dout, cache):
    """Gradients of :func:`conv2d_forward`.

    dout (N, F, OH, OW) -> ``(dx, dw, db)`` with the shapes of x, w and b (``db`` is
    None when the forward pass had no bias).

    Chunk by chunk, as in the forward pass: the chunk's input windows are unfolded again,
    dW accumulates rows^T dY over the chunks, and dx is computed for the chunk's images.
    """
    x_pad, w_rows, x_shape, has_bias, geometry = cache
    kernel, stride, _, dilation, (oh, ow) = geometry
    (kh, kw), (n, c, h, w) = kernel, x_shape
    k, f = w_rows.shape
    checks.array(dout, "dout", 4, "(N, F, OH, OW)")
    if dout.shape != (n, f, oh, ow):
        raise ValueError(f"dout has shape {dout.shape}, which does not match the forward output {(n, f, oh, ow)}")
    dtype = np.result_type(dout.dtype, x_pad.dtype)
    w_rows = w_rows.astype(dtype, copy=False)
    # For stride 1 the correlation form of dx does the same products as dY W^T when
    # H*W <= OH*OW ('same' padding or more) and saves the fold; otherwise (strided, or 'valid'
    # padding where it would multiply many zeros of dy_pad) fold.
    if stride == (1, 1) and h * w <= oh * ow:
        # w_flipped[(i, j, f), c] = w[f, c, kh-1-i, kw-1-j]
        w_flipped = np.ascontiguousarray(w_rows.reshape(kh, kw, c, f)[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(-1, c)
        input_grad, weights = _input_grad_by_correlation, w_flipped
    else:
        input_grad, weights = _input_grad_by_fold, w_rows
    dw_rows = np.zeros((k, f), dtype=dtype)
    dx = np.empty(x_shape, dtype=dtype)
    for chunk in _batch_chunks(n, oh * ow * k * x_pad.itemsize):
        dy = np.ascontiguousarray(dout[chunk].transpose(0, 2, 3, 1), dtype=dtype)  # (B, OH, OW, F)
        rows = _unfold(x_pad[chunk], kernel, stride, dilation, (oh, ow))
        dw_rows += rows.T @ dy.reshape(-1, f)                                     # dW = X dY^T, per chunk
        dx[chunk] = input_grad(dy, weights, x_shape, geometry).transpose(0, 3, 1, 2)  # back to NCHW
    dw = np.ascontiguousarray(dw_rows.reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
    db = dout.sum(axis=(0, 2, 3), dtype=dtype) if has_bias else None
    return dx, dw, db


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0, dilation=1):
    """Reference convolution with a loop over every output pixel (slow, obviously correct).

    Same arguments and return value as :func:`conv2d_forward`.
    """
    _check_conv_args(x, w, b)
    f, _, kh, kw = w.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = window_geometry(x.shape, (kh, kw), stride, padding, dilation)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((x.shape[0], f, oh, ow), dtype=x.dtype)
    for y in range(oh):
        for z in range(ow):
            field = x_pad[:, :, y * sh:y * sh + dh * (kh - 1) + 1:dh, z * sw:z * sw + dw * (kw - 1) + 1:dw]
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
    (kh, kw), (sh, sw), (ph, pw), (dil_h, dil_w), (oh, ow) = window_geometry(x.shape, w.shape[2:], stride, padding, dilation)
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
