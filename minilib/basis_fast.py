"""Fast filter-basis convolution (Li et al.'s Eq. 11) for stride 1: no k^2*c unfold to feed m columns.

:func:`minilib.basis.basis_conv2d_forward` (what :class:`minilib.basis.BasisConv2d` runs) uses this
module for stride 1 and paddings up to (k-1)/2 (:func:`fast_path_applies`); the readable
:func:`minilib.basis.basis_conv2d_forward_reshaped` computes the same numbers, and the tests hold
both to the dense reference in float64.

Symbols as in the paper: c input and n output channels, k x k kernels (kh x kw), s splits of
p = c/s channels, m basis filters B̄_b of shape (p, k, k), coefficients α (n, s*m).

**Why.** Eq. 11 convolves each split x̄_g with the m basis filters. As an ordinary convolution
(the reshaped version) every pixel of every split is unfolded into k^2*p numbers, k^2*c per
pixel: as much as the dense convolution unfolds, only to feed a product with m (e.g. 14)
columns instead of n (e.g. 64). The unfold, not the arithmetic, then takes the time: the
reshaped Basis-64-14 forward took 0.56-0.83 of the dense time for 0.24 of its multiplications.

**Two routes**, by which side of the basis is smaller (:func:`basis_route`):

* ``"taps"`` (m < p, or a 1x1 kernel; "kn2row"): first the product of every pixel with every
  kernel tap of every basis filter, T = B_r x̄ with B_r (k^2*m, p), ONE matrix product for all
  split images of a chunk; then the k^2 shifted copies of T are summed into the s*m maps (one
  slice add per tap on the flattened planes) and α mixes them (Eq. 11's 1x1 convolution).
  Only k^2*m numbers per pixel and split are written, m/p of the unfold. Backward: dcoeff =
  sum dY maps^T, dmaps = α^T dY; the small dmaps (m channels per split) unfold to D, which
  gives both dx̄ = B_r^T D and dB_r = sum D x̄^T.
* ``"columns"`` (m >= p: many splits): the k^2 shifted copies of every split plane (k^2*p per
  pixel and split, k^2*c per pixel: the unfold, once) feed one product with all splits side by
  side, B_c (m, k^2*p) @ cols, and one more with α. Backward through the dense weight W = α B
  (Eq. 9-10) and :func:`conv2d_backward_taps`: with m >= p the basis saves little arithmetic
  (m/n + m/(p*k^2) = 0.72 at s = 4, 0.94 at s = 8) and its backward products are thin (p = 8
  rows at s = 8), while the dense products are well shaped; dbasis and dcoeff then follow from
  dW by Eq. 10's adjoint (tiny: no pixels involved).

**Shifts without padding.** Planes stay flattened, H*W numbers: tap (i, j) of a stride-1 window
is the offset (i - ph)*W + (j - pw), so a shifted copy is one slice per plane. Rows that leave
the image fall outside the flat range; columns that leave it would wrap into the neighbouring
row, so those few columns are zeroed. Outputs use rows of the input's length W: with padding
(k-1)/2 ('same') that is exactly the output; with less, the last W - OW columns of each row are
junk, cut when the output is written (and zero in the output gradient). Larger paddings and
other strides fall back to the reshaped version.

**Chunks.** A few images at a time (:data:`CHUNK_FACTOR`), so that what one product writes is
still in cache when the next pass reads it; per chunk the planes are copied channel-major,
(channels, images * H*W), because one wide product per chunk uses the second core where one
small product per image barely does.

Measured with ``benchmarks/basis_benchmark.py``'s layers (2-core AVX-512 machine, float32,
batch 64, 2 threads, best of ~300 alternating runs; time / the time of
:func:`minilib.fastconv.conv2d_forward_fast` and ``backward``), forward and forward+backward:
Basis-64-14 0.33 and 0.35 (reshaped 0.72 and 0.56), Basis-128-27 0.31 and 0.31 (0.61, 0.44),
1x1 at s = 2 0.45 and 0.60 (0.69, 0.90), s = 4 0.89 and 0.97 (1.10, 1.44), s = 8 0.95 and 0.99
(1.46, 2.39). "taps" at s = 8 would write 4x the unfold (measured 2.5x the dense forward).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import checks
from .unfold import batch_chunks

# Chunks hold about CHUNK_FACTOR times minilib.unfold.CHUNK_BYTES of their largest array (T, D
# or the unfolded columns). Twice an unfold chunk: here one chunk feeds two or three products
# whose width grows with it, and wider products use the second core better. Measured (2
# threads, forward): factor 1 was 7-12% slower on the benchmark's 3x3 layers, 3 and 4 no faster.
CHUNK_FACTOR = 2


# ----------------------------------------------------------------------------- geometry
def fast_path_applies(kernel, stride, padding) -> bool:
    """Whether this module handles a geometry: stride 1 and padding <= (k-1)/2 per axis, so that
    the output grid fits in the input's (OH <= H, OW <= W) and the centre tap exists."""
    return tuple(stride) == (1, 1) and all(2 * p <= k - 1 for p, k in zip(padding, kernel))


