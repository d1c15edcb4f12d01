"""Full-stack filters (Han et al., NeurIPS 2019, "MVNet"): k stored filters x s binary masks = k*s sub-filters.

Symbols as in the paper: a convolution has c input and n output channels and d x d kernels
(a pair (kh, kw) works alike; D = c*d^2 numbers per filter). The layer stores k full-stack
filters b_i (c, d, d) and binary masks m in {-1, +1}^(c x d x d); sub-filter f̂_ij = b_i ∘ m_j
(Eq. 3, shared masks, MVNet-A) or b_i ∘ m_ij (Eq. 4-5, separate masks, MVNet-B). k*s >= n
sub-filters exist; the first n are the layer's output channels, ordered as in the released code:

    output o uses full-stack filter i = o mod k and mask j = o // k (shared) or mask o (separate),

so the s sub-filters of filter i are the outputs i, i + k, i + 2k, ... With ``n_filters`` = k =
ceil(n/s) (the paper's LeNet: n = 50, s = 20 -> k = 3) the last k*s - n sub-filters are unused.

Masks are learned through latent reals: M = sign(mask_latent), sign(0) = +1 (:func:`binarize`),
with the straight-through estimator (Bengio et al. 2013, the paper's [4]) clipped as in
BinaryConnect/BNN: dL/dlatent = dL/dM * 1[|latent| <= 1]. Eq. 7's orthogonality penalty
(:func:`ortho_loss`, :class:`OrthoPenalty`) keeps the masks of one filter apart (Eq. 8).

Two implementations of one function:

* :func:`fullstack_conv2d_forward` / :func:`fullstack_conv2d_backward`: Eq. 12-13. Each input
  patch x (unfolded channels-last with the helpers of :mod:`minilib.unfold`) is multiplied by
  each full-stack filter once, c_i = vec(x) ∘ b_i, and every sub-filter response sum(c_i ∘ m_j)
  is then a matrix product of those products with the ±1 masks.
* :func:`fullstack_conv2d_forward_dense` / :func:`fullstack_conv2d_backward_dense`: the
  reference, as the released (inference-only) code computes: build the dense weight M∘B
  (n, c, d, d) (:func:`dense_weight`) and run one ordinary convolution
  (:func:`minilib.fastconv.conv2d_forward_fast`).

:func:`fullstack_conv2d_forward_naive` computes Eq. 13 patch by patch with explicit adds and
subtracts and counts its multiplications. How multiplications are counted (forward pass, per
output position, D = c*kh*kw; :func:`multiplication_count` gives the totals from the shapes):

* a *true* multiplication has two real operands. Eq. 13 path: the products c_i, k*D of them.
  Its matrix product with the masks also executes k*s*D floating-point multiplications, but by
  ±1 (by 0 for the k*s - n unused sub-filters of separate masks): sign flips, the "masking
  operations" that Sec. 2.4 does not count as MULs and hardware does with a sign bit. The
  naive loop performs exactly the k*D true ones and no others (the tests count them).
* Dense path: n*D true multiplications (Eq. 11), n/k times more (s when n = k*s, Eq. 14). Building
  M∘B costs n*D sign flips once per call, not per position.

On a CPU with BLAS the dense path is the faster one in wall-clock time (one GEMM, instead of
k*D products and a GEMM whose ±1 multiplications cost as much as real ones): the saving of
Eq. 14 pays off only where a masked add is cheaper than a multiply (the FPGA / NPU of Sec. 2.4).
``layer.implementation = "dense"`` makes a layer use it, e.g. to train faster.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from . import checks
from .conv import check_conv_memory
from .fastconv import conv2d_backward_fast, conv2d_forward_fast
from .im2col import check_memory, im2col, window_geometry
from .layers import Module, check_parameters, uniform_init
from .unfold import batch_chunks, channels_last, fold_rows, unfold_buffer, unfold_rows, zero_pad

MASK_MODES = ("shared", "separate")
IMPLEMENTATIONS = ("eq13", "dense")

FullStackShape = namedtuple("FullStackShape", "c n kernel s k masks mask_shape")
FullStackShape.__doc__ = """Sizes of a full-stack layer: c input and n output channels, kernel (kh, kw),
s masks per full-stack filter, k full-stack filters, the mask mode and the shape of ``mask_latent``."""


# ----------------------------------------------------------------------------- shapes, index, masks
def fullstack_shape(in_channels, out_channels, kernel_size, s, masks="shared", n_filters=None) -> FullStackShape:
    """Validate a configuration and return its :data:`FullStackShape`.

    k = out_channels / s (s must divide out_channels), or ``n_filters`` when given; then
    k <= out_channels <= k*s must hold and the first out_channels of the k*s sub-filters are used.
    mask_latent has shape (s, c, kh, kw) for shared masks (Eq. 3), (out_channels, c, kh, kw) for separate (Eq. 5).
    """
    c = checks.positive_int(in_channels, "in_channels")
    n = checks.positive_int(out_channels, "out_channels")
    kernel = checks.positive_pair(kernel_size, "kernel_size")
    s = checks.positive_int(s, "s")
    checks.one_of(masks, "masks", MASK_MODES)
    if n_filters is None:
        if n % s:
            raise ValueError(f"out_channels={n} must be divisible by s={s}: k = out_channels/s full-stack filters "
                             f"with s masks each give the n outputs (Eq. 3); or pass n_filters=k with k*s >= "
                             f"out_channels, e.g. n_filters={-(-n // s)} = ceil({n}/{s})")
        k = n // s
    else:
        k = checks.positive_int(n_filters, "n_filters")
        if k * s < n:
            raise ValueError(f"n_filters*s = {k}*{s} = {k * s} must be >= out_channels={n}: k full-stack filters "
                             f"with s masks make only k*s sub-filters (Eq. 3); n_filters >= {-(-n // s)} is needed")
        if k > n:
            raise ValueError(f"n_filters={k} must be <= out_channels={n}: output o uses full-stack filter o mod k, "
                             f"so filters beyond the out_channels-th would never be used")
    mask_rows = s if masks == "shared" else n
    return FullStackShape(c, n, kernel, s, k, masks, (mask_rows, c, *kernel))


def sub_filter_index(out_channels, n_filters, masks="shared"):
    """(filter_index, mask_index) of every output channel o: o mod k, and o // k (shared) or o (separate)."""
    o = np.arange(checks.positive_int(out_channels, "out_channels"))
    k = checks.positive_int(n_filters, "n_filters")
    return o % k, (o // k if checks.one_of(masks, "masks", MASK_MODES) == "shared" else o)


def binarize(latent):
    """M = sign(latent) in {-1, +1} with sign(0) = +1 (also for -0.0), in latent's dtype."""
    checks.array(latent, "latent")
    return np.where(latent >= 0, 1, -1).astype(latent.dtype)


def ste_gradient(dmasks, latent):
    """Straight-through estimator: dL/dlatent = dL/dM * 1[|latent| <= 1]
    (sign treated as the clipped identity)."""
    dmasks, latent = checks.array(dmasks, "dmasks"), checks.array(latent, "latent")
    checks.same_shape(dmasks, latent, "dmasks", "latent")
    return dmasks * (np.abs(latent) <= 1)


def _check_args(x, filters, mask_latent, bias, out_channels, masks, *, needs_x=True):
    """(k, s, n) implied by the arrays; every shape must fit Eq. 3-5 (``x`` is not checked without ``needs_x``:
    :func:`dense_weight` has none)."""
    checks.array(filters, "filters", 4, "(k, c, kh, kw)")
    checks.array(mask_latent, "mask_latent", 4, "(s or out_channels, c, kh, kw)")
    checks.one_of(masks, "masks", MASK_MODES)
    k, per_filter = filters.shape[0], filters.shape[1:]
    if mask_latent.shape[1:] != per_filter:
        raise ValueError(f"mask_latent has shape {mask_latent.shape} but filters {filters.shape}: every mask has the "
                         f"shape (c, kh, kw) = {per_filter} of a full-stack filter (Eq. 3)")
    if needs_x:
        checks.array(x, "x", 4, "(N, c, H, W)")
        if x.shape[1] != per_filter[0]:
            raise ValueError(f"x has {x.shape[1]} channels but filters expect in_channels={per_filter[0]} "
                             f"(filters.shape={filters.shape})")
    rows = mask_latent.shape[0]
    if masks == "shared":
        s, n = rows, k * rows if out_channels is None else out_channels
    else:
        n = rows if out_channels is None else out_channels
        if n != rows:
            raise ValueError(f"out_channels={n} but separate masks need one mask per output: mask_latent has "
                             f"{rows} rows (Eq. 5)")
        s = -(-n // k)
    checks.positive_int(n, "out_channels")
    if not k <= n <= k * s:
        raise ValueError(f"out_channels={n} must be between k={k} and k*s={k * s} (k full-stack filters, s={s} "
                         f"masks each, Eq. 3)")
    if bias is not None:
        checks.array(bias, "bias", 1, "(out_channels,)")
        if bias.shape[0] != n:
            raise ValueError(f"bias has shape {bias.shape} but the layer has out_channels={n}; bias must be ({n},)")
    return k, s, n


def dense_weight(filters, binary_masks, out_channels=None, masks="shared"):
    """The n sub-filters as one ordinary weight (n, c, kh, kw): W[o] = b_{o mod k} ∘ m_(o) (Eq. 3-5).

    ``binary_masks`` are the masks M themselves (binarize the latent first); any real values
    are accepted, which the tests use to differentiate with respect to M.
    """
    k, _, n = _check_args(None, filters, binary_masks, None, out_channels, masks, needs_x=False)
    checks.fits_in_memory((n, *filters.shape[1:]), np.result_type(filters.dtype, binary_masks.dtype),
                          "the dense weight (out_channels, c, kh, kw)",
                          f"out_channels={n}, filters.shape={filters.shape}")
    filter_index, mask_index = sub_filter_index(n, k, masks)
    return filters[filter_index] * binary_masks[mask_index]


def _dense_weight_adjoint(dweight, filters, binary_masks, masks):
    """(dfilters, dmasks) from the gradient of :func:`dense_weight`: each sub-filter adds to its filter and mask."""
    filter_index, mask_index = sub_filter_index(dweight.shape[0], filters.shape[0], masks)
    dfilters = np.zeros(filters.shape, dtype=dweight.dtype)
    dmasks = np.zeros(binary_masks.shape, dtype=dweight.dtype)
    np.add.at(dfilters, filter_index, dweight * binary_masks[mask_index])
    np.add.at(dmasks, mask_index, dweight * filters[filter_index])
    return dfilters, dmasks


# ----------------------------------------------------------------------------- reference: dense weight + conv
def fullstack_conv2d_forward_dense(x, filters, mask_latent, bias=None, stride=1, padding=0, out_channels=None,
                                   masks="shared"):
    """Reference forward: one ordinary convolution with the dense weight M∘B.

    Shapes as :func:`fullstack_conv2d_forward`. n*c*kh*kw real multiplications per output
    position (Eq. 11), like an ordinary convolution.
    """
    _check_args(x, filters, mask_latent, bias, out_channels, masks)
    binary = binarize(mask_latent)
    weight = dense_weight(filters, binary, out_channels, masks)
    out, conv_cache = conv2d_forward_fast(x, weight, bias, stride, padding)
    return out, (conv_cache, filters, mask_latent, binary, masks)


def fullstack_conv2d_backward_dense(dout, cache, mask_grad=True):
    """Gradients of :func:`fullstack_conv2d_forward_dense` -> (dx, dfilters, dmask_latent, dbias).

    The convolution gives dW (n, c, kh, kw); dfilters[i] = sum over the sub-filters o of filter i
    of dW[o] ∘ m_(o), dM_(j) = sum over the sub-filters using mask j of dW[o] ∘ b_{o mod k}, and
    dmask_latent = STE(dM). ``mask_grad=False`` skips it (None): fixed masks.
    """
    mask_grad = checks.flag(mask_grad, "mask_grad")
    conv_cache, filters, mask_latent, binary, masks = cache
    dx, dweight, dbias = conv2d_backward_fast(dout, conv_cache)
    dfilters, dmasks = _dense_weight_adjoint(dweight, filters, binary, masks)
    return dx, dfilters, (ste_gradient(dmasks, mask_latent) if mask_grad else None), dbias


# ----------------------------------------------------------------------------- Eq. 12-13: multiply once, mask many
def _rows(a):
    """(r, c, kh, kw) -> (r, kh*kw*c): the column order (i, j, c) of the channels-last unfold."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(a.shape[0], -1)


def _unrows(rows, per_filter):
    """Inverse of :func:`_rows` for per_filter = (c, kh, kw)."""
    c, kh, kw = per_filter
    return np.ascontiguousarray(rows.reshape(-1, kh, kw, c).transpose(0, 3, 1, 2))


def _masks_by_filter(binary_rows, k, s, n, masks):
    """(k, D, s): column j of block i is the mask of sub-filter j*k + i (zero past the n-th output)."""
    if masks == "shared":
        return np.broadcast_to(binary_rows.T, (k, *binary_rows.T.shape))     # one M for every filter (Eq. 3)
    padded = np.zeros((k * s, binary_rows.shape[1]), dtype=binary_rows.dtype)
    padded[:n] = binary_rows
    return np.ascontiguousarray(padded.reshape(s, k, -1).transpose(1, 2, 0))


def fullstack_conv2d_forward(x, filters, mask_latent, bias=None, stride=1, padding=0, out_channels=None,
                             masks="shared"):
    """Full-stack convolution as Eq. 12-13 computes it: multiply each patch by each filter once, then mask.

    Shapes: x (N, c, H, W), filters (k, c, kh, kw), mask_latent (s, c, kh, kw) for
    ``masks="shared"`` or (n, c, kh, kw) for ``"separate"``, bias (n,) or None
    -> out (N, n, OH, OW), OH = floor((H + 2*ph - kh) / sh) + 1, likewise OW.
    ``out_channels`` = n defaults to k*s (shared) or the mask count (separate).

    Per chunk of images, the patches are unfolded to rows X (P, D), P = B*OH*OW, D = c*kh*kw;
    C[i] = X ∘ b_i (k, P, D) are the products c_i of Eq. 13, k*D true multiplications per
    position; then Y[i] = C[i] @ M_i with M_i (D, s) the ±1 masks of filter i's sub-filters
    (column j: sub-filter j*k + i). That product's multiplications are by ±1, sign flips that
    are not counted (see the module docstring): it is sum(c_i[m > 0]) - sum(c_i[m < 0]), the
    masked sum of Eq. 13. The bias is added.
    Returns ``(out, cache)``.
    """
    k, s, n = _check_args(x, filters, mask_latent, bias, out_channels, masks)
    geometry = window_geometry(x.shape, filters.shape[2:], stride, padding)
    kernel, stride, padding, _, (oh, ow) = geometry
    dtype = np.result_type(x.dtype, filters.dtype, mask_latent.dtype)
    one = min(x.shape[0], 1)  # a chunk holds at least one image
    check_memory(x.shape, geometry, dtype, out_channels=n, padded_images=one,
                 unfolded=(k, one * oh * ow, filters[0].size),
                 unfolded_name="the products c_i of one image (k, OH*OW, c*kh*kw)")
    filter_rows = _rows(filters.astype(dtype, copy=False))                              # (k, D)
    mask_cols = _masks_by_filter(_rows(binarize(mask_latent.astype(dtype, copy=False))), k, s, n, masks)
    x_cl = channels_last(x.astype(dtype, copy=False))
    n_images, d = x.shape[0], filter_rows.shape[1]
    out = np.empty((n_images, n, oh, ow), dtype=dtype)
    # the products C (k, P, D) are the largest array: chunk so that they stay about cache-sized
    chunks = batch_chunks(n_images, oh * ow * k * d * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, oh * ow, d, dtype)
    for chunk in chunks:
        rows = unfold_rows(zero_pad(x_cl[chunk], padding), kernel, stride, (1, 1), (oh, ow), buffer)  # X (P, D)
        products = filter_rows[:, None, :] * rows[None]                # Eq. 13: c_i = vec(x) ∘ b_i, (k, P, D)
        responses = np.matmul(products, mask_cols)                     # ±1-masked sums, (k, P, s)
        by_output = responses.transpose(1, 2, 0).reshape(-1, oh * ow, s * k)[:, :, :n]   # o = j*k + i
        np.copyto(out[chunk].reshape(-1, n, oh * ow), by_output.transpose(0, 2, 1))
    if bias is not None:
        out += bias.astype(dtype, copy=False)[:, None, None]
    return out, (x_cl, filters, mask_latent, mask_cols, bias is not None, (k, s, n, masks), geometry)


def fullstack_conv2d_backward(dout, cache, mask_grad=True):
    """Gradients of :func:`fullstack_conv2d_forward` -> (dx, dfilters, dmask_latent, dbias).

    With dY_i (P, s) the output gradient of filter i's sub-filters, backward retraces the two
    stages: dC_i = dY_i M_i^T (masked sums again), then dX = sum_i dC_i ∘ b_i (k*D real
    multiplications per position, folded back as col2im) and db_i = sum_p dC_i ∘ X.
    dM of sub-filter (i, j) is b_i ∘ (X^T dY_i)[:, j], summed over the filters that share a mask,
    and dmask_latent = STE(dM) = dM * 1[|latent| <= 1]. ``mask_grad=False`` skips it (None).
    dbias is None without a bias.
    """
    mask_grad = checks.flag(mask_grad, "mask_grad")
    x_cl, filters, mask_latent, mask_cols, has_bias, (k, s, n, masks), geometry = cache
    kernel, stride, (ph, pw), _, (oh, ow) = geometry
    n_images, h, w, _ = x_cl.shape
    checks.upstream_gradient(dout, (n_images, n, oh, ow))
    dtype = np.result_type(dout.dtype, x_cl.dtype)
    filter_rows = _rows(filters.astype(dtype, copy=False))
    mask_cols = mask_cols.astype(dtype, copy=False)
    d = filter_rows.shape[1]
    dfilter_rows = np.zeros((k, d), dtype=dtype)
    dmask_cols = np.zeros((k, d, s), dtype=dtype)                     # dM of sub-filter j*k + i at [i, :, j]
    dx = np.empty((n_images, x_cl.shape[3], h, w), dtype=dtype)
    chunks = batch_chunks(n_images, oh * ow * k * d * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, oh * ow, d, dtype)
    for chunk in chunks:
        x_pad = zero_pad(x_cl[chunk].astype(dtype, copy=False), (ph, pw))
        rows = unfold_rows(x_pad, kernel, stride, (1, 1), (oh, ow), buffer)               # X (P, D), again
        dy = np.zeros((rows.shape[0], s * k), dtype=dtype)
        dy[:, :n] = dout[chunk].transpose(0, 2, 3, 1).reshape(-1, n)
        dy = np.ascontiguousarray(dy.reshape(-1, s, k).transpose(2, 0, 1))              # dY_i, (k, P, s)
        dproducts = np.matmul(dy, mask_cols.transpose(0, 2, 1))                          # dC_i, (k, P, D)
        dfilter_rows += np.einsum("kpd,pd->kd", dproducts, rows)
        if mask_grad:
            dmask_cols += np.matmul(rows.T, dy)                                          # X^T dY_i, (k, D, s)
        drows = np.einsum("kpd,kd->pd", dproducts, filter_rows)
        dx_pad = fold_rows(drows, x_pad.shape, kernel, stride, (1, 1), (oh, ow))
        dx[chunk] = dx_pad[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    per_filter = filters.shape[1:]
    dmask_latent = None
    if mask_grad:
        dmask_cols *= filter_rows[:, :, None]                                            # ∘ b_i
        if masks == "shared":
            dmask_rows = dmask_cols.sum(axis=0).T                                        # every filter uses m_j
        else:
            dmask_rows = dmask_cols.transpose(2, 0, 1).reshape(s * k, d)[:n]
        dmask_latent = ste_gradient(_unrows(dmask_rows, per_filter), mask_latent)
    dbias = dout.sum(axis=(0, 2, 3), dtype=dtype) if has_bias else None
    return dx, _unrows(dfilter_rows, per_filter), dmask_latent, dbias


def fullstack_conv2d_forward_naive(x, filters, mask_latent, bias=None, stride=1, padding=0, out_channels=None,
                                   masks="shared"):
    """Eq. 12-13 patch by patch with explicit adds and subtracts; returns ``(out, operations)``.

    For every output position: c_i = vec(x) ∘ b_i for i = 1..k (the only multiplications), then
    each sub-filter's response sum(c_i[m > 0]) - sum(c_i[m < 0]) (+ bias). ``operations`` counts
    what was done: ``multiplications`` (k*D per position) and ``additions`` (n*(D - 1) per
    position, plus n with a bias; a subtraction counts as an addition). Slow; for checking.
    """
    k, _, n = _check_args(x, filters, mask_latent, bias, out_channels, masks)
    check_conv_memory(x, filters, stride, padding, out_channels=n)     # the output; im2col checks the columns
    *_, (oh, ow) = window_geometry(x.shape, filters.shape[2:], stride, padding)
    cols = im2col(x, filters.shape[2:], stride, padding)                  # (D, N*OH*OW), rows (c, i, j)
    positive = binarize(mask_latent).reshape(mask_latent.shape[0], -1) > 0
    filter_index, mask_index = sub_filter_index(n, k, masks)
    flat_filters = filters.reshape(k, -1)
    out = np.empty((n, cols.shape[1]), dtype=np.result_type(x.dtype, filters.dtype))
    multiplications = additions = 0
    for p in range(cols.shape[1]):
        patch = cols[:, p]
        products = [patch * flat_filters[i] for i in range(k)]          # c_i = vec(x) ∘ b_i
        multiplications += k * patch.size
        for o in range(n):
            c_i, plus = products[filter_index[o]], positive[mask_index[o]]
            out[o, p] = c_i[plus].sum() - c_i[~plus].sum()
            additions += patch.size - 1
            if bias is not None:
                out[o, p] += bias[o]
                additions += 1
    out = out.reshape(n, x.shape[0], oh, ow).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), {"multiplications": multiplications, "additions": additions}


# ----------------------------------------------------------------------------- Eq. 7: orthogonal masks
def _mask_groups(n_masks, n_filters):
    """Row indices of the masks of each full-stack filter: all rows (shared) or rows i, i+k, ... (separate)."""
    if n_filters is None:
        return [np.arange(n_masks)]
    k = separate_filters(n_filters, n_masks)
    return [np.arange(i, n_masks, k) for i in range(k)]


def separate_filters(n_filters, n_masks: int) -> int:
    """k = ``n_filters`` for separate masks: an int from 1 to the number of masks, since each of the k full-stack
    filters owns at least one (masks i, i+k, ...; Eq. 4-5). A larger k would leave filters without masks."""
    k = checks.positive_int(n_filters, "n_filters")
    if k > n_masks:
        raise ValueError(f"n_filters={k} must be at most the {n_masks} masks of mask_latent (mask_latent.shape[0]): "
                         f"each of the k full-stack filters owns masks i, i+k, ... (Eq. 4-5)")
    return k


def _gram_residual(binary_columns):
    """A = M^T M / D - I for masks M (D, m) as columns."""
    d, m = binary_columns.shape
    return binary_columns.T @ binary_columns / d - np.eye(m, dtype=binary_columns.dtype)


def ortho_loss(mask_latent, n_filters=None):
    """Eq. 7 on the binarised masks and its STE gradient -> (value, dmask_latent).

    For the masks M = [m_1, ..., m_s] (D x s, D = c*d^2) of ONE full-stack filter,
    L = 1/2 ||M^T M / D - I||_F^2 and dL/dM = 2 M (M^T M / D - I) / D; the gradient goes to the
    latent through the STE, dL/dM * 1[|latent| <= 1].
    ``mask_latent``: (s, c, kh, kw) shared masks (``n_filters=None``: one set, Eq. 3), or the
    (n, c, kh, kw) separate masks with ``n_filters=k``: filter i owns masks i, i+k, i+2k, ...
    (Eq. 4-5) and the value is the sum of the k filters' terms. Off-diagonal entries of
    M^T M / D are the masks' correlations; the diagonal is exactly 1 for ±1 masks.
    """
    checks.array(mask_latent, "mask_latent", 4, "(s or out_channels, c, kh, kw)")
    binary = binarize(mask_latent).reshape(mask_latent.shape[0], -1)
    d = binary.shape[1]
    value, dbinary = 0.0, np.zeros_like(binary)
    for rows in _mask_groups(binary.shape[0], n_filters):
        columns = binary[rows].T                                                 # M (D, s)
        residual = _gram_residual(columns)
        value += 0.5 * float(np.sum(residual ** 2))
        dbinary[rows] = (2.0 / d * columns @ residual).T
    return value, ste_gradient(dbinary.reshape(mask_latent.shape), mask_latent)


def ortho_loss_released(mask_latent):
    """The released code's form of Eq. 7 -> (value, dmask_latent): a MEAN over ALL masks of the layer.

    With all m masks of the layer as columns of M (m = s shared, m = n separate, across
    full-stack filters), value = mean((M^T M / D - I)^2) = ||M^T M / D - I||_F^2 / m^2 instead of
    1/2 ||.||_F^2 per filter. For shared masks that is 2/s^2 times :func:`ortho_loss`; for
    separate masks it also penalises the correlation of masks of different filters.
    """
    checks.array(mask_latent, "mask_latent", 4, "(s or out_channels, c, kh, kw)")
    columns = binarize(mask_latent).reshape(mask_latent.shape[0], -1).T
    d, m = columns.shape
    residual = _gram_residual(columns)
    dbinary = (4.0 / (d * m * m) * columns @ residual).T
    return float(np.mean(residual ** 2)), ste_gradient(dbinary.reshape(mask_latent.shape), mask_latent)


def _layer_ortho_loss(layer, released):
    if released:
        return ortho_loss_released(layer.mask_latent)
    return ortho_loss(layer.mask_latent, None if layer.masks == "shared" else layer.n_filters)


class OrthoPenalty:
    """λ sum_l L_ortho(M^l), the second term of Eq. 8, as ``fit(..., regularizer=...)``.

    ``model_or_layers``: a minilib Module (every :class:`FullStackConv2d` inside it is used) or
    an iterable of such layers. Layers with ``learn_masks=False`` are left out: their masks are
    fixed and have no gradient. Calling the object adds λ * dL_ortho/dmask_latent into each
    layer's ``grads["mask_latent"]`` and returns the value; call it after the backward pass
    (layers overwrite their gradients there), as ``fit`` does. ``released=True`` uses
    :func:`ortho_loss_released` instead of Eq. 7. The paper sets λ = 0.1 (Sec. 3.1.1).
    """

    def __init__(self, model_or_layers, lam=0.1, released=False):
        self.lam = checks.non_negative_number(lam, "lam")
        self.released = checks.flag(released, "released")
        if isinstance(model_or_layers, Module):
            candidates = [module for _, module in model_or_layers.named_modules()]
        else:
            candidates = list(model_or_layers)
            for i, layer in enumerate(candidates):
                if not isinstance(layer, FullStackConv2d):
                    raise TypeError(f"model_or_layers[{i}] must be a FullStackConv2d, got {type(layer).__name__}")
        self.layers = [m for m in candidates if isinstance(m, FullStackConv2d) and m.learn_masks]

    def value(self) -> float:
        """λ sum_l L_ortho without touching any gradient."""
        return self.lam * sum(_layer_ortho_loss(layer, self.released)[0] for layer in self.layers)

    def __call__(self) -> float:
        total = 0.0
        for layer in self.layers:
            value, grad = _layer_ortho_loss(layer, self.released)
            layer.grads["mask_latent"] += self.lam * grad
            total += value
        return self.lam * total


# ----------------------------------------------------------------------------- Eq. 9, 10, 14: costs
def compression_ratio_shared(s, k) -> float:
    """Eq. 9: n c d^2 / (k c d^2 + s c d^2 / 32) = s / (1 + s / (32 k)) for n = k*s, shared 1-bit masks."""
    s, k = checks.positive_int(s, "s"), checks.positive_int(k, "k")
    return s / (1 + s / (32 * k))


def compression_ratio_separate(s) -> float:
    """Eq. 10: n c d^2 / (k c d^2 + n c d^2 / 32) = s / (1 + s / 32) for n = k*s, one 1-bit mask per output."""
    s = checks.positive_int(s, "s")
    return s / (1 + s / 32)


def mul_reduction(s) -> int:
    """Eq. 14: n c d^2 / (k c d^2) = s multiplications saved per patch (for n = k*s)."""
    return checks.positive_int(s, "s")


def multiplication_count(layer, out_hw) -> dict:
    """Real multiplications of one sample through a full-stack layer, counted from the shapes.

    ``fast``: Eq. 13, k*c*kh*kw per output position (the products c_i = vec(x) ∘ b_i; the ±1
    masking is not a multiplication), the work of :func:`fullstack_conv2d_forward` and
    :func:`fullstack_conv2d_forward_naive`. ``dense``: Eq. 11, n*c*kh*kw per position, the work
    of :func:`fullstack_conv2d_forward_dense` (and of the released code). Both times OH*OW;
    dense / fast = n/k, which is s (Eq. 14) when n = k*s. Biases add, they do not multiply.
    ``layer``: a :class:`FullStackConv2d` or its torch twin (in_channels, out_channels,
    kernel_size, n_filters); ``out_hw``: (OH, OW).
    """
    taps = layer.in_channels * math.prod(checks.positive_pair(layer.kernel_size, "kernel_size"))
    positions = math.prod(checks.positive_pair(out_hw, "out_hw"))
    return {"fast": layer.n_filters * taps * positions, "dense": layer.out_channels * taps * positions}


def fullstack_cost(layer, out_hw) -> dict:
    """Storage and multiplications of one full-stack layer for one sample (Eq. 9-10 and 13).

    ``conv_weights`` = k*c*kh*kw 32-bit filter weights; ``mask_bits`` = one bit per mask entry
    (s*c*kh*kw shared, n*c*kh*kw separate, learned or fixed alike); ``params`` = filters + biases
    (the 1-bit masks are counted in mask_bits); ``flops`` = :func:`multiplication_count`'s ``fast``.
    """
    shape = fullstack_shape(layer.in_channels, layer.out_channels, layer.kernel_size, layer.s, layer.masks,
                            layer.n_filters)
    weights = shape.k * shape.c * math.prod(shape.kernel)
    return {"conv_weights": weights, "mask_bits": math.prod(shape.mask_shape),
            "params": weights + (0 if layer.bias is None else shape.n),
            "flops": multiplication_count(layer, out_hw)["fast"]}


# ----------------------------------------------------------------------------- the layer
def configure_layer(layer, in_channels, out_channels, kernel_size, s, stride, padding, masks, learn_masks,
                    n_filters):
    """Validate a full-stack layer's arguments and set the attributes the NumPy layer and its torch twin share
    (in_channels, out_channels, kernel_size, stride, padding, s, n_filters, masks, learn_masks); returns the shape."""
    shape = fullstack_shape(in_channels, out_channels, kernel_size, s, masks, n_filters)
    if not isinstance(learn_masks, (bool, np.bool_)):  # the message tests of both layers read this form
        raise TypeError(f"learn_masks must be True or False, got {learn_masks!r}")
    layer.in_channels, layer.out_channels, layer.kernel_size = shape.c, shape.n, shape.kernel
    layer.stride = checks.positive_pair(stride, "stride")
    layer.padding = checks.non_negative_pair(padding, "padding")
    layer.s, layer.n_filters, layer.masks, layer.learn_masks = shape.s, shape.k, shape.masks, bool(learn_masks)
    return shape


class FullStackConv2d(Module):
    """k full-stack filters x s binary masks as a c -> n convolution (Eq. 3-5); a drop-in for Conv2d.

    Params: ``filters`` (k, c, kh, kw); ``mask_latent`` (s, c, kh, kw) for ``masks="shared"``
    (MVNet-A, Eq. 3) or (n, c, kh, kw) for ``"separate"`` (MVNet-B, Eq. 4-5), the reals whose
    signs are the masks; ``bias`` (n,) unless ``bias=False``. k = out_channels / s, or
    ``n_filters`` (k*s >= out_channels; the first out_channels sub-filters are used). Output o
    uses filter o mod k and mask o // k (shared) or o (separate).
    With ``learn_masks=False`` the masks are fixed random signs (the paper's "-Rand" rows):
    ``mask_latent`` is a buffer (in ``state_dict``, not in ``params``), never differentiated
    or updated.

    Forward and backward are Eq. 12-13 (:func:`fullstack_conv2d_forward`); set the attribute
    ``implementation = "dense"`` for the dense-weight path (same numbers, fewer seconds on a
    CPU, n/k times the multiplications). Initialised from
    ``rng`` in the order filters, mask_latent, bias: filters and bias like ``torch.nn.Conv2d``,
    U(±1/sqrt(c*kh*kw)); mask_latent U(-1, 1), so the masks start as Rademacher signs (as the
    released code) with every latent inside the STE's window. The torch twin
    ``minilib.torch.FullStackConv2d`` takes the same arguments and names its parameters alike.
    ``bias`` and ``learn_masks`` are bools, ``rng`` a ``numpy.random.Generator``, an int seed or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, s, stride=1, padding=0, bias=True, masks="shared",
                 learn_masks=True, rng=None, n_filters=None):
        super().__init__()
        shape = configure_layer(self, in_channels, out_channels, kernel_size, s, stride, padding, masks,
                                learn_masks, n_filters)
        bias = checks.flag(bias, "bias")
        rng = checks.rng(rng)
        check_parameters("FullStackConv2d", [("filters", (shape.k, shape.c, *shape.kernel)),
                                             ("mask_latent", shape.mask_shape)],
                         f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={shape.kernel}, s={s}")
        bound = 1.0 / math.sqrt(shape.c * math.prod(shape.kernel))
        params = {"filters": uniform_init(rng, bound, (shape.k, shape.c, *shape.kernel))}
        latent = rng.uniform(-1.0, 1.0, size=shape.mask_shape)
        if self.learn_masks:
            params["mask_latent"] = latent
        if bias:
            params["bias"] = uniform_init(rng, bound, (shape.n,))
        self._init_params(params)
        if not self.learn_masks:
            self.buffers["mask_latent"] = latent
        self.implementation = "eq13"

    @property
    def filters(self):
        return self.params["filters"]

    @property
    def mask_latent(self):
        return self.params["mask_latent"] if self.learn_masks else self.buffers["mask_latent"]

    @property
    def bias(self):
        return self.params.get("bias")

    def binary_masks(self):
        """M = sign(mask_latent) in {-1, +1}, the masks the layer computes with."""
        return binarize(self.mask_latent)

    def dense_weight(self):
        """The n sub-filters (n, c, kh, kw) as an ordinary convolution weight (Eq. 3-5)."""
        return dense_weight(self.filters, self.binary_masks(), self.out_channels, self.masks)

    def ortho_loss(self, released=False):
        """(value, dmask_latent) of Eq. 7 for this layer's masks (:func:`ortho_loss`, or the released variant)."""
        return _layer_ortho_loss(self, released)

    def forward(self, x):
        checks.array(x, "x", 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels but the layer expects in_channels={self.in_channels}")
        dense = checks.one_of(self.implementation, "implementation", IMPLEMENTATIONS) == "dense"
        forward = fullstack_conv2d_forward_dense if dense else fullstack_conv2d_forward
        out, cache = forward(x, self.filters, self.mask_latent, self.bias, self.stride, self.padding,
                             self.out_channels, self.masks)
        self.cache = (dense, cache)
        return out

    def backward(self, dout):
        dense, cache = self._require_cache()
        backward = fullstack_conv2d_backward_dense if dense else fullstack_conv2d_backward
        dx, self.grads["filters"], dmask_latent, dbias = backward(dout, cache, mask_grad=self.learn_masks)
        if self.learn_masks:
            self.grads["mask_latent"] = dmask_latent
        if dbias is not None:
            self.grads["bias"] = dbias
        return dx

    def cost(self, in_shape, out_shape) -> dict:
        """Per-sample storage and multiplications (see :func:`fullstack_cost`)."""
        return fullstack_cost(self, out_shape[-2:])

    def __repr__(self):
        return (f"FullStackConv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"s={self.s}, stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"masks={self.masks!r}, learn_masks={self.learn_masks}; k={self.n_filters})")
