"""im2col / col2im: turn convolution into one matrix product.

For an input ``x`` of shape (N, C, H, W) and a kh x kw kernel, every output position
(n, oh, ow) sees a receptive field of C*kh*kw numbers. ``im2col`` copies each of those
fields into one column of a matrix

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

of shape (C*kh*kw, N*OH*OW). Rows are ordered (c, i, j), the same order as
``w.reshape(F, -1)`` for a PyTorch-layout weight (F, C, kh, kw), so convolution is
``w.reshape(F, -1) @ cols``. Output sizes follow

    OH = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1     (and likewise OW).

``col2im`` is the adjoint (transpose) of ``im2col``: it scatters every column back to
the pixels it was read from, *adding* where receptive fields overlap. That sum is
exactly what the backward pass of convolution needs.
"""
from __future__ import annotations

import numpy as np

from . import checks


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    _check_axis(size, kernel, stride, padding, dilation)
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_axis(size, kernel, stride, padding, dilation):
    """Ints in range, and a (dilated) kernel that fits the padded length."""
    size, kernel = checks.non_negative_int(size, "size"), checks.positive_int(kernel, "kernel")
    checks.positive_int(stride, "stride")
    padding, dilation = checks.non_negative_int(padding, "padding"), checks.positive_int(dilation, "dilation")
    if dilation * (kernel - 1) + 1 > size + 2 * padding:
        raise ValueError(f"kernel={kernel} (span {dilation * (kernel - 1) + 1} with dilation={dilation}) is larger "
                         f"than the padded size {size + 2 * padding} (size={size}, padding={padding})")


def window_geometry(x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Validate a sliding-window configuration and return its geometry.

    Returns ``(kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW)``. Raises ``ValueError``
    naming the argument when the (dilated) kernel does not fit the padded input.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {tuple(x_shape)}")
    kh, kw = checks.positive_pair(kernel_size, "kernel_size")
    sh, sw = checks.positive_pair(stride, "stride")
    ph, pw = checks.non_negative_pair(padding, "padding")
    dh, dw = checks.positive_pair(dilation, "dilation")
    _, _, h, w = x_shape
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > h + 2 * ph or span_w > w + 2 * pw:
        raise ValueError(
            f"kernel_size={kernel_size!r} (span {span_h}x{span_w} with dilation={dilation!r}) is larger than "
            f"the padded input {h + 2 * ph}x{w + 2 * pw} (input {h}x{w}, padding={padding!r})"
        )
    out_hw = (conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw))
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), out_hw


def check_memory(x_shape, geometry, dtype, *, out_channels=None, padded_images=None, unfolded=None,
                 unfolded_name="the unfolded matrix"):
    """Refuse up front a call whose output, padded input or unfolded matrix would not fit in memory.

    ``geometry`` is what :func:`window_geometry` returned for ``x_shape`` (N, C, H, W).
    Checked with :func:`minilib.checks.fits_in_memory`, each against :func:`minilib.checks.memory_limit`:
    the output (N, ``out_channels``, OH, OW) when ``out_channels`` is given; the zero-padded
    input of ``padded_images`` images (all N for im2col, one chunk for the fast layers); the
    ``unfolded`` array (a shape: im2col's (C*kh*kw, N*OH*OW), or one chunk's rows). The message
    names the arguments behind the size: a huge padding or a kernel with many taps on a big image.
    """
    (kh, kw), stride, (ph, pw), dilation, (oh, ow) = geometry
    n, c, h, w = x_shape
    cause = (f"x.shape={tuple(x_shape)}, kernel_size=({kh}, {kw}), stride={stride}, padding=({ph}, {pw}), "
             f"dilation={dilation}")
    if out_channels is not None:
        checks.fits_in_memory((n, out_channels, oh, ow), dtype, "the output (N, out_channels, OH, OW)",
                              f"{cause}, out_channels={out_channels}")
    if padded_images is not None and (ph or pw):
        checks.fits_in_memory((padded_images, c, h + 2 * ph, w + 2 * pw), dtype, "the zero-padded input", cause)
    if unfolded is not None:
        checks.fits_in_memory(unfolded, dtype, unfolded_name, cause)


def check_unfold_args(x, kernel_size, stride=1, padding=0, dilation=1):
    """The checks of :func:`im2col`: x a float32/float64 (N, C, H, W) array, a window that fits, and a
    padded input and column matrix (C*kh*kw, N*OH*OW) that fit in memory."""
    checks.array(x, "x", 4, "(N, C, H, W)")
    geometry = window_geometry(x.shape, kernel_size, stride, padding, dilation)
    (kh, kw), _, _, _, (oh, ow) = geometry
    n, c = x.shape[:2]
    check_memory(x.shape, geometry, x.dtype, padded_images=n, unfolded=(c * kh * kw, n * oh * ow),
                 unfolded_name="the column matrix (C*kh*kw, N*OH*OW)")


