"""Filter basis (Li, Gu, Van Gool and Timofte, ICCV 2019): every split of every filter is a
combination of one small basis.

Symbols as in the paper: a convolution has c input channels, n output channels and k x k
kernels (the paper's w x h; a pair (kh, kw) works alike). Each 3-D filter W_i (c, k, k) is
cut along its channels into s splits of p = c/s channels (Eq. 9), and each split is a
combination of the same m basis filters B̄_b of shape (p, k, k) (Eq. 10):

    W_i = [W̄_{i,1}; ...; W̄_{i,s}],        W̄_{i,g} = sum_b α_{b,i,g} B̄_b.

By linearity (Eq. 11), x * W_i = sum_g sum_b α_{b,i,g} (x̄_g * B̄_b): every channel split x̄_g
of the input is convolved with the same basis, and a 1x1 convolution with the coefficients
mixes the s*m maps into n outputs. Storage falls from n*c*k^2 to m*p*k^2 + n*s*m (Eq. 6).

Layout, as in the released code: the basis is (m, p, kh, kw); the coefficients are the 1x1
convolution stored 2-D, (n, s*m), column g*m + b for split g and basis filter b
(split-major), and the intermediate maps are ordered the same way.

Three implementations of one function:

* :func:`basis_conv2d_forward_reshaped` / :func:`basis_conv2d_backward_reshaped` compute Eq. 11 as
  written: one fast convolution (:mod:`minilib.fastconv`) of the batch reshaped to
  (N*s, p, H, W) with the basis, then a matrix product for the 1x1 convolution;
* :func:`basis_conv2d_forward` / :func:`basis_conv2d_backward`, what :class:`BasisConv2d` runs:
  for stride 1 (and padding up to (k-1)/2) :mod:`minilib.basis_fast`, which avoids the
  reshaped version's unfold of k^2*c numbers per pixel for only m output columns (tap
  products summed into the maps when m < p, one unfold with the splits side by side
  otherwise); for other geometries the reshaped version;
* :func:`basis_conv2d_forward_reference` / :func:`basis_conv2d_backward_reference` build the
  dense weight of Eq. 9-10 (:func:`weight_from_basis`) and run one plain convolution
  (:mod:`minilib.conv`): slow and obviously correct.

Sharing (Sec. 4.2): a :class:`SharedBasis` passed to several layers is one basis for all of
them; a layer with fewer basis channels uses its first p channels (DenseNet, Fig. 3).
Learning (Sec. 4.1): :func:`from_conv` starts from a trained convolution by truncated SVD;
:func:`approximation_penalty` and :class:`ApproximationPenalty` give Eq. 12's term
γ ||W - B A||_F^2, which the released code drops (it trains with the task loss alone).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from . import basis_fast as fast
from . import checks
from .conv import conv2d_backward, conv2d_forward
from .fastconv import conv2d_backward_fast, conv2d_forward_fast
from .im2col import check_memory, window_geometry
from .layers import Module, check_parameters, uniform_init

BasisShape = namedtuple("BasisShape", "c n kernel m p s")
BasisShape.__doc__ = """Sizes of a basis layer: c input and n output channels, kernel (kh, kw),
m basis filters of p channels, s = c/p splits."""


# ----------------------------------------------------------------------------- shapes and checks
def basis_shape(in_channels, out_channels, kernel_size, n_basis, basis_channels) -> BasisShape:
    """Validate a configuration and return its :data:`BasisShape` (s = c/p, Eq. 9).

    ``n_basis`` m may exceed p*kh*kw, the size of one split: the basis is then overcomplete
    (linearly dependent filters, which still train and compute a valid convolution, only with
    more weights than needed). It is allowed, as in the released code; :func:`from_conv`, which
    takes orthonormal filters from an SVD, refuses it.
    """
    c = checks.positive_int(in_channels, "in_channels")
    n = checks.positive_int(out_channels, "out_channels")
    kernel = checks.positive_pair(kernel_size, "kernel_size")
    m = checks.positive_int(n_basis, "n_basis")
    p = checks.positive_int(basis_channels, "basis_channels")
    if c % p:
        raise ValueError(f"basis_channels={p} must divide in_channels={c}: the c input channels are cut into "
                         f"s = c/p splits of p channels each (Eq. 9)")
    return BasisShape(c, n, kernel, m, p, c // p)


def _check_basis_coeff(basis, coeff, in_channels, name=""):
    """s and m implied by basis (m, p, kh, kw) and coeff (n, s*m) for ``in_channels`` = c."""
    checks.array(basis, "basis", 4, "(m, p, kh, kw)")
    checks.array(coeff, "coeff", 2, "(n, s*m)")
    m, p = basis.shape[:2]
    if in_channels % p:
        raise ValueError(f"{name}has {in_channels} input channels, which basis_channels p={p} (basis.shape[1]) must "
                         f"divide: the channels are cut into s = c/p splits (Eq. 9)")
    s = in_channels // p
    if coeff.shape[1] != s * m:
        raise ValueError(f"coeff has shape {coeff.shape}; it needs s*m={s * m} columns (s=c/p={s} splits x m={m} "
                         f"basis filters), i.e. shape ({coeff.shape[0]}, {s * m})")
    return s, m


def _check_forward_args(x, basis, coeff, bias):
    checks.array(x, "x", 4, "(N, c, H, W)")
    s, m = _check_basis_coeff(basis, coeff, x.shape[1], "x ")
    if bias is not None:
        checks.array(bias, "bias", 1, "(n,)")
        if bias.shape[0] != coeff.shape[0]:
            raise ValueError(f"bias has shape {bias.shape} but coeff has n={coeff.shape[0]} rows; "
                             f"bias must have shape ({coeff.shape[0]},)")
    return s, m


# ----------------------------------------------------------------------------- Eq. 9-10: the dense weight
def weight_from_basis(basis, coeff):
    """The dense weight W (n, s*p, kh, kw) of Eq. 9-10: W[i, g*p:(g+1)*p] = sum_b coeff[i, g*m + b] * basis[b].

    basis (m, p, kh, kw), coeff (n, s*m); s = coeff.shape[1] / m.
    """
    checks.array(basis, "basis", 4, "(m, p, kh, kw)")
    checks.array(coeff, "coeff", 2, "(n, s*m)")
    m, p, kh, kw = basis.shape
    if coeff.shape[1] % m:
        raise ValueError(f"coeff has shape {coeff.shape}; its columns must be s*m, a multiple of m={m}")
    n, s = coeff.shape[0], coeff.shape[1] // m
    checks.fits_in_memory((n, s * p, kh, kw), np.result_type(basis.dtype, coeff.dtype),
                          "the dense weight (n, c, kh, kw)",
                          f"basis.shape={basis.shape}, coeff.shape={coeff.shape}")
    splits = np.tensordot(coeff.reshape(n, s, m), basis, axes=([2], [0]))       # (n, s, p, kh, kw): W̄_{i,g}
    return splits.reshape(n, s * p, kh, kw)


def _weight_from_basis_adjoint(dweight, basis, coeff):
    """(dbasis, dcoeff) from the gradient of :func:`weight_from_basis`'s output (its transpose)."""
    m, p, kh, kw = basis.shape
    n, s = coeff.shape[0], coeff.shape[1] // m
    dsplits = dweight.reshape(n, s, p, kh, kw)
    dbasis = np.tensordot(coeff.reshape(n, s, m), dsplits, axes=([0, 1], [0, 1]))     # sum over the n*s splits
    dcoeff = np.tensordot(dsplits, basis, axes=([2, 3, 4], [1, 2, 3])).reshape(n, s * m)
    return dbasis, dcoeff