def basis_route(m, p, kernel) -> str:
    """``"taps"`` when the basis has fewer filters than a split has channels (m < p) or the
    kernel is 1x1, else ``"columns"`` (see the module docstring): the route that writes
    k^2*min(m, p) numbers per pixel and split rather than k^2*max(m, p)."""
    return "taps" if m < p or kernel == (1, 1) else "columns"


def tap_offsets(kernel, padding, width):
    """(tap index i*kw + j, flat offset (i - ph)*W + (j - pw), column shift j - pw) of every tap."""
    (kh, kw), (ph, pw) = kernel, padding
    return [(i * kw + j, (i - ph) * width + j - pw, j - pw) for i in range(kh) for j in range(kw)]


def _zero_columns(planes, width, columns):
    """Zero ``columns`` (a slice of range(W)) in every row of flattened planes (..., H*W)."""
    planes.reshape(*planes.shape[:-1], -1, width)[..., columns] = 0


def _wrapping(shift, width):
    """The columns z of a plane read at z + shift that would wrap into the next or previous row."""
    return slice(width - shift, width) if shift > 0 else slice(0, -shift)


def _overlap(offset, l_src, l_out):
    """The positions q in [0, l_out) whose q + offset lies in [0, l_src), as (start, stop) with start <= stop."""
    start = min(max(0, -offset), l_out)
    return start, max(start, min(l_out, l_src - offset))


# ----------------------------------------------------------------------------- shifted copies and sums
def shift_taps(src, kernel, padding, width, out, sign=1, edges_zero=False):
    """The k^2 shifted copies of flattened planes: ``out[t][..., q] = src[..., q + sign*offset_t]``.

    src (..., L_src) and out (k^2, ..., L_out) hold planes flattened with row length W.
    sign = 1 is the unfold of a stride-1 window (tap t of output pixel q); sign = -1 is its
    adjoint's unfold (the gradient a tap sends back to the pixel it read). Reads outside the
    image, rows by the flat range and columns by :func:`_wrapping`, give zeros.
    ``edges_zero``: out is a zero-initialised buffer reused for chunks of the same shape
    (:meth:`Workspace.take`), so the rows outside each tap's range, never written, are still
    zero (saves two passes a tap).
    """
    l_src, l_out = src.shape[-1], out.shape[-1]
    for tap, offset, shift in tap_offsets(kernel, padding, width):
        offset, shift = sign * offset, sign * shift
        dst = out[tap]
        start, stop = _overlap(offset, l_src, l_out)
        dst[..., start:stop] = src[..., start + offset:stop + offset]
        if not edges_zero:
            dst[..., :start] = 0
            dst[..., stop:] = 0
        if shift:
            _zero_columns(dst, width, _wrapping(shift, width))
    return out