def check_fold_args(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """The checks of :func:`col2im`: cols a float32/float64 (C*kh*kw, N*OH*OW) array for ``x_shape``, a tuple
    (N, C, H, W) of ints, and a padded result that fits in memory."""
    checks.array(cols, "cols", 2, "(C*kh*kw, N*OH*OW)")
    x_shape = checks.shape_tuple(x_shape, "x_shape", 4, "(N, C, H, W)")
    geometry = window_geometry(x_shape, kernel_size, stride, padding, dilation)
    (kh, kw), _, _, _, (oh, ow) = geometry
    n, c = x_shape[:2]
    if cols.shape != (c * kh * kw, n * oh * ow):
        raise ValueError(f"cols must have shape {(c * kh * kw, n * oh * ow)} for x_shape={tuple(x_shape)}, got {cols.shape}")
    check_memory(x_shape, geometry, cols.dtype, padded_images=n)


def _offset_slices(i, j, stride, dilation, out_hw):
    """Slices of the padded input read by kernel tap (i, j) for every output position."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into ``cols`` (C*kh*kw, N*OH*OW).

    Vectorised over batch and pixels: the only Python loop runs over the kh*kw kernel
    taps, and each tap copies one strided slice of the padded input.
    """
    # x: float (N, C, H, W); the columns must fit in memory
    check_unfold_args(x, kernel_size, stride, padding, dilation)
    (kh, kw), stride, (ph, pw), dilation, (oh, ow) = window_geometry(
        x.shape, kernel_size, stride, padding, dilation
    )
    n, c = x.shape[:2]
    # Batch goes next to the pixels so the columns come out ordered (n, oh, ow). The
    # transpose is only a view: each tap's copy below does the reordering.
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    x_pad = x.transpose(1, 0, 2, 3)
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, stride, dilation, (oh, ow))
            cols[:, i, j] = x_pad[:, :, rows, columns]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(cols: np.ndarray, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Fold ``cols`` (C*kh*kw, N*OH*OW) back into an array of shape ``x_shape`` (N, C, H, W).

    The adjoint of :func:`im2col`: <im2col(x), y> == <x, col2im(y)> for all x, y.
    Overlapping receptive fields are summed.
    """
    check_fold_args(cols, x_shape, kernel_size, stride, padding, dilation)
    (kh, kw), stride, (ph, pw), dilation, (oh, ow) = window_geometry(x_shape, kernel_size, stride, padding, dilation)
    n, c, h, w = x_shape
    taps = cols.reshape(c, kh, kw, n, oh, ow)
    # Accumulate straight into an (N, C, Hp, Wp) buffer through a (C, N, Hp, Wp) view, so the
    # result needs no final transpose copy (and no copy at all without padding).
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    x_pad_cn = x_pad.transpose(1, 0, 2, 3)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, stride, dilation, (oh, ow))
            x_pad_cn[:, :, rows, columns] += taps[:, i, j]
    if ph or pw:
        return np.ascontiguousarray(x_pad[:, :, ph:ph + h, pw:pw + w])
    return x_pad


def im2col_naive(
    x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1
) -> np.ndarray:
    """Reference :func:`im2col` with explicit loops over every index.

    Slow, obviously correct.
    """
    check_unfold_args(x, kernel_size, stride, padding, dilation)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = window_geometry(
        x.shape, kernel_size, stride, padding, dilation
    )
    n, c, h, w = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((c * kh * kw, n * oh * ow), dtype=x.dtype)
    for b in range(n):
        for y in range(oh):
            for xx in range(ow):
                column = (b * oh + y) * ow + xx
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            row = (ch * kh + i) * kw + j
                            pixel = (b, ch, y * sh + i * dh, xx * sw + j * dw)
                            cols[row, column] = x_pad[pixel]
    return cols


def col2im_naive(
    cols: np.ndarray, x_shape, kernel_size, stride=1, padding=0, dilation=1
) -> np.ndarray:
    """Reference :func:`col2im` with explicit loops (slow, obviously correct)."""
    check_fold_args(cols, x_shape, kernel_size, stride, padding, dilation)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = window_geometry(
        x_shape, kernel_size, stride, padding, dilation
    )
    n, c, h, w = x_shape
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for b in range(n):
        for y in range(oh):
            for xx in range(ow):
                column = (b * oh + y) * ow + xx
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            row = (ch * kh + i) * kw + j
                            pixel = (b, ch, y * sh + i * dh, xx * sw + j * dw)
                            x_pad[pixel] += cols[row, column]
    return x_pad[:, :, ph:ph + h, pw:pw + w]
