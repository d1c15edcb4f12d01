"""Channels-last unfold and fold: the im2col of the fast layers.

:func:`minilib.im2col.im2col` builds the textbook's column matrix cols[(c, i, j), (n, oh, ow)],
shape (C*kh*kw, N*OH*OW). The fast layers (:mod:`minilib.fastconv`, :mod:`minilib.versatile`,
:mod:`minilib.fullstack`) hold the same numbers in the order that is fastest to copy and to
multiply, and share the helpers below to build it:

* :func:`channels_last` copies x (N, C, H, W) once to (N, H, W, C), and :func:`zero_pad` pads
  a chunk of it. A kernel window of one output pixel is then kh runs of kw*C contiguous numbers.
* :func:`unfold_rows` turns a padded chunk into the column matrix *transposed*: one row per
  output pixel (n, oh, ow), columns (i, j, c), shape (B*OH*OW, kh*kw*C). It is ``im2col(x).T``
  with the columns reordered from (c, i, j) to (i, j, c); a layer reorders its weight to match.
* :func:`fold_rows` is its adjoint (col2im): it scatter-adds such rows back into a padded
  channels-last gradient, for the backward pass.
* :func:`batch_chunks` cuts the batch so that one chunk's rows (about :data:`CHUNK_BYTES`)
  stay in cache between the unfold that writes them and the GEMM that reads them, and
  :func:`unfold_buffer` allocates the one buffer every chunk's unfold reuses.

These are the fast path of every NumPy layer that convolves (``layers.Conv2d``, the
versatile, basis and full-stack layers), so they change neither numbers nor dtypes: float32
stays float32, and the rows hold exactly the numbers im2col copies (``tests/test_unfold.py``).

Each choice was measured on a 2-core AVX-512 machine, float32, batch 128
(``benchmarks/conv_benchmark.py``); the module docstring of :mod:`minilib.fastconv` tells how
the convolution uses them.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Bytes of column matrix per batch chunk (at least one image). About the L2 cache size (2 MB
# per core here) keeps a chunk's columns in cache between being written by the unfold and
# read by the GEMM; much larger chunks are slower again (measured), much smaller ones make
# the GEMMs too small to use both cores well.
CHUNK_BYTES = 1 << 21
# Below this many contiguous numbers per kernel row (kw*C), :func:`unfold_rows` copies along
# pixels instead (see :func:`unfolds_by_row`).
MIN_RUN = 16


def batch_chunks(n, bytes_per_image):
    """Slices that cut a batch of ``n`` images into chunks of about :data:`CHUNK_BYTES` (>= 1 image).

    ``bytes_per_image`` is the size of one image's unfolded rows (OH*OW * row length * itemsize),
    the array that should stay in cache. An empty batch (``n`` = 0) has no chunks: the layers'
    loops then do nothing and return their empty outputs and zero weight gradients, as torch does.
    """
    if n == 0:
        return []
    size = int(min(n, max(1, CHUNK_BYTES // max(bytes_per_image, 1))))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def channels_last(x):
    """(N, C, H, W) -> contiguous (N, H, W, C), so that a window row is one run of kw*C numbers."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def zero_pad(x_cl, padding):
    """Zero-pad a channels-last chunk (B, H, W, C) to (B, H + 2*ph, W + 2*pw, C) (no copy if unpadded).

    ``padding`` is the pair (ph, pw). Padding chunk by chunk keeps the padded copy cache-sized.
    """
    ph, pw = padding
    if not (ph or pw):
        return x_cl
    n, h, w, c = x_cl.shape
    x_pad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_cl.dtype)
    x_pad[:, ph:ph + h, pw:pw + w] = x_cl
    return x_pad


def unfolds_by_row(kw, c):
    """Whether :func:`unfold_rows` returns C-contiguous rows (True) or the transpose of a
    C-contiguous (kh*kw*C, B*OH*OW) array (False: fewer than :data:`MIN_RUN` numbers per
    kernel row, e.g. a grayscale first layer).

    A backward pass that computes the row gradient dY W^T can use it to produce the same
    layout, so that :func:`fold_rows` adds long runs either way.
    """
    return kw * c >= MIN_RUN