def sum_taps(products, kernel, padding, width, out):
    """``out[..., q] = sum_t products[t][..., q + offset_t]`` (kn2row: the k^2 tap products into maps).

    products (k^2, ..., L_in) are changed: the few columns that would wrap into another row
    are zeroed first (no output pixel reads them legitimately). out (..., L_out), L_out <= L_in.
    The centre tap (offset 0, present when padding <= (k-1)/2) initialises out: no zero fill.
    """
    l_in, l_out = products.shape[-1], out.shape[-1]
    taps = sorted(tap_offsets(kernel, padding, width), key=lambda tap: tap[1] != 0)
    centred = taps[0][1] == 0
    if not centred:
        out[...] = 0
    for index, (tap, offset, shift) in enumerate(taps):
        src = products[tap]
        if shift:           # src column z feeds output column z - shift
            _zero_columns(src, width, _wrapping(-shift, width))
        if index == 0 and centred:
            np.copyto(out, src[..., :l_out])
        else:
            start, stop = _overlap(offset, l_in, l_out)
            out[..., start:stop] += src[..., start + offset:stop + offset]
    return out


# ----------------------------------------------------------------------------- helpers of the routes
class Grid(namedtuple("Grid", "kernel padding h w oh ow")):
    """A stride-1 geometry: kernel (kh, kw), padding (ph, pw), input H x W, output OH x OW.

    Planes are flattened with row length W, inputs to ``l_in`` = H*W numbers and outputs to
    ``l_out`` = OH*W (OW <= W: the last W - OW columns of an output row are junk).
    """

    @classmethod
    def of(cls, x_shape, geometry):
        """From x (N, C, H, W) and :func:`minilib.im2col.window_geometry`'s result."""
        kernel, _, padding, _, (oh, ow) = geometry
        return cls(kernel, padding, x_shape[2], x_shape[3], oh, ow)

    @property
    def taps(self):
        return self.kernel[0] * self.kernel[1]

    @property
    def l_in(self):
        return self.h * self.w

    @property
    def l_out(self):
        return self.oh * self.w


class Workspace:
    """Reusable 1-D buffers that every chunk of a batch takes its arrays from.

    Memory that is already mapped and cached: measured about 40% faster than fresh arrays
    for unfolds (:mod:`minilib.unfold`). A buffer taken with ``zeros`` starts zeroed and is
    kept per shape: the parts that no chunk writes (the edges of :func:`shift_taps`) then stay
    zero, also when the image axis is not the first and a smaller last chunk would otherwise
    put its planes elsewhere.
    """

    def __init__(self, dtype):
        self.dtype, self.buffers = dtype, {}

    def take(self, name, shape, zeros=False):
        """An array of ``shape`` from buffer ``name`` (grown when too small)."""
        size = int(np.prod(shape))
        key = (name, tuple(shape)) if zeros else name
        if key not in self.buffers or self.buffers[key].size < size:
            self.buffers[key] = (np.zeros if zeros else np.empty)(size, dtype=self.dtype)
        return self.buffers[key][:size].reshape(shape)


