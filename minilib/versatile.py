"""Versatile filters (Wang et al., NeurIPS 2018): one stored primary filter, several secondary filters.

Symbols as in the paper: a primary filter f is d x d x c; it yields s = ceil(d/2) *spatial*
secondaries f_i = M_i ∘ f, where the 0/1 mask M_i keeps the centred (d - 2i + 2)^2 window
(Eq. 2, i = 1..s; in code i = 0..s-1 and the window is d - 2i). The layer stacks their
responses (Eq. 3). The *channel* variant (Eq. 8) also applies each filter to n = delta/g + 1
windows of ĉ = c - delta input channels, the window sliding by the channel stride g.

A layer with P primary filters therefore has s*n*P output channels, ordered

    o = (i*n + j)*P + p     (spatial secondary i, channel window j, primary p),

as in the released code. ``combine="sum"`` is the naive Eq. 4: the s secondaries are summed
into one map, which equals ONE convolution with the fixed mask sum_i M_i (Eq. 5); outputs
o = j*P + p.

Two channel modes:

* ``"paper"`` (Fig. 2): the primary has all c channels, weight (P, c, d, d); secondary j uses
  the primary's channels [j*g, j*g + ĉ) on the same input channels.
* ``"official"`` (the released ``VConv2d``): weight (P, ĉ, d, d); the same ĉ stored channels
  are applied to every input window x[:, j*g : j*g + ĉ].

Three implementations of one function:

* :func:`versatile_conv2d_forward` / :func:`versatile_conv2d_backward` do the work Proposition 1
  counts: secondary i is a convolution with the *cropped* (d-2i) x (d-2i) kernel on the input
  cropped by i on each side (padding p - i, which may be negative), so its multiplications
  fall with (d - 2i)^2. The input is unfolded channels-last once per secondary (with the
  helpers of :mod:`minilib.unfold`, as in :mod:`minilib.fastconv`), and the backward pass
  accumulates every secondary's gradient into its window of the primary. The readable version.
* :func:`versatile_conv2d_forward_fast` / :func:`versatile_conv2d_backward_fast` compute the
  same from ONE unfold whose columns are ordered ring by ring (:mod:`minilib.versatile_fast`),
  so that every secondary's window is a contiguous block of columns; the rings need 1/s of a
  standard layer's multiplications. :class:`VersatileConv2d` runs them.
* :func:`versatile_conv2d_forward_reference` builds the explicit masked sub-filters
  (:func:`dense_weight`) and runs one plain convolution; slow and obviously correct.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import checks, versatile_fast
from .conv import conv2d_backward, conv2d_forward
from .fastconv import conv2d_backward_fast, conv2d_forward_fast
from .im2col import check_memory, window_geometry
from .layers import Module, check_parameters, uniform_init
from .unfold import batch_chunks, channels_last, fold_rows, unfold_buffer, unfold_rows, unfolds_by_row, zero_pad

COMBINE_MODES = ("concat", "sum")
CHANNEL_MODES = ("paper", "official")

VersatileShape = namedtuple("VersatileShape", "d s n c_hat primaries weight_shape")
VersatileShape.__doc__ = """Sizes of a versatile layer: kernel d, s = ceil(d/2) spatial secondaries,
n = delta/g + 1 channel windows of ĉ = c - delta channels, P primary filters and the stored weight shape."""


def square_kernel(kernel_size, name="kernel_size") -> int:
    """d for an int d or a pair (d, d); versatile filters are square (Eq. 2)."""
    kh, kw = checks.positive_pair(kernel_size, name)
    if kh != kw:
        raise ValueError(f"{name}={kernel_size!r} must be square: versatile filters crop centred d x d windows (Eq. 2)")
    return kh


def num_secondaries(kernel_size) -> int:
    """s = ceil(d/2): how many centred windows a d x d filter has (Eq. 2)."""
    return (square_kernel(kernel_size) + 1) // 2


def secondary_masks(kernel_size) -> np.ndarray:
    """The masks M_1..M_s of Wang et al.'s Eq. 2, a 0/1 array of shape (s, d, d).

    Secondary i (0-based) keeps the centred window [i, d-i) x [i, d-i), of size d - 2i
    (the paper's (d - 2i + 2) with 1-based i): a 5x5 filter gives 5x5, 3x3, 1x1 windows,
    a 4x4 filter 4x4 and 2x2.
    """
    d = square_kernel(kernel_size)
    s = (d + 1) // 2
    masks = np.zeros((s, d, d))
    for i in range(s):
        masks[i, i:d - i, i:d - i] = 1.0
    return masks


def versatile_shape(in_channels, out_channels, kernel_size, delta=0, g=1, combine="concat", channel_mode="paper"):
    """Validate a versatile configuration and return its :data:`VersatileShape`.

    out_channels = s*n*P for ``combine="concat"`` (Eq. 3 and 8) and n*P for ``"sum"`` (Eq. 4),
    with s = ceil(d/2), n = delta/g + 1 and ĉ = in_channels - delta.
    """
    c = checks.positive_int(in_channels, "in_channels")
    out_channels = checks.positive_int(out_channels, "out_channels")
    d = square_kernel(kernel_size)
    delta = checks.non_negative_int(delta, "delta")
    g = checks.positive_int(g, "g")
    checks.one_of(combine, "combine", COMBINE_MODES)
    checks.one_of(channel_mode, "channel_mode", CHANNEL_MODES)
    if delta >= c:
        raise ValueError(f"delta={delta} must be smaller than in_channels={c}: "
                         f"each channel window keeps ĉ = in_channels - delta >= 1 channels (Wang et al.'s Eq. 8)")
    if delta % g:
        raise ValueError(f"delta={delta} must be divisible by g={g} so that n = delta/g + 1 is an integer "
                         f"(Wang et al.'s Eq. 8)")
    s, n = (d + 1) // 2, delta // g + 1
    per_primary = s * n if combine == "concat" else n
    if out_channels % per_primary:
        rule = f"s*n={per_primary}" if combine == "concat" else f"n={per_primary}"
        raise ValueError(f"out_channels={out_channels} must be divisible by {rule} for kernel_size={d} (s={s}), "
                         f"delta={delta}, g={g} (n={n}), combine={combine!r}")
    primaries, c_hat = out_channels // per_primary, c - delta
    stored = c if channel_mode == "paper" else c_hat
    return VersatileShape(d, s, n, c_hat, primaries, (primaries, stored, d, d))


def _secondaries(shape, g, combine, channel_mode):
    """Yield (i, j, output block, input channels, weight channels) for every secondary filter."""
    d, s, n, c_hat, p, _ = shape
    for i in range(s):
        for j in range(n):
            block = (i * n + j) * p if combine == "concat" else j * p
            inputs = slice(j * g, j * g + c_hat)
            stored = inputs if channel_mode == "paper" else slice(0, c_hat)
            yield i, j, slice(block, block + p), inputs, stored


def channel_windows(in_channels, delta=0, g=1, channel_mode="paper"):
    """For each channel window j (Eq. 8): (input channels read, stored filter channels used), as ranges.

    Window j reads input channels [j*g, j*g + ĉ). In ``"paper"`` mode it uses the primary's
    channels at the same positions; in ``"official"`` mode the ĉ stored channels [0, ĉ).
    """
    n = checks.non_negative_int(delta, "delta") // checks.positive_int(g, "g") + 1
    shape = versatile_shape(in_channels, n, 1, delta, g, "sum", channel_mode)  # validates; 1x1 keeps s = 1
    return [(range(inputs.start, inputs.stop), range(stored.start, stored.stop))
            for _, _, _, inputs, stored in _secondaries(shape, g, "sum", channel_mode)]


def released_bias_slices(out_channels, kernel_size, delta=0, g=1):
    """The bias entries the released ``VConv2d`` adds to each secondary, next to the correct ones.

    The released forward loops over the channel offset ``start`` = 0, g, 2g, ... (not over the
    window index j) and takes ``bias[int(F*(i*n + start)/(s*n)) : int(F*(i*n + start + 1)/(s*n))]``
    with F = out_channels. That is block (i*n + j) only when g = 1; for g > 1 the slices overlap,
    skip blocks or run past the end (an empty slice, which ``F.conv2d`` rejects).
    Returns a list of (i, j, released range, correct range).
    """
    # the layer's own rules (a stand-in in_channels: the released slices do not depend on it)
    shape = versatile_shape(delta + 1, out_channels, kernel_size, delta, g)
    s, n, p = shape.s, shape.n, shape.primaries
    rows = []
    for i in range(s):
        for j in range(n):
            start = j * g
            lo = int(out_channels * (i * n + start) / (s * n))
            hi = int(out_channels * (i * n + start + 1) / (s * n))
            rows.append((i, j, range(lo, min(hi, out_channels)), range((i * n + j) * p, (i * n + j + 1) * p)))
    return rows


def _check_weight(weight, in_channels, delta, g, combine, channel_mode):
    """The VersatileShape a weight of shape (P, c or ĉ, d, d) implies; it must be consistent."""
    checks.array(weight, "weight", 4, "(P, in_channels or ĉ, d, d)")
    p, _, kh, kw = weight.shape
    if kh != kw:
        raise ValueError(f"weight has shape {weight.shape}: its kernel must be square (d x d), got {kh} x {kw}")
    n = checks.non_negative_int(delta, "delta") // checks.positive_int(g, "g") + 1
    out_channels = p * ((kh + 1) // 2 * n if combine == "concat" else n)
    shape = versatile_shape(in_channels, out_channels, weight.shape[2:], delta, g, combine, channel_mode)
    if weight.shape != shape.weight_shape:
        raise ValueError(f"weight has shape {weight.shape}, expected {shape.weight_shape} for in_channels={in_channels}, "
                         f"delta={delta}, channel_mode={channel_mode!r}")
    return shape, out_channels


def expand_bias(bias, out_channels):
    """The per-output bias: ``bias`` itself (out_channels,), or a shared (P,) bias repeated for every secondary.

    Output o belongs to primary o mod P, so a shared bias (Versatile-Model 3, b_1 = ... = b_s)
    is ``bias[o % P]``.
    """
    if bias is None:
        return bias
    checks.array(bias, "bias", 1, "(out_channels,) or (P,)")
    if not bias.shape[0] or checks.positive_int(out_channels, "out_channels") % bias.shape[0]:
        raise ValueError(f"bias has shape {bias.shape}; its length must divide out_channels={out_channels}")
    if bias.shape[0] == out_channels:
        return bias
    return np.tile(bias, out_channels // bias.shape[0])


def _check_bias(bias, out_channels, primaries):
    if bias is None:
        return
    checks.array(bias, "bias", 1, "(out_channels,) or (P,)")
    if bias.shape[0] not in (out_channels, primaries):
        raise ValueError(f"bias has shape {bias.shape}; it must be ({out_channels},) (one per output channel) "
                         f"or ({primaries},) (shared by the secondaries of each primary filter)")


def reduce_bias_grad(dbias_full, bias):
    """Gradient of a shared bias: the sum over the outputs that use it (the transpose of :func:`expand_bias`)."""
    if bias is None:
        return None
    return dbias_full if bias.shape == dbias_full.shape else dbias_full.reshape(-1, bias.shape[0]).sum(axis=0)


def dense_weight(weight, in_channels, delta=0, g=1, combine="concat", channel_mode="paper"):
    """The explicit secondary filters as one ordinary weight (out_channels, in_channels, d, d).

    Row o = (i*n + j)*P + p is M_i ∘ f_p placed on input channels [j*g, j*g + ĉ) and zero
    elsewhere (Eq. 2, 3 and 8). With ``combine="sum"`` the rows of one channel window are
    added, so row j*P + p is (sum_i M_i) ∘ f_p: Eq. 4 is one convolution with a fixed mask (Eq. 5).
    """
    shape, out_channels = _check_weight(weight, in_channels, delta, g, combine, channel_mode)
    checks.fits_in_memory((out_channels, in_channels, shape.d, shape.d), weight.dtype, "the dense weight",
                          f"weight.shape={weight.shape}, in_channels={in_channels}, delta={delta}, g={g}, "
                          f"combine={combine!r}")
    masks = secondary_masks(shape.d).astype(weight.dtype)
    dense = np.zeros((out_channels, in_channels, shape.d, shape.d), dtype=weight.dtype)
    for i, _, block, inputs, stored in _secondaries(shape, g, combine, channel_mode):
        dense[block, inputs] += masks[i] * weight[:, stored]
    return dense


def _dense_weight_adjoint(ddense, weight_shape, shape, g, combine, channel_mode):
    """Gradient w.r.t. the primaries from the gradient w.r.t. :func:`dense_weight` (its transpose)."""
    masks = secondary_masks(shape.d).astype(ddense.dtype)
    dweight = np.zeros(weight_shape, dtype=ddense.dtype)
    for i, _, block, inputs, stored in _secondaries(shape, g, combine, channel_mode):
        dweight[:, stored] += masks[i] * ddense[block, inputs]
    return dweight


def versatile_conv2d_forward_reference(x, weight, bias=None, stride=1, padding=0, delta=0, g=1,
                                       combine="concat", channel_mode="paper"):
    """Reference forward: one plain convolution with :func:`dense_weight` (shapes as :func:`versatile_conv2d_forward`)."""
    checks.array(x, "x", 4, "(N, C, H, W)")
    shape, out_channels = _check_weight(weight, x.shape[1], delta, g, combine, channel_mode)
    _check_bias(bias, out_channels, shape.primaries)
    dense = dense_weight(weight, x.shape[1], delta, g, combine, channel_mode)
    out, conv_cache = conv2d_forward(x, dense, expand_bias(bias, out_channels), stride, padding)
    return out, (conv_cache, weight.shape, bias, shape, (g, combine, channel_mode))


def versatile_conv2d_backward_reference(dout, cache):
    """Gradients of :func:`versatile_conv2d_forward_reference` -> (dx, dweight, dbias)."""
    conv_cache, weight_shape, bias, shape, (g, combine, channel_mode) = cache
    dx, ddense, dbias_full = conv2d_backward(dout, conv_cache)
    dweight = _dense_weight_adjoint(ddense, weight_shape, shape, g, combine, channel_mode)
    return dx, dweight, reduce_bias_grad(dbias_full, bias)


def _check_memory(x_shape, geometry, dtype, out_channels, shape):
    """The output and one image's largest unfold (OH*OW, d*d*ĉ) must fit (:func:`minilib.im2col.check_memory`)."""
    one, (oh, ow) = min(x_shape[0], 1), geometry[4]    # a chunk holds at least one image
    check_memory(x_shape, geometry, dtype, out_channels=out_channels, padded_images=one,
                 unfolded=(one * oh * ow, shape.d * shape.d * shape.c_hat),
                 unfolded_name="the unfolded rows of one image (OH*OW, d*d*ĉ)")


def check_forward_args(x, weight, bias, stride, padding, delta, g, combine, channel_mode):
    """Validate the arguments of a versatile forward pass; -> (shape, out_channels, geometry, dtype).

    ``shape`` is the :data:`VersatileShape`, ``geometry`` that of
    :func:`minilib.im2col.window_geometry` for the d x d window (every secondary has the same
    output size), ``dtype`` the result type of x and weight. The output and one image's unfold
    must fit in memory. Shared by the cropped and the fast (:mod:`minilib.versatile_fast`) paths.
    """
    checks.array(x, "x", 4, "(N, C, H, W)")
    shape, out_channels = _check_weight(weight, x.shape[1], delta, g, combine, channel_mode)
    _check_bias(bias, out_channels, shape.primaries)
    geometry = window_geometry(x.shape, (shape.d, shape.d), stride, padding)
    dtype = np.result_type(x.dtype, weight.dtype)
    _check_memory(x.shape, geometry, dtype, out_channels, shape)
    return shape, out_channels, geometry, dtype


def _weight_rows(weight, i, stored, d):
    """Secondary i's cropped kernel as rows ((a, b, c), P) matching the channels-last unfold."""
    w = weight[:, stored, i:d - i, i:d - i]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(-1, weight.shape[0])


def versatile_conv2d_forward(
    x, weight, bias=None, stride=1, padding=0, delta=0, g=1, combine="concat",
    channel_mode="paper"
):
    """Versatile convolution, computed as Proposition 1 counts it.

    Shapes: x (N, c, H, W); weight (P, c, d, d) (``channel_mode="paper"``) or
    (P, ĉ, d, d) (``"official"``); bias (out_channels,), (P,) for a shared bias, or None
    -> out (N, out_channels, OH, OW) with out_channels = s*n*P (concat) or n*P (sum) and
    OH = floor((H + 2*padding - d) / stride) + 1, the same for every secondary.

    Secondary i is the cropped (d-2i) x (d-2i) kernel applied to the padded input
    cropped by i on each side; its rows (B*OH*OW, (d-2i)^2 ĉ) come from one
    channels-last unfold.
    Returns ``(out, cache)``.
    """
    shape, out_channels, geometry, dtype = check_forward_args(
        x, weight, bias, stride, padding, delta, g, combine, channel_mode
    )
    _, stride, padding, _, (oh, ow) = geometry
    weight = weight.astype(dtype, copy=False)
    plan = [
        (i, block, inputs, stored, _weight_rows(weight, i, stored, shape.d))
        for i, _, block, inputs, stored in _secondaries(shape, g, combine, channel_mode)
    ]
    x_cl = channels_last(x.astype(dtype, copy=False))
    n_images, p = x.shape[0], shape.primaries
    empty = np.empty if combine == "concat" else np.zeros
    out = empty((n_images, out_channels, oh, ow), dtype=dtype)
    # the largest secondary's rows
    row_length = shape.d * shape.d * shape.c_hat
    chunks = batch_chunks(n_images, oh * ow * row_length * np.dtype(dtype).itemsize)
    # reused by every secondary
    buffer = unfold_buffer(chunks, oh * ow, row_length, dtype)
    for chunk in chunks:
        x_pad = zero_pad(x_cl[chunk], padding)
        for i, block, inputs, _, w_rows in plan:
            k = shape.d - 2 * i
            # (B*OH*OW, k*k*ĉ)
            rows = unfold_rows(
                x_pad[:, i:, i:, inputs], (k, k), stride, (1, 1), (oh, ow), buffer
            )
            # (B, P, OH*OW)
            product = (rows @ w_rows).reshape(-1, oh * ow, p).transpose(0, 2, 1)
            target = out[chunk, block].reshape(-1, p, oh * ow)
            if combine == "concat":
                np.copyto(target, product)
            else:
                # summed secondaries, Wang et al.'s Eq. 4
                target += product
    if bias is not None:
        full_bias = expand_bias(bias.astype(dtype, copy=False), out_channels)
        out += full_bias[:, None, None]
    return out, (x_cl, weight, bias, shape, plan, geometry)


def versatile_conv2d_backward(dout, cache):
    """Gradients of :func:`versatile_conv2d_forward` -> (dx, dweight, dbias) (dbias None without bias).

    For each secondary (i, j) with cropped rows X_ij and output block dY_ij (B*OH*OW, P):
    dW_ij = X_ij^T dY_ij is added into the primary's window [:, channels, i:d-i, i:d-i], and
    dX_ij = dY_ij W_ij^T is folded back into the same cropped region of the padded input
    gradient, so every secondary adds to the primary it came from.
    """
    x_cl, weight, bias, shape, plan, geometry = cache
    _, stride, (ph, pw), _, (oh, ow) = geometry
    n_images, h, w, c = x_cl.shape
    out_channels = max(block.stop for _, block, *_ in plan)
    checks.upstream_gradient(dout, (n_images, out_channels, oh, ow))
    dtype = np.result_type(dout.dtype, x_cl.dtype)
    p, d = shape.primaries, shape.d
    dw_rows = [np.zeros(w_rows.shape, dtype=dtype) for *_, w_rows in plan]
    dx = np.empty((n_images, c, h, w), dtype=dtype)
    row_length = d * d * shape.c_hat
    chunks = batch_chunks(n_images, oh * ow * row_length * np.dtype(dtype).itemsize)
    buffer = unfold_buffer(chunks, oh * ow, row_length, dtype)
    for chunk in chunks:
        x_pad = zero_pad(x_cl[chunk].astype(dtype, copy=False), (ph, pw))
        dx_pad = np.zeros(x_pad.shape, dtype=dtype)
        for (i, block, inputs, _, w_rows), dw in zip(plan, dw_rows):
            k = d - 2 * i
            dy = np.ascontiguousarray(dout[chunk, block].transpose(0, 2, 3, 1), dtype=dtype).reshape(-1, p)
            x_view = x_pad[:, i:, i:, inputs]
            rows = unfold_rows(x_view, (k, k), stride, (1, 1), (oh, ow), buffer)  # unfolded again, as in fastconv
            dw += rows.T @ dy
            w_rows = w_rows.astype(dtype, copy=False)
            # Same row layout as unfold_rows produced (transposed for few channels), so that
            # fold_rows adds long runs.
            drows = dy @ w_rows.T if unfolds_by_row(k, x_view.shape[3]) else (w_rows @ dy.T).T
            fold_rows(drows, x_view.shape, (k, k), stride, (1, 1), (oh, ow), out=dx_pad[:, i:, i:, inputs])
        dx[chunk] = dx_pad[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    dweight = np.zeros(weight.shape, dtype=dtype)
    for (i, _, _, stored, _), dw in zip(plan, dw_rows):
        k = d - 2 * i
        dweight[:, stored, i:d - i, i:d - i] += dw.reshape(k, k, -1, p).transpose(3, 2, 0, 1)
    dbias = None if bias is None else reduce_bias_grad(dout.sum(axis=(0, 2, 3), dtype=dtype), bias)
    return dx, dweight, dbias


# What the fast forward pass keeps for its backward pass: ``kind`` is "concat" or "sum"; ``x`` the
# input in the computation's dtype (concat: x itself when it already has that dtype, as the naive
# convolution keeps it; each pass copies it channels-last chunk by chunk; None for sum, whose
# ``parts`` are the channel windows' conv2d_forward_fast caches and the mask sum of Eq. 5).
FastCache = namedtuple("FastCache", "kind x_shape x weight bias shape windows geometry parts")


def versatile_conv2d_forward_fast(x, weight, bias=None, stride=1, padding=0, delta=0, g=1, combine="concat",
                                  channel_mode="paper"):
    """:func:`versatile_conv2d_forward`, organised for speed; same arguments, shapes and result.
    Returns ``(out, cache)``; :class:`VersatileConv2d` runs it.

    ``combine="concat"``: :func:`minilib.versatile_fast.forward_rings`, one unfold per chunk and
    channel window with the taps ordered ring by ring, one GEMM per ring. ``"sum"``: Eq. 5, one
    :func:`minilib.fastconv.conv2d_forward_fast` per channel window with the weight (sum_i M_i) ∘ f.
    """
    shape, out_channels, geometry, dtype = check_forward_args(x, weight, bias, stride, padding, delta, g,
                                                              combine, channel_mode)
    x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    windows = channel_windows(x.shape[1], delta, g, channel_mode)
    full_bias = None if bias is None else expand_bias(bias.astype(dtype, copy=False), out_channels)
    if combine == "sum":
        out, parts = _forward_summed(x, weight, full_bias, shape, windows, geometry)
        return out, FastCache("sum", x.shape, None, weight, bias, shape, windows, geometry, parts)
    out = versatile_fast.forward_rings(x, weight, full_bias, shape, windows, geometry)
    return out, FastCache("concat", x.shape, x, weight, bias, shape, windows, geometry, None)


def _forward_summed(x, weight, full_bias, shape, windows, geometry):
    """Eq. 4 = Eq. 5 per channel window j: out[:, j*P:(j+1)*P] = ((sum_i M_i) ∘ f) * x[:, window j] + b.

    Returns (out, (the windows' conv2d_forward_fast caches, sum_i M_i)).
    """
    _, stride, padding, _, _ = geometry
    mask_sum = secondary_masks(shape.d).sum(axis=0).astype(weight.dtype)
    p, outs, caches = shape.primaries, [], []
    for j, (inputs, stored) in enumerate(windows):
        b_j = None if full_bias is None else full_bias[j * p:(j + 1) * p]
        out_j, cache_j = conv2d_forward_fast(x[:, inputs.start:inputs.stop], weight[:, stored.start:stored.stop]
                                             * mask_sum, b_j, stride, padding)
        outs.append(out_j)
        caches.append(cache_j)
    return (outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)), (caches, mask_sum)


def versatile_conv2d_backward_fast(dout, cache):
    """Gradients of :func:`versatile_conv2d_forward_fast` -> (dx, dweight, dbias) (dbias None without bias).

    ``combine="concat"``: :func:`minilib.versatile_fast.backward_rings` (ring r needs only the
    running sum of its secondaries' output gradients); ``"sum"``: the masked convolutions'
    gradients, dweight = (sum_i M_i) ∘ dW.
    """
    kind, x_shape, x, weight, bias, shape, windows, geometry, parts = cache
    per_primary = shape.s * shape.n if kind == "concat" else shape.n
    checks.upstream_gradient(dout, (x_shape[0], per_primary * shape.primaries) + geometry[4])
    dtype = np.result_type(dout.dtype, weight.dtype)
    if kind == "sum":
        dx, dweight = _backward_summed(dout, x_shape, weight, shape, windows, parts, dtype)
    else:
        dx, dweight = versatile_fast.backward_rings(dout, x.astype(dtype, copy=False),
                                                    weight.astype(dtype, copy=False), shape, windows, geometry)
    dbias = None if bias is None else reduce_bias_grad(dout.sum(axis=(0, 2, 3), dtype=dtype), bias)
    return dx, dweight, dbias


def _backward_summed(dout, x_shape, weight, shape, windows, parts, dtype):
    """(dx, dweight) of :func:`_forward_summed`: overlapping channel windows add up."""
    caches, mask_sum = parts
    p = shape.primaries
    dx = np.zeros(x_shape, dtype=dtype) if len(windows) > 1 else None
    dweight = np.zeros(weight.shape, dtype=dtype)
    for j, ((inputs, stored), cache_j) in enumerate(zip(windows, caches)):
        dx_j, dw_j, _ = conv2d_backward_fast(dout[:, j * p:(j + 1) * p], cache_j)
        dweight[:, stored.start:stored.stop] += dw_j * mask_sum
        if dx is None:
            dx = dx_j
        else:
            dx[:, inputs.start:inputs.stop] += dx_j
    return dx, dweight


def versatile_cost(layer, out_hw) -> dict:
    """Storage and multiplications of a versatile layer for one sample (Proposition 1, Eq. 6-7).

    ``layer`` is a :class:`VersatileConv2d` or its torch twin (the same attributes), ``out_hw``
    its output size (OH, OW). Multiplications count only the nonzero taps of each secondary on
    its ĉ channels: sum_i (d - 2i)^2 * ĉ * n * P * OH*OW for ``combine="concat"``; for ``"sum"``
    the secondaries collapse into one filter with d^2 taps (Eq. 5), as the paper counts Versatile-Model 1.
    Returns ``conv_weights`` (stored filter weights), ``mask_bits`` (0), ``params`` (weights + biases), ``flops``.
    """
    shape = versatile_shape(layer.in_channels, layer.out_channels, layer.kernel_size, layer.delta, layer.g,
                            layer.combine, layer.channel_mode)
    d, s, n, c_hat, p, weight_shape = shape
    taps = d * d if layer.combine == "sum" else sum((d - 2 * i) ** 2 for i in range(s))
    weights = int(np.prod(weight_shape))
    biases = 0 if layer.bias is None else (p if layer.shared_bias else layer.out_channels)
    return {"conv_weights": weights, "mask_bits": 0, "params": weights + biases,
            "flops": taps * c_hat * n * p * int(out_hw[0]) * int(out_hw[1])}


class VersatileConv2d(Module):
    """Spatial (Eq. 3) and channel (Eq. 8) versatile convolution; a drop-in for :class:`minilib.layers.Conv2d`.

    It computes with :func:`versatile_conv2d_forward_fast` / :func:`versatile_conv2d_backward_fast`
    (the numbers of :func:`versatile_conv2d_forward`, organised for speed).

    ``out_channels`` counts OUTPUT channels; the layer stores P = out_channels / (s*n) primary
    filters (out_channels / n with ``combine="sum"``), s = ceil(d/2), n = delta/g + 1.
    Params: ``weight`` (P, in_channels, d, d) (``channel_mode="paper"``) or (P, ĉ, d, d)
    (``"official"``), and ``bias``: one per output channel, or with ``shared_bias=True`` one per
    primary filter, shared by all of its secondaries (Versatile-Model 3). The PyTorch twin
    ``minilib.torch.VersatileConv2d`` takes the same arguments and names its parameters alike.
    Initialised like ``torch.nn.Conv2d``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1]*d*d.
    ``bias`` and ``shared_bias`` are bools; ``rng`` a ``numpy.random.Generator``, an int seed or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, delta=0, g=1,
                 shared_bias=False, combine="concat", channel_mode="paper", rng=None):
        super().__init__()
        shape = versatile_shape(in_channels, out_channels, kernel_size, delta, g, combine, channel_mode)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, shape.d
        self.stride = checks.positive_pair(stride, "stride")
        self.padding = checks.non_negative_pair(padding, "padding")
        self.delta, self.g, self.combine, self.channel_mode = delta, g, combine, channel_mode
        bias = checks.flag(bias, "bias")
        self.shared_bias = checks.flag(shared_bias, "shared_bias")
        self.s, self.n, self.c_hat, self.primaries = shape.s, shape.n, shape.c_hat, shape.primaries
        rng = checks.rng(rng)
        check_parameters("VersatileConv2d", [("weight", shape.weight_shape), ("bias", (out_channels,))],
                         f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={kernel_size!r}")
        bound = 1.0 / np.sqrt(shape.weight_shape[1] * shape.d * shape.d)
        params = {"weight": uniform_init(rng, bound, shape.weight_shape)}
        if bias:
            params["bias"] = uniform_init(rng, bound, (shape.primaries if shared_bias else out_channels,))
        self._init_params(params)

    @property
    def weight(self):
        return self.params["weight"]

    @property
    def bias(self):
        return self.params.get("bias")

    def _options(self):
        return dict(stride=self.stride, padding=self.padding, delta=self.delta, g=self.g,
                    combine=self.combine, channel_mode=self.channel_mode)

    def forward(self, x):
        checks.array(x, "x", 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels but the layer expects in_channels={self.in_channels}")
        out, self.cache = versatile_conv2d_forward_fast(x, self.weight, self.bias, **self._options())
        return out

    def backward(self, dout):
        dx, self.grads["weight"], dbias = versatile_conv2d_backward_fast(dout, self._require_cache())
        if dbias is not None:
            self.grads["bias"] = dbias
        return dx

    def cost(self, in_shape, out_shape) -> dict:
        """Per-sample storage and multiplications (see :func:`versatile_cost`)."""
        return versatile_cost(self, out_shape[-2:])

    def __repr__(self):
        return (f"VersatileConv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, delta={self.delta}, "
                f"g={self.g}, shared_bias={self.shared_bias}, combine={self.combine!r}, "
                f"channel_mode={self.channel_mode!r}; P={self.primaries}, s={self.s}, n={self.n})")