def reconstruct_weight(layer):
    """The ordinary convolution weight (n, c, kh, kw) a basis layer computes with (Eq. 9-10).

    ``layer.forward(x)`` equals ``minilib.conv.conv2d_forward(x, W, layer.bias, layer.stride,
    layer.padding)`` with this W; a layer on a wider shared basis uses its first p channels.
    """
    return weight_from_basis(layer.layer_basis(), layer.coeff)


# ----------------------------------------------------------------------------- Eq. 11: fast, readable, reference
def basis_conv2d_forward(x, basis, coeff, bias=None, stride=1, padding=0):
    """Basis convolution (Eq. 11), the fast path that :class:`BasisConv2d` runs; same results as
    :func:`basis_conv2d_forward_reshaped` and :func:`basis_conv2d_forward_reference`.

    Shapes: x (N, c, H, W), basis (m, p, kh, kw), coeff (n, s*m) with s = c/p, column g*m + b
    for split g and basis filter b, bias (n,) or None -> out (N, n, OH, OW). Returns
    ``(out, cache)`` for :func:`basis_conv2d_backward`.

    Stride 1 with padding <= (k-1)/2 (e.g. 'same' or none) runs :mod:`minilib.basis_fast`,
    which never unfolds the input k^2 times to feed only m columns: with m < p (or a 1x1
    kernel) the tap products B_r x̄_g are summed into the maps (route "taps"), otherwise each
    image is unfolded once with its splits side by side (route "columns", whose backward
    goes through the dense weight). Other strides and paddings fall back to the readable
    :func:`basis_conv2d_forward_reshaped`. The fast path's cache holds x itself, not a copy
    (as :func:`minilib.conv.conv2d_forward_naive`'s does): change x in place only after the backward pass.
    """
    s, _ = _check_forward_args(x, basis, coeff, bias)
    geometry = window_geometry(x.shape, basis.shape[2:], stride, padding)
    kernel, stride, padding = geometry[:3]
    if not fast.fast_path_applies(kernel, stride, padding):
        out, cache = basis_conv2d_forward_reshaped(x, basis, coeff, bias, stride, padding)
        return out, ("reshaped", cache)
    dtype = np.result_type(x.dtype, basis.dtype, coeff.dtype)
    check_memory(x.shape, geometry, dtype, out_channels=coeff.shape[0])
    x = np.ascontiguousarray(x, dtype=dtype)        # the fast path reshapes x and keeps it (no copy if it can)
    basis, coeff = basis.astype(dtype, copy=False), coeff.astype(dtype, copy=False)
    bias = None if bias is None else bias.astype(dtype, copy=False)
    grid = fast.Grid.of(x.shape, geometry)
    route = fast.basis_route(basis.shape[0], basis.shape[1], kernel)
    forward = fast.basis_forward_taps if route == "taps" else fast.basis_forward_columns
    out, cache = forward(x, basis, coeff, bias, grid)
    return out, (route, cache)


