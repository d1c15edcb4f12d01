"""The ring machinery of the fast versatile convolution: ONE unfold per channel window serves all s secondaries.

:func:`minilib.versatile.versatile_conv2d_forward_fast` / ``_backward_fast`` (what
:class:`minilib.versatile.VersatileConv2d` runs) check the arguments and call :func:`forward_rings`
/ :func:`backward_rings` for ``combine="concat"``; they compute what the readable cropped-kernel
version (:func:`minilib.versatile.versatile_conv2d_forward`, the one the book explains) and the
dense reference compute, and the tests hold the three to float64 agreement.

Symbols as in Wang et al. (NeurIPS 2018): a primary filter of d x d taps on ĉ channels, s =
ceil(d/2) spatial secondaries f_i = M_i ∘ f (Eq. 2; 0-based i, window [i, d-i)^2), P primaries,
n = delta/g + 1 channel windows of ĉ channels sliding by g (Eq. 8), outputs o = (i*n + j)*P + p.

**Rings.** Split the filter into rings R_i = M_i - M_{i+1} (M_s = 0): ring i holds the taps of
depth i = min(a, b, d-1-a, d-1-b). Secondary i's window is rings i..s-1, so with the ring
responses z_r = (R_r ∘ f) * x (Chapter 3's exercise on rings)

    y_{s-1} = z_{s-1},    y_i = y_{i+1} + z_i.

Every tap belongs to exactly one ring, so the s ring products cost d^2 ĉ P multiplications per
output pixel and channel window: 1/s of a standard layer with s*P outputs (0.333 for 5x5, 0.5
for 3x3). That is an observation beyond Proposition 1, which counts each cropped kernel on its
own (0.467 and 0.556); the price is s - 1 additions of (pixels, P) maps, done while the
channels-last GEMM output is copied to NCHW (a copy the standard layer makes too).

**Column order.** The columns of the channels-last unfold (:func:`minilib.unfold.unfold_blocks`)
are ordered ring by ring, outer ring first (:func:`ring_blocks`), so that every ring, and every
secondary's window (a suffix), is ONE contiguous range of columns: each ring product is a GEMM
on a column block ``rows[:, ring]`` (BLAS takes the row stride), and one unfold per chunk serves
all s secondaries (the cropped version unfolds s times, sum_i (d-2i)^2 / d^2 = 1.4x the copying
for 5x5). A ring is two strided copies, its top and bottom rows and its two side columns; the
side taps are runs of only ĉ numbers, so this unfold costs more than the plain one (about 1.5x
for the 5x5 layer of 48 channels).

**Backward.** Ring r is used by the secondaries 0..r, so its weight gradient and its share of the
input gradient need only the running sum of their output gradients, C_r = dY_0 + ... + dY_r:

    dW[ring r] = X[:, ring r]^T C_r,        dX-rows[:, ring r] = C_r W[ring r]^T,

again 1/s of a standard layer's multiplications, and no sum over secondaries after the GEMMs.
With stride 1 and 'same'-or-wider padding (:func:`backward_by_correlation`, the rule of
:mod:`minilib.fastconv`) both gradients come from one unfold of the zero-padded running sums
instead (the correlation form, no fold): tap (a, b) of the padded gradient belongs to ring
depth(a, b) and reads C_{depth(a, b)}; the s running sums lie side by side in one array
(B, Hq, s*Wq, P), so sum r at tap (a, b) is tap (a, b + r*Wq), and one
:func:`~minilib.unfold.unfold_blocks` call unfolds all of them into d^2 P columns (the standard
layer unfolds d^2 s P). Otherwise x is unfolded again and the row gradients are folded back.

**Why this formulation.** Measured against the standard convolution
(:func:`minilib.fastconv.conv2d_forward_fast`) on the layers of ``benchmarks/versatile_benchmark.py``
(float32, batch 128, a 2-core AVX-512 machine shared with other work, one BLAS thread, CPU time;
time / standard time):

* Forward of the 5x5 layer of 48 channels, with the same staging for every variant: the ring
  products 0.60-0.64; Proposition 1's windows as GEMMs on column blocks of the same ring-ordered
  unfold (no additions, 0.467 of the multiplications) 0.73; the plain (a, b, c) unfold with each
  secondary's window as the span of columns from its first to its last tap (zero weights in
  between, 0.52 of the multiplications) 0.71; the readable cropped version 0.72. The ring GEMMs
  take 0.39-0.45 of the standard GEMM's time for 1/3 of its multiplications: a GEMM with P = 32
  output columns runs at about 80% of the rate of one with s*P = 96.
* "kn2row", T = x (pixels, ĉ) @ W (ĉ, d^2 P) followed by adding the d^2 shifted tap slabs (also
  d^2 ĉ P multiplications), lost: on that layer the GEMM alone (K = ĉ = 48, over the padded
  pixels) took half the time of the whole standard forward, and the shift-adds, runs of P = 32
  numbers, about a fifth more.
* Backward: the correlation form takes 0.39 of the standard backward on the 5x5 layer of 48
  channels ('same' padding); on LeNet's 'valid' 5x5 layer the fold takes 0.74 (the correlation
  form, whose padded sums are mostly zeros there, 0.86).
* Totals, forward and forward+backward: LeNet's 5x5 layer 0.72 and 0.75, the 5x5 layer of 48
  channels 0.62 and 0.46, the 3x3 layer of 64 channels 0.76 and 0.66 (the cropped version: 0.93
  and 0.89, 0.72 and 0.85, 0.75 and 0.79). On two BLAS threads the GEMMs run nearly twice as fast
  but the unfold and the copies do not, so the forward ratios rise (about 0.77 for the 5x5 layer
  of 48 channels, 0.85-0.9 for LeNet's, as far as the shared machine let us measure), while
  forward+backward of the 5x5 layer of 48 channels stays about 0.55: the backward pass, where the
  unfold is 1/s of the standard one's too, is where the rings pay most.
"""
from __future__ import annotations