def _chunks(n_images, numbers_per_image, dtype):
    """Batch chunks holding about CHUNK_FACTOR * CHUNK_BYTES of the chunk's largest array
    (``numbers_per_image`` numbers per image)."""
    return batch_chunks(n_images, max(1, numbers_per_image * np.dtype(dtype).itemsize // CHUNK_FACTOR))


def _with_bias(coeff, bias):
    """(n, K) coefficients with the bias as one more column, (n, K + 1); unchanged without bias.

    The maps then get a row of ones, so the 1x1 product adds the bias (no extra pass over the
    output) and, in the backward pass, the same product's gradient gives dbias as its last column.
    """
    return coeff if bias is None else np.concatenate([coeff, bias[:, None]], axis=1)


def _mix(coeff, maps, out, grid):
    """The 1x1 convolution of Eq. 11 into a chunk of the output: out = α maps, one product per image.

    maps (B, K, OH*W) in the order of coeff's K columns (with a row of ones for a bias column);
    out (B, n, OH, OW) a chunk of the result: the products land in it directly when OW = W,
    else their junk columns are cut.
    """
    images, n = out.shape[:2]
    if grid.ow == grid.w:
        np.matmul(coeff, maps, out=out.reshape(images, n, grid.l_out))
    else:
        np.copyto(out, np.matmul(coeff, maps).reshape(images, n, grid.oh, grid.w)[..., :grid.ow])


def _gradient_rows(dout_chunk, grid, work):
    """A chunk of dY (B, n, OH, OW) on rows of length W, (B, n, OH*W): a view when OW = W, else
    a copy whose junk columns are zero (zeroed with the buffer, never written)."""
    images, n = dout_chunk.shape[:2]
    if grid.ow == grid.w:
        return dout_chunk.reshape(images, n, grid.l_out)
    rows = work.take("dy", (images, n, grid.oh, grid.w), zeros=True)
    rows[..., :grid.ow] = dout_chunk
    return rows.reshape(images, n, grid.l_out)


def _channel_major(planes, work, name):
    """(G, C, L) planes copied to (C, G*L): one copy with runs of L, so that a chunk's product
    is ONE matrix product (per-image products barely use the second thread: measured 0.46 of
    the dense forward on Basis-64-14 against 0.38)."""
    g, c, length = planes.shape
    out = work.take(name, (c, g, length))
    np.copyto(out, planes.transpose(1, 0, 2))
    return out.reshape(c, g * length)


def _sum_images(a, b_transposed):
    """sum over the images j of a chunk of a[j] @ b[j]^T: a weight gradient."""
    return np.matmul(a, b_transposed.transpose(0, 2, 1)).sum(axis=0)


# ----------------------------------------------------------------------------- route "taps" (kn2row)
def basis_forward_taps(x, basis, coeff, bias, grid):
    """Eq. 11 as tap products: T = B_r x̄ for all split images of a chunk, the k^2 taps summed into maps, α maps.

    x (N, c, H, W), basis (m, p, kh, kw), coeff (n, s*m), bias (n,) or None, as
    :func:`minilib.basis.basis_conv2d_forward` takes them, all of one dtype; ``grid`` a
    :class:`Grid`. Returns (out, cache); the cache keeps x (no copy) and the maps
    (N, s*m (+1), OH*W), map g*m + b = x̄_g * B̄_b (and a row of ones for the bias), which
    dcoeff needs.
    """
    n_images, c = x.shape[:2]
    (m, p), n, taps = basis.shape[:2], coeff.shape[0], grid.taps
    s, dtype = c // p, x.dtype
    checks.fits_in_memory((n_images, s * m, grid.oh, grid.w), dtype, "the basis responses (N, s*m, OH, W)",
                          f"x.shape={x.shape}, basis.shape={basis.shape}")
    # b_rows[(t, b), ch] = basis[b, ch, i, j]: one product gives every tap of every basis filter
    b_rows = np.ascontiguousarray(basis.transpose(2, 3, 0, 1)).reshape(taps * m, p)
    splits = x.reshape(n_images * s, p, grid.l_in)              # split image j*s + g is x̄_g of image j
    maps = np.empty((n_images, s * m + (bias is not None), grid.l_out), dtype=dtype)
    maps[:, s * m:] = 1                                          # the bias row, if any
    coeff_bias = _with_bias(coeff, bias)
    out = np.empty((n_images, n, grid.oh, grid.ow), dtype=dtype)
    chunks = _chunks(n_images, s * taps * m * grid.l_in, dtype)
    work = Workspace(dtype)
    for chunk in chunks:
        images, rows = chunk.stop - chunk.start, slice(chunk.start * s, chunk.stop * s)
        planes = _channel_major(splits[rows], work, "planes")                   # (p, split images * H*W)
        products = np.matmul(b_rows, planes, out=work.take("products", (taps * m, planes.shape[1])))
        # (t, b, image, g, pixel) summed over t into the maps (image, g, b, pixel)
        split_maps = maps[chunk, :s * m].reshape(images, s, m, grid.l_out).transpose(2, 0, 1, 3)
        sum_taps(products.reshape(taps, m, images, s, grid.l_in), grid.kernel, grid.padding, grid.w, split_maps)
        _mix(coeff_bias, maps[chunk], out[chunk], grid)
    return out, (x, basis, coeff, maps, bias is not None, grid)


def basis_backward_taps(dout, cache):
    """Gradients of :func:`basis_forward_taps` -> (dx, dbasis, dcoeff, dbias) (dbias None without bias).

    Per image dcoeff += dY maps^T (its bias column is dbias) and dmaps = α^T dY; the dmaps
    (m channels per split) unfold to D (k^2*m, split images * H*W) (:func:`shift_taps`,
    sign -1), which gives both dx̄ = B_r^T D and dB_r += D x̄^T: the basis gradient sums over
    all split images, as every split meets the same basis (Eq. 11).
    """
    x, basis, coeff, maps, has_bias, grid = cache
    n_images, c = x.shape[:2]
    (m, p), n, taps = basis.shape[:2], coeff.shape[0], grid.taps
    s, dtype = c // p, np.result_type(dout.dtype, maps.dtype)
    dout, x, maps = (a.astype(dtype, copy=False) for a in (dout, x, maps))
    b_t = np.ascontiguousarray(basis.transpose(1, 2, 3, 0), dtype=dtype).reshape(p, taps * m)   # B_r^T[ch, (t, b)]
    coeff_t = np.ascontiguousarray(coeff.T, dtype=dtype)
    splits = x.reshape(n_images * s, p, grid.l_in)
    dx = np.empty(x.shape, dtype=dtype)
    dx_splits = dx.reshape(n_images * s, p, grid.l_in)
    db_rows = np.zeros((taps * m, p), dtype=dtype)
    dcoeff_bias = np.zeros((n, maps.shape[1]), dtype=dtype)
    chunks = _chunks(n_images, s * taps * m * grid.l_in, dtype)
    work = Workspace(dtype)
    for chunk in chunks:
        images, rows = chunk.stop - chunk.start, slice(chunk.start * s, chunk.stop * s)
        g = images * s
        dy = _gradient_rows(dout[chunk], grid, work)                                 # (B, n, OH*W)
        dcoeff_bias += _sum_images(dy, maps[chunk])
        dmaps = np.matmul(coeff_t, dy, out=work.take("dmaps", (images, s * m, grid.l_out)))   # zero in junk columns
        d = work.take("unfolded", (taps, m, g, grid.l_in), zeros=True)               # (t, b, split image, pixel)
        shift_taps(dmaps.reshape(g, m, grid.l_out).transpose(1, 0, 2), grid.kernel, grid.padding, grid.w, d,
                   sign=-1, edges_zero=True)
        dx_planes = np.matmul(b_t, d.reshape(taps * m, -1), out=work.take("dx", (p, g * grid.l_in)))
        np.copyto(dx_splits[rows], dx_planes.reshape(p, g, grid.l_in).transpose(1, 0, 2))
        db_rows += _sum_images(d.reshape(taps * m, g, grid.l_in).transpose(1, 0, 2), splits[rows])
    dbasis = np.ascontiguousarray(db_rows.reshape(*grid.kernel, m, p).transpose(2, 3, 0, 1))
    dcoeff = np.ascontiguousarray(dcoeff_bias[:, :s * m])
    return dx, dbasis, dcoeff, dcoeff_bias[:, s * m].copy() if has_bias else None


# ----------------------------------------------------------------------------- route "columns"
def basis_forward_columns(x, basis, coeff, bias, grid):
    """Eq. 11 with a chunk unfolded once, all its split planes side by side in one product.

    cols (k^2*p, s*B*OH*W) holds the k^2 shifted copies of every split plane of the chunk,
    columns (g, image, pixel); maps = B_c (m, k^2*p) @ cols then has rows (b, g), which the
    coefficients meet reordered to match (α's column g*m + b moved to b*s + g), in one more
    product for the whole chunk. Arguments as :func:`basis_forward_taps`. The maps stay
    chunk-sized: the backward pass goes through the dense weight and does not need them.
    The cache keeps x, basis and coeff.
    """
    n_images, c = x.shape[:2]
    (m, p), n, taps = basis.shape[:2], coeff.shape[0], grid.taps
    s, dtype = c // p, x.dtype
    b_cols = np.ascontiguousarray(basis.transpose(0, 2, 3, 1)).reshape(m, taps * p)     # B_c[b, (t, ch)]
    coeff_bias = _with_bias(coeff.reshape(n, s, m).transpose(0, 2, 1).reshape(n, m * s), bias)
    splits = x.reshape(n_images, s, p, grid.l_in).transpose(2, 1, 0, 3)               # (p, s, N, H*W) view
    out = np.empty((n_images, n, grid.oh, grid.ow), dtype=dtype)
    chunks = _chunks(n_images, taps * c * grid.l_out, dtype)
    work = Workspace(dtype)
    for chunk in chunks:
        images = chunk.stop - chunk.start
        cols = work.take("cols", (taps, p, s, images, grid.l_out), zeros=True)
        shift_taps(splits[:, :, chunk], grid.kernel, grid.padding, grid.w, cols, edges_zero=True)
        maps = work.take("maps", (coeff_bias.shape[1], images * grid.l_out))
        maps[m * s:] = 1                                                            # the bias row, if any
        np.matmul(b_cols, cols.reshape(taps * p, -1), out=maps[:m * s].reshape(m, -1))
        mixed = np.matmul(coeff_bias, maps, out=work.take("mixed", (n, images, grid.oh, grid.w)).reshape(n, -1))
        np.copyto(out[chunk], mixed.reshape(n, images, grid.oh, grid.w)[..., :grid.ow].transpose(1, 0, 2, 3))
    return out, (x, basis, coeff, bias is not None, grid)


def conv2d_backward_taps(dout, x, weight, grid, with_bias=False):
    """(dx, dweight, dbias) of a stride-1 convolution on a :class:`Grid`, the dense backward in this module's layout.

    dout (N, F, OH, OW), x (N, C, H, W), weight (F, C, kh, kw), of one dtype; dbias (the sums
    of dY, taken chunk by chunk while in cache) only ``with_bias``, else None. dY unfolds to
    D (k^2*F, B*H*W) per chunk (:func:`shift_taps`, sign -1); dx = W_r^T D and dW_r += D x^T
    (the correlation form: no fold). The "columns" route runs it with the dense weight of Eq. 9-10.
    """
    n_images, c = x.shape[:2]
    f, taps, dtype = weight.shape[0], grid.taps, x.dtype
    w_t = np.ascontiguousarray(weight.transpose(1, 2, 3, 0)).reshape(c, taps * f)    # W_r^T[ch, (t, f)]
    planes = x.reshape(n_images, c, grid.l_in)
    dx = np.empty(x.shape, dtype=dtype)
    dw_rows = np.zeros((taps * f, c), dtype=dtype)
    dbias = np.zeros(f, dtype=dtype) if with_bias else None
    chunks = _chunks(n_images, taps * f * grid.l_in, dtype)
    work = Workspace(dtype)
    for chunk in chunks:
        images = chunk.stop - chunk.start
        dy = _gradient_rows(dout[chunk], grid, work)
        if with_bias:
            dbias += dy.sum(axis=(0, 2))                       # junk columns are zero
        d = work.take("unfolded", (taps, f, images, grid.l_in), zeros=True)
        shift_taps(dy.transpose(1, 0, 2), grid.kernel, grid.padding, grid.w, d, sign=-1, edges_zero=True)
        d = d.reshape(taps * f, -1)
        dx_planes = np.matmul(w_t, d, out=work.take("dx", (c, images * grid.l_in)))
        np.copyto(dx[chunk].reshape(images, c, grid.l_in), dx_planes.reshape(c, images, grid.l_in).transpose(1, 0, 2))
        dw_rows += d @ _channel_major(planes[chunk], work, "planes").T
    return dx, np.ascontiguousarray(dw_rows.reshape(*grid.kernel, f, c).transpose(2, 3, 0, 1)), dbias