def basis_conv2d_backward(dout, cache):
    """Gradients of :func:`basis_conv2d_forward` -> (dx, dbasis, dcoeff, dbias) (dbias None without bias).

    Route "taps": dcoeff = sum dY maps^T, dmaps = α^T dY, and the unfolded dmaps give dx and
    dbasis (:func:`minilib.basis_fast.basis_backward_taps`). Route "columns": the gradients
    of the dense weight W (Eq. 9-10) by :func:`minilib.basis_fast.conv2d_backward_taps`, taken
    back to basis and coefficients by Eq. 10's adjoint (every split adds to the one basis).
    """
    route, inner = cache
    if route == "reshaped":
        return basis_conv2d_backward_reshaped(dout, inner)
    x, coeff, grid = inner[0], inner[2], inner[-1]
    checks.upstream_gradient(dout, (x.shape[0], coeff.shape[0], grid.oh, grid.ow))
    if route == "taps":
        return fast.basis_backward_taps(dout, inner)
    x, basis, coeff, has_bias, grid = inner
    dtype = np.result_type(dout.dtype, x.dtype)
    weight = weight_from_basis(basis, coeff).astype(dtype, copy=False)
    dx, dweight, dbias = fast.conv2d_backward_taps(dout.astype(dtype, copy=False), x.astype(dtype, copy=False),
                                                   weight, grid, has_bias)
    dbasis, dcoeff = _weight_from_basis_adjoint(dweight, basis, coeff)
    return dx, dbasis, dcoeff, dbias