import numpy as np

from .im2col import check_memory
from .unfold import (batch_chunks, fold_blocks, pad_channels_last, padded_buffer, unfold_blocks, unfold_buffer,
                     unfolds_by_row)


# ----------------------------------------------------------------------------- the ring order of the taps

def ring_blocks(d) -> list:
    """The taps of a d x d filter ring by ring, outer ring first, as blocks of
    :func:`minilib.unfold.unfold_blocks`: a list of s lists of (rows, cols) ``range`` pairs.

    Ring i (R_i = M_i - M_{i+1}: the taps of secondary i's window that are not in secondary
    i+1's, depth min(a, b, d-1-a, d-1-b) = i) is two blocks: its top and bottom rows (rows i and
    d-1-i, a row step of d-1-2i) and its left and right columns between them. The innermost ring
    is the centre, 1x1 for odd d and 2x2 for even d.
    """
    rings = []
    for i in range((d + 1) // 2):
        far = d - 1 - i
        if far - i <= 1:                                   # the centre: 1x1 or 2x2
            rings.append([(range(i, far + 1), range(i, far + 1))])
        else:
            rings.append([(range(i, far + 1, far - i), range(i, far + 1)),
                          (range(i + 1, far), range(i, far + 1, far - i))])
    return rings


def ring_taps(d) -> list:
    """The taps (a, b) of each ring in the column order of :func:`ring_blocks`: s lists of pairs."""
    return [[(a, b) for rows, cols in ring for a in rows for b in cols] for ring in ring_blocks(d)]


def _ring_layout(d, channels):
    """The flat tap order, its copy blocks and each ring's first column: (taps, blocks, columns).

    ``columns`` = [0, |R_0|, |R_0| + |R_1|, ..., d*d] * ``channels``: ring r is the column range
    [columns[r], columns[r+1]) of the unfold, secondary i's window [columns[i], d*d*channels).
    """
    taps = [tap for ring in ring_taps(d) for tap in ring]
    blocks = [block for ring in ring_blocks(d) for block in ring]
    columns = np.cumsum([0] + [len(ring) for ring in ring_taps(d)]) * channels
    return taps, blocks, columns


def _tap_rows(weight, taps):
    """The primaries as rows ((tap, c), P) in the given tap order, matching the ring unfold of x."""
    a, b = np.array(taps).T
    return np.ascontiguousarray(weight[:, :, a, b].transpose(2, 1, 0)).reshape(-1, weight.shape[0])


def _flipped_tap_rows(weight, taps):
    """Rows ((tap, p), ĉ) holding w[p, c, d-1-a, d-1-b]: the unfolded padded output gradient at
    tap (a, b) meets the flipped kernel (the correlation form of the input gradient)."""
    d = weight.shape[2]
    a, b = np.array(taps).T
    return np.ascontiguousarray(weight[:, :, d - 1 - a, d - 1 - b].transpose(2, 0, 1)).reshape(-1, weight.shape[1])


# ----------------------------------------------------------------------------- forward

def forward_rings(x, weight, full_bias, shape, windows, geometry):
    """Eq. 3 with Eq. 8, ``combine="concat"``: out (N, s*n*P, OH, OW) from the ring products of every channel window.

    Arguments already checked and in one dtype (:func:`minilib.versatile.versatile_conv2d_forward_fast`):
    x (N, c, H, W), weight (P, c or ĉ, d, d), ``full_bias`` (s*n*P,) or None, ``shape`` the
    :data:`~minilib.versatile.VersatileShape`, ``windows`` the (input channels, stored channels)
    ranges of :func:`minilib.versatile.channel_windows`, ``geometry`` that of the d x d window.
    Per batch chunk and channel window: one ring-ordered unfold, s ring GEMMs and the running sums
    y_i = y_{i+1} + z_i written to NCHW.
    """
    _, stride, padding, _, (oh, ow) = geometry
    d, s, n, c_hat, p = shape.d, shape.s, shape.n, shape.c_hat, shape.primaries
    taps, blocks, columns = _ring_layout(d, c_hat)
    w_rows = [_tap_rows(weight[:, _slice(stored)], taps) for _, stored in windows]
    n_images, dtype, out_channels = x.shape[0], x.dtype, s * n * p
    out = np.empty((n_images, out_channels, oh, ow), dtype=dtype)
    chunks = batch_chunks(n_images, oh * ow * d * d * c_hat * dtype.itemsize)
    buffer = unfold_buffer(chunks, oh * ow, d * d * c_hat, dtype)
    responses = unfold_buffer(chunks, oh * ow, s * p, dtype)     # the ring products z_r, side by side
    pad_buffer = padded_buffer(chunks, x.shape, padding, dtype)
    for chunk in chunks:
        x_pad = pad_channels_last(x[chunk], padding, pad_buffer)
        out_chunk = out[chunk].reshape(-1, out_channels, oh * ow)
        for j, ((inputs, _), w_j) in enumerate(zip(windows, w_rows)):
            rows = unfold_blocks(x_pad[..., _slice(inputs)], blocks, stride, (oh, ow), buffer)  # (B*OH*OW, d*d*ĉ)
            z = responses[:rows.shape[0] * s * p].reshape(-1, s * p)
            for r in range(s):
                ring = slice(columns[r], columns[r + 1])
                np.matmul(rows[:, ring], w_j[ring], out=z[:, r * p:(r + 1) * p])
            _running_sums_to_nchw(z.reshape(-1, oh * ow, s * p).transpose(0, 2, 1), out_chunk, s, n, j, p)
        if full_bias is not None:
            out_chunk += full_bias[:, None]     # while the chunk is in cache
    return out


def _running_sums_to_nchw(z, out_chunk, s, n, j, p):
    """y_{s-1} = z_{s-1}, y_i = y_{i+1} + z_i, each written to its NCHW block (i*n + j)*P.

    ``z`` (B, s*P, OH*OW) is the transposed view of the ring products; every sum reads the
    previous secondary's block, already in NCHW, so the additions ride on the copy that the
    channels-last GEMM output needs anyway.
    """
    def block(i):
        return slice((i * n + j) * p, (i * n + j + 1) * p)

    np.copyto(out_chunk[:, block(s - 1)], z[:, (s - 1) * p:])
    for i in range(s - 2, -1, -1):
        np.add(out_chunk[:, block(i + 1)], z[:, i * p:(i + 1) * p], out=out_chunk[:, block(i)])


def _slice(channels):
    """A range of channels (:func:`minilib.versatile.channel_windows`) as a slice."""
    return slice(channels.start, channels.stop)


# ----------------------------------------------------------------------------- backward

def backward_rings(dout, x, weight, shape, windows, geometry):
    """(dx, dweight) of :func:`forward_rings` (dout checked; x and weight in the gradients' dtype).

    Ring r's gradients need only the running sum C_r = dY_0 + ... + dY_r of its secondaries'
    output gradients (module docstring): by one unfold of the padded running sums for stride 1
    and 'same'-or-wider padding (:func:`backward_by_correlation`), else by unfolding x again and
    folding the row gradients back.
    """
    by_correlation = backward_by_correlation(x.shape, geometry, shape)
    backward = _backward_by_correlation if by_correlation else _backward_by_fold
    return backward(dout, x, weight, shape, windows, geometry, x.dtype)


def backward_by_correlation(x_shape, geometry, shape) -> bool:
    """Whether the concat backward pass unfolds the padded running sums (else it folds, any stride).

    The rule of :func:`minilib.fastconv.conv2d_backward_fast` with a running sum's P channels for
    its F: stride 1, H*W <= OH*OW ('same' padding or wider: the padded sums hold no more zeros
    than numbers) and P <= 8*ĉ (unfolding P channels costs about what folding ĉ channels does).
    """
    (h, w), (oh, ow) = x_shape[2:], geometry[4]
    return geometry[1] == (1, 1) and h * w <= oh * ow and shape.primaries <= 8 * shape.c_hat


def _output_block(shape, i, j):
    p = shape.primaries
    return slice((i * shape.n + j) * p, (i * shape.n + j + 1) * p)


def _backward_by_fold(dout, x, weight, shape, windows, geometry, dtype):
    """(dx, dweight) for any stride: ring r gets dW = X_r^T C_r and row gradients C_r W_r^T, folded back."""
    _, stride, (ph, pw), _, (oh, ow) = geometry
    n_images, c, h, w = x.shape
    d, s, c_hat, p = shape.d, shape.s, shape.c_hat, shape.primaries
    taps, blocks, columns = _ring_layout(d, c_hat)
    k = d * d * c_hat
    w_rows = [_tap_rows(weight[:, _slice(stored)], taps) for _, stored in windows]
    dw_rows = [np.zeros_like(w_j) for w_j in w_rows]
    by_row = unfolds_by_row(1, c_hat)       # the row gradients in the layout of the unfold, for fold_blocks
    check_memory((n_images, c, h, w), geometry, dtype, unfolded=(min(n_images, 1) * oh * ow, k),
                 unfolded_name="the unfolded rows of one image (OH*OW, d*d*ĉ)")
    dx = np.empty((n_images, c, h, w), dtype=dtype)
    chunks = batch_chunks(n_images, oh * ow * k * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, oh * ow, k, dtype)
    row_grads = unfold_buffer(chunks, oh * ow, k, dtype)
    sums = unfold_buffer(chunks, oh * ow, s * p, dtype)
    pad_buffer, dx_buffer = (padded_buffer(chunks, x.shape, (ph, pw), dtype) for _ in range(2))
    for chunk in chunks:
        x_pad = pad_channels_last(x[chunk], (ph, pw), pad_buffer)
        dx_pad = dx_buffer[:x_pad.shape[0]]
        dx_pad.fill(0)                          # reused: a fresh array per chunk would fault its pages in again
        for j, ((inputs, _), w_j, dw_j) in enumerate(zip(windows, w_rows, dw_rows)):
            x_view, dx_view = x_pad[..., _slice(inputs)], dx_pad[..., _slice(inputs)]
            rows = unfold_blocks(x_view, blocks, stride, (oh, ow), buffer)
            m = rows.shape[0]
            running = _running_sums(dout[chunk], shape, j, sums[:m * s * p].reshape(s, m, p))
            drows = row_grads[:m * k].reshape((m, k) if by_row else (k, m))
            for r in range(s):
                ring = slice(columns[r], columns[r + 1])
                dw_j[ring] += rows[:, ring].T @ running[r]
                if by_row:
                    np.matmul(running[r], w_j[ring].T, out=drows[:, ring])
                else:   # few channels: (W C^T), so that fold_blocks adds runs of pixels
                    np.matmul(w_j[ring], running[r].T, out=drows[ring])
            fold_blocks(drows if by_row else drows.T, x_view.shape, blocks, stride, (oh, ow), out=dx_view)
        dx[chunk] = dx_pad[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    dweight = np.zeros(weight.shape, dtype=dtype)
    a, b = np.array(taps).T
    for (_, stored), dw_j in zip(windows, dw_rows):
        dweight[:, _slice(stored), a, b] += dw_j.reshape(len(taps), c_hat, p).transpose(2, 1, 0)
    return dx, dweight


def _running_sums(dout_chunk, shape, j, target):
    """C_r = dY_0 + ... + dY_r for channel window j, channels last: ``target`` (s, B*OH*OW, P) filled."""
    b, _, oh, ow = dout_chunk.shape
    p = shape.primaries
    for r in range(shape.s):
        dy = dout_chunk[:, _output_block(shape, r, j)].reshape(b, p, oh * ow).transpose(0, 2, 1)
        level = target[r].reshape(b, oh * ow, p)
        if r == 0:
            np.copyto(level, dy)
        else:
            np.add(target[r - 1].reshape(b, oh * ow, p), dy, out=level)
    return target


def _backward_by_correlation(dout, x, weight, shape, windows, geometry, dtype):
    """(dx, dweight) for stride 1, H*W <= OH*OW: one unfold of the padded running sums feeds both GEMMs.

    As in :func:`minilib.fastconv._backward_by_correlation` with dy padded by q = d - 1 - p:
    dx = rows @ w_flipped and dw_flipped = rows^T @ x, where tap (a, b) of ring depth r reads
    the running sum C_r. The s sums lie side by side along the width of one array
    (B, Hq, s*Wq, P), so C_r at tap (a, b) is tap (a, b + r*Wq) of it.
    """
    _, _, (ph, pw), _, (oh, ow) = geometry
    n_images, c, h, w = x.shape
    d, s, c_hat, p = shape.d, shape.s, shape.c_hat, shape.primaries
    taps, _, _ = _ring_layout(d, p)
    hq, wq = h + d - 1, w + d - 1
    blocks = [(rows, range(cols.start + r * wq, cols.stop + r * wq, cols.step))
              for r, ring in enumerate(ring_blocks(d)) for rows, cols in ring]
    w_flipped = [_flipped_tap_rows(weight[:, _slice(stored)], taps) for _, stored in windows]
    dw_flipped = [np.zeros_like(w_j) for w_j in w_flipped]
    k = d * d * p
    check_memory((n_images, c, h, w), geometry, dtype, unfolded=(min(n_images, 1) * h * w, k),
                 unfolded_name="the unfolded output gradient of one image (H*W, d*d*P)")
    qh, qw = d - 1 - ph, d - 1 - pw
    r0, r1, c0, c1 = max(qh, 0), min(qh + oh, hq), max(qw, 0), min(qw + ow, wq)    # sums_pad[r] = dy[r - q]
    dx = np.empty((n_images, c, h, w), dtype=dtype)
    chunks = batch_chunks(n_images, h * w * k * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, h * w, k, dtype)
    largest = max((chunk.stop - chunk.start for chunk in chunks), default=0)
    sums = np.zeros((largest, hq, s, wq, p), dtype=dtype)      # the border stays zero: only the inside is rewritten
    dx_cl = np.empty((largest, h, w, c), dtype=dtype) if len(windows) > 1 else None
    x_buffer = padded_buffer(chunks, x.shape, (0, 0), dtype)       # x channels-last, for dW = rows^T x
    for chunk in chunks:
        size = chunk.stop - chunk.start
        x_chunk = pad_channels_last(x[chunk], (0, 0), x_buffer)
        for j, ((inputs, _), w_j, dw_j) in enumerate(zip(windows, w_flipped, dw_flipped)):
            inside = sums[:size, r0:r1, :, c0:c1]
            for r in range(s):
                dy = dout[chunk, _output_block(shape, r, j), r0 - qh:r1 - qh, c0 - qw:c1 - qw].transpose(0, 2, 3, 1)
                if r == 0:
                    np.copyto(inside[:, :, 0], dy)
                else:
                    np.add(inside[:, :, r - 1], dy, out=inside[:, :, r])
            rows = unfold_blocks(sums[:size].reshape(size, hq, s * wq, p), blocks, (1, 1), (h, w), buffer)
            dw_j += rows.T @ x_chunk[..., _slice(inputs)].reshape(-1, c_hat)
            grad = (rows @ w_j).reshape(size, h, w, c_hat)
            if dx_cl is None:
                dx[chunk] = grad.transpose(0, 3, 1, 2)
            else:                               # overlapping channel windows add up
                if j == 0:
                    dx_cl[:size] = 0
                dx_cl[:size, ..., _slice(inputs)] += grad
        if dx_cl is not None:
            dx[chunk] = dx_cl[:size].transpose(0, 3, 1, 2)
    dweight = np.zeros(weight.shape, dtype=dtype)
    a, b = np.array(taps).T
    for (_, stored), dw_j in zip(windows, dw_flipped):
        dweight[:, _slice(stored), d - 1 - a, d - 1 - b] += dw_j.reshape(len(taps), p, c_hat).transpose(1, 2, 0)
    return dx, dweight