def unfold_rows(x_pad, kernel, stride, dilation, out_hw, buffer=None):
    """Column matrix of a channels-last padded batch, transposed: (B*OH*OW, kh*kw*C).

    rows[(n, oh, ow), (i, j, c)] = x_pad[n, oh*sh + i*dh, ow*sw + j*dw, c]

    ``x_pad`` (B, Hp, Wp, C) may be a view (the versatile layer passes cropped channel windows);
    ``kernel``, ``stride``, ``dilation`` and ``out_hw`` are pairs (kh, kw), (sh, sw), (dh, dw), (OH, OW).
    A read-only strided view puts every window next to its output pixel without copying;
    one copy then makes it a real matrix: C-contiguous (runs of kw*C contiguous numbers when
    dw = 1), or for few channels the transpose of a C-contiguous (kh*kw*C, B*OH*OW) array
    (see :func:`unfolds_by_row`). ``buffer`` (a 1-D array of at least that many numbers, see
    :func:`unfold_buffer`) receives the copy: reusing one buffer for every chunk writes into
    memory that is already mapped and cached, which measured about 40% faster than a fresh
    array per chunk. The result is a view of ``buffer``: use it before the next unfold.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, _, _, c = x_pad.shape
    s_n, s_h, s_w, s_c = x_pad.strides
    windows = as_strided(x_pad, shape=(n, oh, ow, kh, kw, c),
                         strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c), writeable=False)
    size = n * oh * ow * kh * kw * c
    if buffer is None:
        buffer = np.empty(size, dtype=x_pad.dtype)
    if unfolds_by_row(kw, c):
        rows = buffer[:size].reshape(n, oh, ow, kh, kw, c)
        np.copyto(rows, windows)
        return rows.reshape(n * oh * ow, kh * kw * c)
    # Few channels (e.g. a grayscale first layer): runs of kw*C numbers are too short to copy
    # fast, so copy along the output pixels instead (runs of OW when stride 1) into a
    # (kh*kw*C, B*OH*OW) array and return its transpose; BLAS takes either layout as is.
    cols = buffer[:size].reshape(kh, kw, c, n, oh, ow)
    np.copyto(cols, windows.transpose(3, 4, 5, 0, 1, 2))
    return cols.reshape(kh * kw * c, n * oh * ow).T


def unfold_buffer(chunks, pixels_per_image, row_length, dtype):
    """One reusable 1-D buffer big enough for the unfold of the largest chunk.

    ``chunks`` are the slices of :func:`batch_chunks`; a chunk of B images unfolds to
    B * ``pixels_per_image`` (OH*OW) rows of ``row_length`` (kh*kw*C) numbers (an empty buffer
    for an empty batch, which has no chunks).
    """
    largest = max((chunk.stop - chunk.start for chunk in chunks), default=0)
    return np.empty(largest * pixels_per_image * row_length, dtype=dtype)


def fold_rows(rows, padded_shape, kernel, stride, dilation, out_hw, out=None):
    """Adjoint of :func:`unfold_rows`: scatter-add rows (B*OH*OW, kh*kw*C) into (B, Hp, Wp, C).

    ``rows`` may have either layout :func:`unfold_rows` makes (C-contiguous, or the transpose
    of a (kh*kw*C, B*OH*OW) array); ``padded_shape`` is (B, Hp, Wp, C) of the padded input.
    One vectorised add per kernel tap into a preallocated zero buffer (taps overlap, so they
    must be added one after another). With ``out`` (an array or view of shape ``padded_shape``)
    the taps are added into it instead, so several unfolds of one input can share one gradient buffer.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    n, _, _, c = padded_shape
    if rows.flags.c_contiguous:
        taps = rows.reshape(n, oh, ow, kh, kw, c)
    else:  # the transpose of a (kh*kw*C, B*OH*OW) array, as :func:`unfold_rows` makes for few channels
        taps = rows.T.reshape(kh, kw, c, n, oh, ow).transpose(3, 4, 5, 0, 1, 2)
    x_pad = np.zeros(padded_shape, dtype=rows.dtype) if out is None else out
    for i in range(kh):
        for j in range(kw):
            x_pad[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += taps[:, :, :, i, j]
    return x_pad




def _block_plan(blocks, padded_shape, stride, out_hw):
    """Check tap blocks (pairs of ranges) and return (slices, widths in taps, kh, kw).

    Every tap must lie inside the padded input for every output pixel: the strided view of
    :func:`unfold_blocks` does not check.
    """
    slices, widths = [], []
    for block in blocks:
        rows, cols = block
        if not (isinstance(rows, range) and isinstance(cols, range) and len(rows) and len(cols)
                and rows.step > 0 and cols.step > 0 and rows.start >= 0 and cols.start >= 0):
            raise ValueError(f"tap block {block!r} must be a pair of non-empty increasing ranges of "
                             f"non-negative tap offsets")
        slices.append((slice(rows.start, rows.stop, rows.step), slice(cols.start, cols.stop, cols.step)))
        widths.append(len(rows) * len(cols))
    kh, kw = max(rows[-1] for rows, _ in blocks) + 1, max(cols[-1] for _, cols in blocks) + 1
    (_, hp, wp, _), (sh, sw), (oh, ow) = padded_shape, stride, out_hw
    if (oh - 1) * sh + kh > hp or (ow - 1) * sw + kw > wp:
        raise ValueError(f"the tap blocks span {kh}x{kw} taps and reach outside the padded input {hp}x{wp} "
                         f"for out_hw={out_hw}, stride={stride}")
    return slices, widths, kh, kw


def unfold_blocks(x_pad, blocks, stride, out_hw, buffer=None):
    """:func:`unfold_rows` with the kernel taps in a chosen order: rows (B*OH*OW, K), the columns
    of ``blocks`` one after another.

    A block (rows, cols) is a grid of taps given by two ``range`` objects (steps allowed, e.g.
    ``range(0, 5, 4)`` for the top and bottom row of a 5x5 kernel); it contributes the columns
    (a, b, c) for a in rows, b in cols and all C channels, in that order:

        rows[(n, oh, ow), first column of the block + (k_a * len(cols) + k_b) * C + c]
            = x_pad[n, oh*sh + a, ow*sw + b, c]        (a = rows[k_a], b = cols[k_b])

    One block (range(kh), range(kw)) gives exactly :func:`unfold_rows` (dilation 1). The
    versatile layer orders its taps ring by ring, so that every secondary filter's window is one
    contiguous range of columns (:mod:`minilib.versatile_fast`); each block is one strided copy,
    so fewer blocks mean fewer NumPy calls. ``x_pad`` (B, Hp, Wp, C) may be a view; ``stride`` and
    ``out_hw`` are pairs. Layout and ``buffer`` as in :func:`unfold_rows`: C-contiguous rows when
    ``unfolds_by_row(1, C)`` (a block row may be a single tap, a run of only C numbers), else the
    transpose of a C-contiguous (K, B*OH*OW) array. The result is a view of ``buffer``.
    """
    (sh, sw), (oh, ow) = stride, out_hw
    n, _, _, c = x_pad.shape
    slices, widths, kh, kw = _block_plan(blocks, x_pad.shape, stride, out_hw)
    s_n, s_h, s_w, s_c = x_pad.strides
    windows = as_strided(x_pad, shape=(n, oh, ow, kh, kw, c),
                         strides=(s_n, s_h * sh, s_w * sw, s_h, s_w, s_c), writeable=False)
    k = sum(widths) * c
    size = n * oh * ow * k
    if buffer is None:
        buffer = np.empty(size, dtype=x_pad.dtype)
    by_row = unfolds_by_row(1, c)
    target = buffer[:size].reshape((n, oh, ow, k) if by_row else (k, n, oh, ow))
    col = 0
    for (a, b), (rows, cols) in zip(slices, blocks):
        width = len(rows) * len(cols) * c
        if by_row:
            np.copyto(target[..., col:col + width].reshape(n, oh, ow, len(rows), len(cols), c), windows[:, :, :, a, b])
        else:   # few channels: copy along the output pixels, as unfold_rows does
            np.copyto(target[col:col + width].reshape(len(rows), len(cols), c, n, oh, ow),
                      windows[:, :, :, a, b].transpose(3, 4, 5, 0, 1, 2))
        col += width
    return target.reshape(n * oh * ow, k) if by_row else target.reshape(k, n * oh * ow).T


def fold_blocks(rows, padded_shape, blocks, stride, out_hw, out=None):
    """Adjoint of :func:`unfold_blocks`: scatter-add rows (B*OH*OW, K) back into (B, Hp, Wp, C).

    ``rows`` may have either layout :func:`unfold_blocks` makes; the columns follow ``blocks``
    as there. One vectorised add per tap, as :func:`fold_rows`; with ``out`` (an array or view of
    shape ``padded_shape``) the taps are added into it instead of a new zero array.
    """
    (sh, sw), (oh, ow) = stride, out_hw
    n, _, _, c = padded_shape
    _, widths, _, _ = _block_plan(blocks, padded_shape, stride, out_hw)
    k = sum(widths) * c
    if rows.flags.c_contiguous:
        taps = rows.reshape(n, oh, ow, k)
    else:  # the transpose of a (K, B*OH*OW) array, as unfold_blocks makes for few channels
        taps = rows.T.reshape(k, n, oh, ow).transpose(1, 2, 3, 0)
    x_pad = np.zeros(padded_shape, dtype=rows.dtype) if out is None else out
    col = 0
    for tap_rows, tap_cols in blocks:
        for a in tap_rows:
            for b in tap_cols:
                x_pad[:, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw] += taps[..., col:col + c]
                col += c
    return x_pad

def padded_buffer(chunks, x_shape, padding, dtype):
    """A zero array (B, H + 2*ph, W + 2*pw, C) for the largest chunk, for :func:`pad_channels_last`.

    ``x_shape`` is (N, C, H, W), ``padding`` the pair (ph, pw). Only the inside is ever rewritten,
    so the border stays zero for every chunk: padding costs no extra pass per chunk.
    """
    _, c, h, w = x_shape
    (ph, pw), largest = padding, max((chunk.stop - chunk.start for chunk in chunks), default=0)
    return np.zeros((largest, h + 2 * ph, w + 2 * pw, c), dtype=dtype)


def pad_channels_last(x_chunk, padding, buffer):
    """A chunk (B, C, H, W) copied channels-last into the inside of ``buffer`` (:func:`padded_buffer`):
    returns the zero-padded (B, H + 2*ph, W + 2*pw, C) view, in ONE copy.

    The same numbers as ``zero_pad(channels_last(x_chunk), padding)``, without the separate
    channels-last copy of the whole batch and the fresh zero array per chunk. The view is
    overwritten by the next chunk.
    """
    n, _, h, w = x_chunk.shape
    ph, pw = padding
    x_pad = buffer[:n]
    x_pad[:, ph:ph + h, pw:pw + w] = x_chunk.transpose(0, 2, 3, 1)
    return x_pad