def basis_conv2d_forward_reshaped(x, basis, coeff, bias=None, stride=1, padding=0):
    """Basis convolution as Eq. 11 computes it: split, convolve with the basis, mix by 1x1 (readable).

    Shapes: x (N, c, H, W), basis (m, p, kh, kw), coeff (n, s*m) with s = c/p, bias (n,) or
    None -> out (N, n, OH, OW), OH = floor((H + 2*ph - kh) / sh) + 1, likewise OW.

    x is reshaped to (N*s, p, H, W) (image j*s + g is split x̄_g of image j), convolved with the
    basis (no bias) to (N*s, m, OH, OW) = (N, s*m, OH, OW), map g*m + b = x̄_g * B̄_b, and
    out[j, i] = sum_{g,b} coeff[i, g*m + b] * map[j, g*m + b] + bias[i] (a 1x1 convolution).
    Returns ``(out, cache)``.
    """
    s, m = _check_forward_args(x, basis, coeff, bias)
    n_images, c, h, w = x.shape
    geometry = window_geometry(x.shape, basis.shape[2:], stride, padding)
    check_memory(x.shape, geometry, np.result_type(x.dtype, basis.dtype, coeff.dtype), out_channels=coeff.shape[0])
    maps, conv_cache = conv2d_forward_fast(x.reshape(n_images * s, c // s, h, w), basis, None, stride, padding)
    oh, ow = maps.shape[2:]
    maps = maps.reshape(n_images, s * m, oh * ow)
    dtype = np.result_type(maps.dtype, coeff.dtype)
    out = np.matmul(coeff.astype(dtype, copy=False), maps)                       # (N, n, OH*OW)
    if bias is not None:
        out += bias.astype(dtype, copy=False)[:, None]
    return out.reshape(n_images, coeff.shape[0], oh, ow), (maps, coeff, bias is not None, conv_cache, (s, m, oh, ow))


def basis_conv2d_backward_reshaped(dout, cache):
    """Gradients of :func:`basis_conv2d_forward_reshaped` -> (dx, dbasis, dcoeff, dbias) (dbias None without bias).

    With maps Z (N, s*m, OH*OW) and dY = dout (N, n, OH*OW): dcoeff = sum over images and
    pixels of dY Z^T, dZ = coeff^T dY; dZ reshaped to (N*s, m, OH, OW) goes back through the
    basis convolution, whose weight gradient sums over the N*s split images: every split
    adds to the one basis (Eq. 11).
    """
    maps, coeff, has_bias, conv_cache, (s, m, oh, ow) = cache
    n_images = maps.shape[0]
    checks.upstream_gradient(dout, (n_images, coeff.shape[0], oh, ow))
    dtype = np.result_type(dout.dtype, maps.dtype)
    dy = dout.reshape(n_images, coeff.shape[0], oh * ow).astype(dtype, copy=False)
    dcoeff = np.tensordot(dy, maps, axes=([0, 2], [0, 2]))                        # (n, s*m)
    dmaps = np.matmul(coeff.T.astype(dtype, copy=False), dy)                       # (N, s*m, OH*OW)
    dx_splits, dbasis, _ = conv2d_backward_fast(dmaps.reshape(n_images * s, m, oh, ow), conv_cache)
    dx = dx_splits.reshape(n_images, s * dx_splits.shape[1], *dx_splits.shape[2:])  # not -1: N may be 0
    dbias = dout.sum(axis=(0, 2, 3), dtype=dtype) if has_bias else None
    return dx, dbasis, dcoeff, dbias


def basis_conv2d_forward_reference(x, basis, coeff, bias=None, stride=1, padding=0):
    """Reference forward: one plain convolution with the dense weight of Eq. 9-10 (shapes as the fast one)."""
    _check_forward_args(x, basis, coeff, bias)
    out, conv_cache = conv2d_forward(x, weight_from_basis(basis, coeff), bias, stride, padding)
    return out, (conv_cache, basis, coeff)


def basis_conv2d_backward_reference(dout, cache):
    """Gradients of :func:`basis_conv2d_forward_reference` -> (dx, dbasis, dcoeff, dbias)."""
    conv_cache, basis, coeff = cache
    dx, dweight, dbias = conv2d_backward(dout, conv_cache)
    dbasis, dcoeff = _weight_from_basis_adjoint(dweight, basis, coeff)
    return dx, dbasis, dcoeff, dbias


# ----------------------------------------------------------------------------- Sec. 4.1: SVD start and Eq. 12
def _check_decomposition(weight, basis, coeff):
    checks.array(weight, "weight", 4, "(n, c, kh, kw)")
    _check_basis_coeff(basis, coeff, weight.shape[1], "weight ")
    if basis.shape[2:] != weight.shape[2:] or coeff.shape[0] != weight.shape[0]:
        raise ValueError(f"basis {basis.shape} and coeff {coeff.shape} do not fit weight {weight.shape}: "
                         f"the kernels (kh, kw) and the n rows of coeff must match the weight's")


def split_matrix(weight, splits):
    """The n*s filter splits W̄_{i,g} (Eq. 9) as the rows of one matrix (n*s, p*kh*kw), row i*s + g.

    This is the matrix a basis of split elements factorises: s = 1 stacks whole filters (Fig. 1
    left, Eq. 4), s = c single-channel kernels (Fig. 1 right, Eq. 5).
    """
    checks.array(weight, "weight", 4, "(n, c, kh, kw)")
    n, c, kh, kw = weight.shape
    _, s, p = _splits(c, splits)
    return weight.reshape(n * s, p * kh * kw)


def from_conv(weight, n_basis, basis_channels):
    """A basis and coefficients that approximate a trained weight best: (basis, coeff).

    weight (n, c, kh, kw) -> basis (m, p, kh, kw), coeff (n, s*m), s = c/p. The n*s splits
    W̄_{i,g} (Eq. 9) are the rows of R (n*s, p*kh*kw), row i*s + g; the truncated SVD
    R = U Σ V^T gives basis = the first m rows of V^T and the coefficients U_m Σ_m, which
    minimise ||W - B A||_F over all rank-m factorizations (Eckart-Young). The error is zero
    when m >= rank(R), e.g. m = min(n*s, p*kh*kw); for m above n*s the extra basis filters
    are further orthonormal directions with zero coefficients (they still learn).
    """
    checks.array(weight, "weight", 4, "(n, c, kh, kw)")
    n, c, kh, kw = weight.shape
    shape = basis_shape(c, n, (kh, kw), n_basis, basis_channels)
    m, p, s = shape.m, shape.p, shape.s
    if m > p * kh * kw:
        raise ValueError(f"n_basis={m} must be <= p*kh*kw={p * kh * kw}: from_conv takes orthonormal basis filters "
                         f"from the SVD, and a split has only p*kh*kw entries")
    splits = split_matrix(weight, s)
    u, sigma, vt = np.linalg.svd(splits, full_matrices=m > min(splits.shape))
    rank = min(m, sigma.size)
    coeff = np.zeros((n * s, m), dtype=splits.dtype)
    coeff[:, :rank] = u[:, :rank] * sigma[:rank]
    # row i*s + g of coeff holds α_{.,i,g}: reshaped to (n, s*m) it is column g*m + b, split-major
    return np.ascontiguousarray(vt[:m].reshape(m, p, kh, kw)), coeff.reshape(n, s * m)


def approximation_error(weight, basis, coeff) -> float:
    """Relative Frobenius error ||W - B A||_F / ||W||_F of a basis approximation (Eq. 9-10)."""
    _check_decomposition(weight, basis, coeff)
    norm = np.linalg.norm(weight)
    if norm == 0:
        raise ValueError("weight is all zeros: the relative approximation error is undefined")
    return float(np.linalg.norm(weight - weight_from_basis(basis, coeff)) / norm)


def neighbour_correlation(kernels) -> float:
    """How smooth a set of kernels ``(..., kh, kw)`` is: the correlation of every weight with its right-hand
    neighbour, pooled over all kernels. About 0 for independent noise, near 1 for smooth patterns, negative for
    patterns that alternate in sign; chapter 6 uses it to tell the leading basis elements from the trailing ones."""
    kernels = np.asarray(kernels, dtype=np.float64)
    if kernels.ndim < 2 or kernels.shape[-1] < 2 or kernels[..., :-1].size < 2:
        raise ValueError(f"kernels must have shape (..., kh, kw) with kw >= 2 and at least two neighbour pairs, "
                         f"got shape {kernels.shape}")
    left, right = kernels[..., :-1].ravel(), kernels[..., 1:].ravel()
    if left.std() == 0 or right.std() == 0:
        raise ValueError("kernels are constant along their rows: the neighbour correlation is undefined")
    return float(np.corrcoef(left, right)[0, 1])


def approximation_penalty(weight, basis, coeff):
    """Eq. 12's approximation term ||W - B A||_F^2 and its exact gradients -> (value, dbasis, dcoeff).

    weight (n, c, kh, kw) is the original filter W^l (fixed); basis (m, p, kh, kw) and coeff
    (n, s*m) are learned. With R = Ŵ - W (Ŵ from :func:`weight_from_basis`), d value / dŴ = 2R,
    taken back through Eq. 10: dbasis[b] = sum_{i,g} α_{b,i,g} 2R̄_{i,g}, dcoeff[i, g*m+b] = <2R̄_{i,g}, B̄_b>.
    """
    _check_decomposition(weight, basis, coeff)
    residual = weight_from_basis(basis, coeff) - weight
    dbasis, dcoeff = _weight_from_basis_adjoint(2.0 * residual, basis, coeff)
    return float(np.vdot(residual, residual)), dbasis, dcoeff


class ApproximationPenalty:
    """γ sum_l ||W^l - B^l A^l||_F^2, the second term of Eq. 12, as ``fit(..., regularizer=...)``.

    ``targets``: pairs (layer, W^l) of a :class:`BasisConv2d` and the original filters it
    approximates (e.g. the trained ``Conv2d`` weight that :func:`from_conv` started from; a
    copy is kept). Calling the object adds γ times the gradients into the layers' ``grads``
    (a shared basis receives every layer's share, in its slice) and returns the value.
    Call it after the backward pass: layers overwrite their own gradients there.

    The released code drops this term and trains basis and coefficients with the task loss
    alone; ``gamma=0`` is that choice.
    """

    def __init__(self, targets, gamma):
        self.gamma = checks.non_negative_number(gamma, "gamma")
        self.targets = []
        for i, (layer, weight) in enumerate(targets):
            if not isinstance(layer, BasisConv2d):
                raise TypeError(f"targets[{i}] must pair a BasisConv2d with its weight, got {type(layer).__name__}")
            checks.array(weight, f"targets[{i}] weight", 4, "(n, c, kh, kw)")
            expected = (layer.out_channels, layer.in_channels, *layer.kernel_size)
            if weight.shape != expected:
                raise ValueError(f"targets[{i}] weight has shape {weight.shape}; its layer needs {expected}")
            self.targets.append((layer, np.array(weight, copy=True)))

    def value(self) -> float:
        """γ sum_l ||W^l - B^l A^l||_F^2 without touching any gradient."""
        return self.gamma * sum(approximation_penalty(w, layer.layer_basis(), layer.coeff)[0]
                                for layer, w in self.targets)

    def __call__(self) -> float:
        total = 0.0
        for layer, weight in self.targets:
            value, dbasis, dcoeff = approximation_penalty(weight, layer.layer_basis(), layer.coeff)
            total += value
            layer.add_basis_gradient(self.gamma * dbasis)
            layer.grads["coeff"] += self.gamma * dcoeff
        return self.gamma * total


# ----------------------------------------------------------------------------- Eq. 4-7 and 11: costs
def _splits(c, s):
    c, s = checks.positive_int(c, "c"), checks.positive_int(s, "s")
    if c % s:
        raise ValueError(f"s={s} must divide c={c}: the c channels are cut into s splits of p = c/s (Eq. 6)")
    return c, s, c // s


def compression_rate(c, n, k, m, s) -> float:
    """Stored weights relative to the original convolution, Li et al.'s Eq. 6:

        (m*p*k^2 + m*n*s) / (n*c*k^2) = m/(n*s) + m/(p*k^2),    p = c/s.

    s = 1 is their Eq. 4 (m basis filters of the whole c x k x k filter, Fig. 1 left);
    s = c is their Eq. 5 (2-D channel-wise basis, Fig. 1 right). ``k`` is an int or a
    pair (kh, kw) (the paper's w x h). Biases are not counted.
    """
    c, s, p = _splits(c, s)
    n, m = checks.positive_int(n, "n"), checks.positive_int(m, "m")
    taps = math.prod(checks.positive_pair(k, "k"))
    return (m * p * taps + m * n * s) / (n * c * taps)


def optimal_splits(c, n, k) -> int:
    """The number of splits s that Eq. 7 recommends for a c -> n convolution with k x k kernels.

    Minimising Eq. 6 over real s with c = s*p gives s* = sqrt(c*k^2/n), p* = sqrt(n*c/k^2)
    (independent of m). As the paper says, p is then quantised to the divisor of c nearest
    p* (a tie goes to the lower rate); the result is s = c/p. The nearest p need not be the
    divisor with the lowest rate (Eq. 6 is not symmetric around p*): :func:`compression_rate`
    over the divisors of c gives that one.
    """
    c, n = checks.positive_int(c, "c"), checks.positive_int(n, "n")
    taps = math.prod(checks.positive_pair(k, "k"))
    p_star = math.sqrt(n * c / taps)
    divisors = [p for p in range(1, c + 1) if c % p == 0]
    p = min(divisors, key=lambda p: (abs(p - p_star), compression_rate(c, n, k, 1, c // p)))
    return c // p


def basis_flops(c, n, k, m, s, out_hw) -> dict:
    """Multiplications of one sample, Eq. 11 computed as two convolutions:

    * ``basis``: each of the s splits meets m basis filters of p*k^2 taps at OH*OW pixels,
      m*p*k^2*s*OH*OW = m*c*k^2*OH*OW;
    * ``coefficients``: the 1x1 convolution, n*s*m*OH*OW;
    * ``total`` (their sum) and ``original``, the plain convolution's n*c*k^2*OH*OW.

    total / original = m/n + m/(p*k^2): unlike storage (Eq. 6), the first term does not
    shrink with s. ``k`` and ``out_hw`` are ints or pairs.
    """
    c, s, p = _splits(c, s)
    n, m = checks.positive_int(n, "n"), checks.positive_int(m, "m")
    taps = math.prod(checks.positive_pair(k, "k"))
    pixels = math.prod(checks.positive_pair(out_hw, "out_hw"))
    basis, coefficients = m * p * taps * s * pixels, n * s * m * pixels
    return {"basis": basis, "coefficients": coefficients, "total": basis + coefficients,
            "original": n * c * taps * pixels}


def basis_cost(layer, out_hw) -> dict:
    """Storage and multiplications of one basis layer for one sample (Eq. 6 and 11).

    ``layer`` is a :class:`BasisConv2d` or its torch twin (attributes in_channels,
    out_channels, kernel_size, n_basis, basis_channels, splits, basis, bias).
    ``conv_weights`` = the stored basis (m*p*kh*kw; all m*p'*kh*kw entries of a wider shared
    basis) + n*s*m coefficients; ``params`` adds the n biases; ``flops`` from :func:`basis_flops`.
    The basis is also listed under ``shared`` (owner: the basis array itself), so that
    :func:`minilib.accounting.summarize` counts a basis shared by several layers once.
    """
    m, s, n = layer.n_basis, layer.splits, layer.out_channels
    stored = math.prod(tuple(layer.basis.shape))
    weights = stored + n * s * m
    return {"conv_weights": weights, "mask_bits": 0, "params": weights + (0 if layer.bias is None else n),
            "flops": basis_flops(layer.in_channels, n, layer.kernel_size, m, s, out_hw)["total"],
            "shared": [(layer.basis, stored, stored)]}


# ----------------------------------------------------------------------------- layers
def configure_layer(layer, in_channels, out_channels, kernel_size, n_basis, basis_channels, stride, padding):
    """Validate a basis layer's arguments and set the attributes the NumPy layer and its torch twin share
    (in_channels, out_channels, kernel_size, n_basis, basis_channels, splits, stride, padding); returns the shape."""
    shape = basis_shape(in_channels, out_channels, kernel_size, n_basis, basis_channels)
    layer.in_channels, layer.out_channels, layer.kernel_size = shape.c, shape.n, shape.kernel
    layer.n_basis, layer.basis_channels, layer.splits = shape.m, shape.p, shape.s
    layer.stride = checks.positive_pair(stride, "stride")
    layer.padding = checks.non_negative_pair(padding, "padding")
    return shape


class SharedBasis(Module):
    """One filter basis for several :class:`BasisConv2d` layers (Sec. 4.2); param ``basis`` (m, p, kh, kw).

    Pass ``basis=shared`` to each layer: every layer then holds the same basis array and the
    same gradient array under ``"basis"`` in its own ``params`` and ``grads`` (as torch
    registers a shared ``Parameter`` in every module that uses it, so ``state_dict`` lists
    it under each layer's name). Each layer's backward pass adds its share into that one
    gradient (zero it between steps, as ``fit`` and ``Optimizer.zero_grad`` do), the
    optimisers update it once, ``num_parameters`` and ``summarize`` count it once. A layer
    whose basis_channels p' is smaller than p uses the first p' channels (DenseNet, Fig. 3).
    This object is only the handle the layers take the arrays from: ``model.astype`` converts
    the layers' arrays (together), so afterwards read the basis from a layer.
    Initialised like ``torch.nn.Conv2d`` with fan_in = p*kh*kw.
    """

    def __init__(self, n_basis, basis_channels, kernel_size, rng=None):
        super().__init__()
        self.n_basis = checks.positive_int(n_basis, "n_basis")
        self.basis_channels = checks.positive_int(basis_channels, "basis_channels")
        self.kernel_size = checks.positive_pair(kernel_size, "kernel_size")
        rng = checks.rng(rng)
        shape = (self.n_basis, self.basis_channels, *self.kernel_size)
        check_parameters("SharedBasis", [("basis", shape)], f"n_basis={n_basis}, basis_channels={basis_channels}, "
                                                            f"kernel_size={self.kernel_size}")
        self._init_params({"basis": uniform_init(rng, 1.0 / math.sqrt(math.prod(shape[1:])), shape)})

    @property
    def basis(self):
        return self.params["basis"]

    def forward(self, x):
        raise TypeError("SharedBasis only holds a basis; pass it to BasisConv2d(..., basis=shared) and call the layers")

    def backward(self, dout):
        return self.forward(dout)

    def __repr__(self):
        return (f"SharedBasis(n_basis={self.n_basis}, basis_channels={self.basis_channels}, "
                f"kernel_size={self.kernel_size})")


class BasisConv2d(Module):
    """A c -> n convolution whose n*s filter splits combine m basis filters (Eq. 9-11); a drop-in for Conv2d.

    Params: ``basis`` (m, p, kh, kw), ``coeff`` (n, s*m), the 1x1 convolution of Eq. 11 with
    column g*m + b for split g and basis filter b, and ``bias`` (n,); s = in_channels /
    basis_channels. No dense weight is stored. With ``basis=shared`` (a :class:`SharedBasis`
    of m filters with p' >= p channels) ``params["basis"]`` is the shared (m, p', kh, kw) array
    and the layer convolves with its first p channels (:meth:`layer_basis`, Fig. 3). The
    properties ``basis``, ``coeff`` and ``bias`` return the arrays (bias None without one).

    Initialised like ``torch.nn.Conv2d`` for each of the two convolutions, drawn from ``rng``
    in the order basis (unless shared), coeff, bias: basis U(±1/sqrt(p*kh*kw)), coeff and bias
    U(±1/sqrt(s*m)). The torch twin ``minilib.torch.BasisConv2d`` takes the same arguments.
    ``bias`` is a bool, ``rng`` a ``numpy.random.Generator``, an int seed or None; ``n_basis`` may
    exceed p*kh*kw (an overcomplete basis, see :func:`basis_shape`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, n_basis, basis_channels, stride=1, padding=0,
                 bias=True, basis=None, rng=None):
        super().__init__()
        shape = configure_layer(self, in_channels, out_channels, kernel_size, n_basis, basis_channels, stride, padding)
        self.owns_basis = basis is None
        if basis is not None:
            _check_shared_basis(basis, shape)
        bias = checks.flag(bias, "bias")
        rng = checks.rng(rng)
        check_parameters("BasisConv2d", [("basis", (shape.m, shape.p, *shape.kernel)),
                                         ("coeff", (shape.n, shape.s * shape.m))],
                         f"in_channels={in_channels}, out_channels={out_channels}, kernel_size={shape.kernel}, "
                         f"n_basis={n_basis}, basis_channels={basis_channels}")
        params = {}
        if basis is None:
            params["basis"] = uniform_init(rng, 1.0 / math.sqrt(shape.p * math.prod(shape.kernel)),
                                           (shape.m, shape.p, *shape.kernel))
        else:
            params["basis"] = basis.params["basis"]
        bound = 1.0 / math.sqrt(shape.s * shape.m)
        params["coeff"] = uniform_init(rng, bound, (shape.n, shape.s * shape.m))
        if bias:
            params["bias"] = uniform_init(rng, bound, (shape.n,))
        self._init_params(params)
        if basis is not None:
            self.grads["basis"] = basis.grads["basis"]      # one gradient array that every user adds into

    @property
    def basis(self):
        return self.params["basis"]

    @property
    def coeff(self):
        return self.params["coeff"]

    @property
    def bias(self):
        return self.params.get("bias")

    def layer_basis(self):
        """(m, p, kh, kw): the basis this layer convolves with; the first p channels of a wider shared one."""
        return self.basis[:, :self.basis_channels]

    def add_basis_gradient(self, dbasis) -> None:
        """Add ``dbasis`` (m, p, kh, kw) into the basis gradient (the first p channels of a shared one), in place."""
        self.grads["basis"][:, :self.basis_channels] += dbasis

    def forward(self, x):
        checks.array(x, "x", 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels but the layer expects in_channels={self.in_channels}")
        out, self.cache = basis_conv2d_forward(x, self.layer_basis(), self.coeff, self.bias, self.stride,
                                                self.padding)
        return out

    def backward(self, dout):
        dx, dbasis, self.grads["coeff"], dbias = basis_conv2d_backward(dout, self._require_cache())
        if self.owns_basis:
            self.grads["basis"] = dbasis
        else:
            self.add_basis_gradient(dbasis)     # a shared basis: every layer using it adds its share
        if dbias is not None:
            self.grads["bias"] = dbias
        return dx

    def cost(self, in_shape, out_shape) -> dict:
        """Per-sample storage and multiplications (see :func:`basis_cost`)."""
        return basis_cost(self, out_shape[-2:])

    def __repr__(self):
        shared = "" if self.owns_basis else f", shared basis {self.basis.shape}"
        return (f"BasisConv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"n_basis={self.n_basis}, basis_channels={self.basis_channels}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}{shared}; s={self.splits})")


def _check_shared_basis(basis, shape):
    if not isinstance(basis, SharedBasis):
        raise TypeError(f"basis must be None or a SharedBasis, got {type(basis).__name__}")
    (kh, kw), found = shape.kernel, basis.params["basis"].shape
    if found[0] != shape.m or found[1] < shape.p or found[2:] != shape.kernel:
        raise ValueError(f"basis has shape {found} but the layer needs (n_basis={shape.m}, basis_channels>={shape.p}, "
                         f"{kh}, {kw}): m filters of at least p channels and the layer's kernel size "
                         f"(Sec. 4.2, Fig. 3)")
