"""Filter basis (Li et al., ICCV 2019, Eq. 4-12): the NumPy layer, its formulas and basis sharing.

* The fast functions (Eq. 11) against the reference (the dense weight of Eq. 9-10 + one plain
  convolution), in seeded random configurations; the layer against an ordinary convolution
  with ``reconstruct_weight`` and against Eq. 11 written out split by split; centred differences.
* The fast path of :mod:`minilib.basis_fast` (both routes and the fallback) against the
  readable reshaped version and the reference in float64 (s = 1..8, k = 1..5, non-square
  kernels, stride 1-2, padding 0..2, shared bases, empty batches, uneven chunks), float32, and
  its shift helpers against windows of the zero-padded planes.
* Eq. 4-7 and 11: compression rate against a direct parameter count, the two boundary cases,
  the optimal split against a brute-force search over the divisors of c, FLOPs.
* Sec. 4.1: the SVD start (exact at full rank, error falling with m, Eckart-Young) and the
  approximation penalty of Eq. 12 with its gradients, alone and inside ``fit``.
* Sec. 4.2: one basis shared by several layers (gradients add up, one optimiser update,
  counted once by num_parameters and summarize, torch-style state_dict names) and the
  DenseNet slice of Fig. 3.
* Bad input: messages that name the argument and the rule.
"""
import math

import numpy as np
import pytest
import torch.nn.functional as F

import minilib as ml
from minilib import basis as B
from minilib import basis_fast as fast
from minilib.accounting import summarize
from minilib.basis_fast import basis_route, fast_path_applies
from minilib.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive
from minilib.gradcheck import check_layer_gradients, numeric_gradient, rel_error
from minilib.im2col import window_geometry
from minilib.train import fit
from torch_helpers import assert_close, to_torch

N_CASES = 40     # every (k, s) with k = 1..5 and s = 1..4 twice


# ----------------------------------------------------------------------------- configurations
def basis_configs(n=N_CASES, seed=11):
    """Random configurations; k and s cycle so that every pair occurs, m is drawn around n.

    Keys: N, C (= s*p), F (n), H, W, k, s, p, m, stride, padding, bias.
    """
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        k, s = 1 + idx % 5, 1 + (idx // 5) % 4
        p, n_out = int(rng.integers(1, 4)), int(rng.integers(1, 7))
        padding = int(rng.integers(0, k // 2 + 1))
        configs.append(dict(
            N=int(rng.integers(1, 4)), C=s * p, F=n_out, k=k, s=s, p=p,
            m=max(1, n_out + int(rng.integers(-2, 3))),
            H=int(rng.integers(max(1, k - 2 * padding), k + 5)), W=int(rng.integers(max(1, k - 2 * padding), k + 5)),
            stride=int(rng.integers(1, 3)), padding=padding, bias=idx % 3 != 2))
    return configs


CONFIGS = basis_configs()


def config_id(i, cfg):
    return (f"{i}-N{cfg['N']}C{cfg['C']}F{cfg['F']}-{cfg['H']}x{cfg['W']}-k{cfg['k']}-s{cfg['s']}p{cfg['p']}m{cfg['m']}"
            f"-st{cfg['stride']}-pad{cfg['padding']}-{'bias' if cfg['bias'] else 'nobias'}")


def make_layer(cfg, rng, **kw):
    return B.BasisConv2d(cfg["C"], cfg["F"], cfg["k"], cfg["m"], cfg["p"], stride=cfg["stride"],
                         padding=cfg["padding"], bias=cfg["bias"], rng=rng, **kw)


def test_configs_cover_the_cases():
    assert {(c["k"], c["s"]) for c in CONFIGS} == {(k, s) for k in range(1, 6) for s in range(1, 5)}
    assert {c["stride"] for c in CONFIGS} == {1, 2} and {c["bias"] for c in CONFIGS} == {True, False}
    assert {c["padding"] for c in CONFIGS} == {0, 1, 2}
    assert any(c["m"] < c["F"] for c in CONFIGS) and any(c["m"] > c["F"] for c in CONFIGS)


# ----------------------------------------------------------------------------- fast = reference = layer
@pytest.mark.parametrize("idx", range(N_CASES), ids=[config_id(i, c) for i, c in enumerate(CONFIGS)])
def test_fast_and_reference_agree(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(200 + idx)
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    args = (layer.basis, layer.coeff, layer.bias, cfg["stride"], cfg["padding"])
    out, cache = B.basis_conv2d_forward(x, *args)
    out_ref, cache_ref = B.basis_conv2d_forward_reference(x, *args)
    assert out.shape == (cfg["N"], cfg["F"], *out_ref.shape[2:])
    assert_close(out, out_ref, "forward")
    assert_close(layer.forward(x), out_ref, "layer forward")

    dout = rng.standard_normal(out.shape)
    fast = B.basis_conv2d_backward(dout, cache)
    ref = B.basis_conv2d_backward_reference(dout, cache_ref)
    dx_layer = layer.backward(dout)
    for name, a, b in zip(("dx", "dbasis", "dcoeff", "dbias"), fast, ref):
        if b is None:
            assert a is None and not cfg["bias"], name
        else:
            assert_close(a, b, name)
    assert_close(dx_layer, ref[0], "layer dx")
    assert_close(layer.grads["basis"], ref[1], "layer dbasis")
    assert_close(layer.grads["coeff"], ref[2], "layer dcoeff")


@pytest.mark.parametrize("idx", range(0, N_CASES, 4))
def test_layer_equals_plain_convolution_with_reconstructed_weight(idx):
    """Eq. 9-11: the layer is an ordinary convolution with W = [sum_b α_{b,i,g} B̄_b]_g (naive loops and torch)."""
    cfg, rng = CONFIGS[idx], np.random.default_rng(300 + idx)
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    weight = B.reconstruct_weight(layer)
    assert weight.shape == (cfg["F"], cfg["C"], cfg["k"], cfg["k"])
    out = layer.forward(x)
    assert_close(out, conv2d_forward_naive(x, weight, layer.bias, cfg["stride"], cfg["padding"])[0], "naive conv")
    bias = None if layer.bias is None else to_torch(layer.bias)
    assert_close(out, F.conv2d(to_torch(x), to_torch(weight), bias, cfg["stride"], cfg["padding"]), "torch conv")


def test_reconstructed_weight_splits_follow_eq_10():
    rng = np.random.default_rng(0)
    layer = B.BasisConv2d(6, 2, 3, n_basis=4, basis_channels=2, rng=rng)      # s = 3
    weight = B.reconstruct_weight(layer)
    for i in range(2):
        for g in range(3):
            split = sum(layer.coeff[i, g * 4 + b] * layer.basis[b] for b in range(4))
            np.testing.assert_allclose(weight[i, 2 * g:2 * g + 2], split, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("idx", [1, 7, 18, 33])
def test_eq_11_split_by_split(idx):
    """sum_g sum_b α_{b,i,g} (x̄_g * B̄_b): s separate convolutions with one basis, as the released loop mode."""
    cfg, rng = CONFIGS[idx], np.random.default_rng(400 + idx)
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    p, m = cfg["p"], cfg["m"]
    out = 0.0
    for g in range(cfg["s"]):
        maps = conv2d_forward_naive(x[:, g * p:(g + 1) * p], layer.basis, None, cfg["stride"], cfg["padding"])[0]
        out = out + np.einsum("ib,jbuv->jiuv", layer.coeff[:, g * m:(g + 1) * m], maps)
    if layer.bias is not None:
        out = out + layer.bias[:, None, None]
    assert_close(layer.forward(x), out, "Eq. 11")


GRADCHECK = [
    dict(N=2, C=6, F=4, H=5, W=4, k=3, s=3, p=2, m=3, stride=1, padding=1, bias=True),
    dict(N=1, C=4, F=3, H=6, W=5, k=2, s=1, p=4, m=5, stride=2, padding=1, bias=False),
    dict(N=2, C=4, F=5, H=4, W=4, k=1, s=4, p=1, m=2, stride=1, padding=0, bias=True),
    dict(N=1, C=3, F=2, H=7, W=6, k=5, s=3, p=1, m=2, stride=2, padding=2, bias=True),
]


@pytest.mark.parametrize("cfg", GRADCHECK, ids=[config_id(i, c) for i, c in enumerate(GRADCHECK)])
def test_layer_gradients_match_centred_differences(cfg):
    rng = np.random.default_rng(5)
    layer = make_layer(cfg, rng)
    errors = check_layer_gradients(layer, rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), rng)
    assert set(errors) == {"x", "basis", "coeff"} | ({"bias"} if cfg["bias"] else set())
    assert max(errors.values()) < 1e-6, errors


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    layer = B.BasisConv2d(4, 3, 3, 2, 2, padding=1, rng=rng).astype(np.float32)
    out = layer.forward(rng.standard_normal((2, 4, 5, 5)).astype(np.float32))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


# ----------------------------------------------------------------------------- the fast path (minilib.basis_fast)
N_FAST = 64      # s = 1..8 and k = 1..5 in turn; both routes, the reshaped fallback, shared bases, empty batches


def fast_configs(n=N_FAST, seed=17):
    """Random configurations for the fast path: keys of :func:`basis_configs` plus ``kernel`` (kh, kw),
    ``padding`` (ph, pw) and ``extra`` (a shared basis of p + extra channels, sliced as ``layer_basis``)."""
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        s, kh = 1 + idx % 8, 1 + (idx // 8) % 5
        kw = kh if idx % 3 else int(rng.integers(1, 6))                    # every third kernel may be non-square
        p = int(rng.integers(1, 5))
        m = int(rng.integers(1, p)) if idx % 2 and p > 1 else p + int(rng.integers(0, 3))   # m < p, else m >= p
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        configs.append(dict(
            N=0 if idx % 16 == 15 else int(rng.integers(1, 4)), C=s * p, F=int(rng.integers(1, 7)), s=s, p=p, m=m,
            kernel=(kh, kw), padding=padding,
            H=int(rng.integers(max(1, kh - 2 * padding[0]), kh + 6)),
            W=int(rng.integers(max(1, kw - 2 * padding[1]), kw + 6)),
            stride=2 if idx % 5 == 4 else 1, bias=idx % 3 != 2, extra=int(rng.integers(1, 3)) if idx % 4 == 3 else 0))
    return configs


FAST_CONFIGS = fast_configs()


def route_of(cfg):
    """The route :func:`minilib.basis.basis_conv2d_forward` must take for a configuration."""
    if not fast_path_applies(cfg["kernel"], (cfg["stride"],) * 2, cfg["padding"]):
        return "reshaped"
    return basis_route(cfg["m"], cfg["p"], cfg["kernel"])


def fast_id(i, cfg):
    return (f"{i}-{route_of(cfg)}-N{cfg['N']}C{cfg['C']}F{cfg['F']}-{cfg['H']}x{cfg['W']}-k{cfg['kernel'][0]}x"
            f"{cfg['kernel'][1]}-s{cfg['s']}p{cfg['p']}m{cfg['m']}-st{cfg['stride']}-pad{cfg['padding'][0]}x"
            f"{cfg['padding'][1]}-{'bias' if cfg['bias'] else 'nobias'}{'-shared' if cfg['extra'] else ''}")


def fast_arrays(cfg, rng, dtype=np.float64):
    """x, the layer's basis (a non-contiguous slice of a wider one when shared), coeff and bias."""
    (kh, kw), m, p, s = cfg["kernel"], cfg["m"], cfg["p"], cfg["s"]
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    basis = rng.standard_normal((m, p + cfg["extra"], kh, kw)).astype(dtype)[:, :p]
    coeff = rng.standard_normal((cfg["F"], s * m)).astype(dtype)
    bias = rng.standard_normal(cfg["F"]).astype(dtype) if cfg["bias"] else None
    return x, basis, coeff, bias


def test_fast_configs_cover_the_cases():
    routes = [route_of(c) for c in FAST_CONFIGS]
    assert {c["s"] for c in FAST_CONFIGS} == set(range(1, 9))
    assert {c["kernel"][0] for c in FAST_CONFIGS} == set(range(1, 6))
    assert any(c["kernel"][0] != c["kernel"][1] for c in FAST_CONFIGS)
    assert {c["stride"] for c in FAST_CONFIGS} == {1, 2} and {c["bias"] for c in FAST_CONFIGS} == {True, False}
    assert {pad for c in FAST_CONFIGS for pad in c["padding"]} == {0, 1, 2}
    assert any(c["N"] == 0 for c in FAST_CONFIGS) and any(c["extra"] for c in FAST_CONFIGS)
    for route in ("taps", "columns", "reshaped"):
        assert routes.count(route) >= 8, route
    # the fast routes meet padding below (k-1)/2 (junk columns), non-square kernels, shared bases and empty batches
    fast = [c for c, r in zip(FAST_CONFIGS, routes) if r != "reshaped"]
    assert any(2 * c["padding"][1] < c["kernel"][1] - 1 for c in fast)
    assert any(c["kernel"][0] != c["kernel"][1] for c in fast)
    assert any(c["extra"] for c in fast) and any(c["N"] == 0 for c in fast)


@pytest.mark.parametrize("idx", range(N_FAST), ids=[fast_id(i, c) for i, c in enumerate(FAST_CONFIGS)])
def test_fast_path_equals_readable_and_reference(idx):
    """basis_conv2d_forward/backward = the reshaped version = the dense reference, float64, all five results."""
    cfg, rng = FAST_CONFIGS[idx], np.random.default_rng(700 + idx)
    x, basis, coeff, bias = fast_arrays(cfg, rng)
    args = (x, basis, coeff, bias, cfg["stride"], cfg["padding"])
    out, cache = B.basis_conv2d_forward(*args)
    assert cache[0] == route_of(cfg)
    out_readable, cache_readable = B.basis_conv2d_forward_reshaped(*args)
    out_ref, cache_ref = B.basis_conv2d_forward_reference(*args)
    assert out.dtype == np.float64
    assert_close(out, out_ref, "forward vs reference")
    assert_close(out, out_readable, "forward vs reshaped")
    dout = rng.standard_normal(out.shape)
    results = zip(("dx", "dbasis", "dcoeff", "dbias"), B.basis_conv2d_backward(dout, cache),
                  B.basis_conv2d_backward_reshaped(dout, cache_readable),
                  B.basis_conv2d_backward_reference(dout, cache_ref))
    for name, got, readable, ref in results:
        if ref is None:
            assert got is None and readable is None and not cfg["bias"], name
            continue
        assert got.dtype == np.float64, name
        assert_close(got, ref, f"{name} vs reference")
        assert_close(got, readable, f"{name} vs reshaped")


@pytest.mark.parametrize("route, kernel, s, p, m, padding", [
    ("taps", (3, 3), 1, 8, 3, 1), ("taps", (1, 1), 2, 4, 6, 0), ("columns", (3, 2), 4, 2, 5, (1, 0)),
    ("columns", (5, 5), 2, 2, 2, 1)])
def test_fast_path_keeps_float32(route, kernel, s, p, m, padding):
    """float32 in, float32 everywhere out, within float32 rounding of the float64 result."""
    cfg = dict(N=3, C=s * p, F=5, s=s, p=p, m=m, kernel=kernel, padding=(padding,) * 2 if isinstance(padding, int)
               else padding, H=7, W=6, stride=1, bias=True, extra=0)
    assert route_of(cfg) == route
    arrays64 = fast_arrays(cfg, np.random.default_rng(1))
    arrays32 = [a.astype(np.float32) for a in arrays64]
    out32, cache32 = B.basis_conv2d_forward(*arrays32, 1, cfg["padding"])
    out64, cache64 = B.basis_conv2d_forward(*arrays64, 1, cfg["padding"])
    dout = np.random.default_rng(2).standard_normal(out64.shape)
    grads32 = B.basis_conv2d_backward(dout.astype(np.float32), cache32)
    grads64 = B.basis_conv2d_backward(dout, cache64)
    assert cache32[0] == route and out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    for name, g32, g64 in zip(("dx", "dbasis", "dcoeff", "dbias"), grads32, grads64):
        assert g32.dtype == np.float32, name
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max(), err_msg=name)



@pytest.mark.parametrize("route, s, p, m, kernel, padding", [
    ("taps", 2, 4, 3, (3, 3), (1, 1)), ("taps", 1, 3, 2, (3, 2), (1, 0)), ("taps", 3, 2, 1, (1, 1), (0, 0)),
    ("columns", 4, 2, 3, (3, 3), (1, 1)), ("columns", 2, 2, 2, (2, 3), (0, 1))])
def test_fast_path_over_uneven_chunks(monkeypatch, route, s, p, m, kernel, padding):
    """Chunks of 2, 2 and 1 images: buffers reused across chunks, the last one smaller, same results."""
    sizes = []

    def chunks_of_two(n, bytes_per_image):
        sizes.append(n)
        return [slice(start, min(start + 2, n)) for start in range(0, n, 2)]

    monkeypatch.setattr(fast, "batch_chunks", chunks_of_two)
    cfg = dict(N=5, C=s * p, F=4, s=s, p=p, m=m, kernel=kernel, padding=padding, H=5, W=6, stride=1, bias=True, extra=0)
    assert route_of(cfg) == route
    x, basis, coeff, bias = fast_arrays(cfg, np.random.default_rng(3))
    out, cache = B.basis_conv2d_forward(x, basis, coeff, bias, 1, padding)
    out_ref, cache_ref = B.basis_conv2d_forward_reference(x, basis, coeff, bias, 1, padding)
    assert_close(out, out_ref, "forward")
    dout = np.random.default_rng(4).standard_normal(out.shape)
    for name, a, b in zip(("dx", "dbasis", "dcoeff", "dbias"), B.basis_conv2d_backward(dout, cache),
                          B.basis_conv2d_backward_reference(dout, cache_ref)):
        assert_close(a, b, name)
    assert sizes and set(sizes) == {5}

def test_layers_run_the_fast_path():
    """BasisConv2d (own and shared basis, the DenseNet slice) caches a fast route for stride 1."""
    rng = np.random.default_rng(4)
    shared = B.SharedBasis(3, 6, 3, rng=rng)
    layers = [B.BasisConv2d(8, 5, 3, 3, 4, padding=1, rng=rng), B.BasisConv2d(8, 5, 3, 6, 2, padding=1, rng=rng),
              B.BasisConv2d(8, 5, 3, 3, 4, padding=1, basis=shared, rng=rng),
              B.BasisConv2d(4, 5, 3, 3, 2, padding=1, basis=shared, rng=rng)]
    for layer, route in zip(layers, ("taps", "columns", "taps", "columns")):
        layer.forward(rng.standard_normal((2, layer.in_channels, 6, 6)))
        assert layer.cache[0] == route


def test_shift_taps_and_sum_taps_against_padded_windows():
    """The flat shifts (rows by range, wrapping columns zeroed) equal windows of the zero-padded planes."""
    rng = np.random.default_rng(8)
    for kernel, padding, (h, w) in [((3, 3), (1, 1), (5, 6)), ((3, 5), (1, 0), (4, 7)), ((5, 2), (2, 0), (6, 3)),
                                    ((1, 1), (0, 0), (3, 4))]:
        (kh, kw), (ph, pw) = kernel, padding
        oh, ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        planes = rng.standard_normal((2, 3, h * w))
        padded = np.pad(planes.reshape(2, 3, h, w), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = np.stack([padded[..., i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)])
        shifted = fast.shift_taps(planes, kernel, padding, w, np.full((kh * kw, 2, 3, oh * w), np.nan))
        np.testing.assert_array_equal(shifted.reshape(kh * kw, 2, 3, oh, w)[..., :ow], windows)
        summed = fast.sum_taps(np.stack([planes] * (kh * kw)), kernel, padding, w, np.empty((2, 3, oh * w)))
        np.testing.assert_allclose(summed.reshape(2, 3, oh, w)[..., :ow], windows.sum(axis=0), rtol=1e-12)
        # the adjoint, as the backward pass uses it: <shift(a)[t], b> = <a, shift^T(b)[t]> for b zero in junk columns
        b = rng.standard_normal((2, 3, oh, w))
        b[..., ow:] = 0
        back = fast.shift_taps(b.reshape(2, 3, -1), kernel, padding, w, np.empty((kh * kw, 2, 3, h * w)), sign=-1)
        for t in range(kh * kw):
            np.testing.assert_allclose(np.vdot(shifted[t], b.reshape(2, 3, -1)), np.vdot(planes, back[t]), rtol=1e-12)


def test_the_wrapping_columns_matter():
    """Without zeroing the columns a flat shift wraps into the neighbouring row: the tests above would fail."""
    planes = np.arange(1.0, 13.0).reshape(1, 12)                     # one 3 x 4 plane
    shifted = fast.shift_taps(planes, (1, 3), (0, 1), 4, np.empty((3, 1, 12)))
    flat_left = np.concatenate([[0.0], planes[0, :-1]])              # tap j = 0 reads column z - 1, flat
    assert shifted[0, 0, 4] == 0 and flat_left[4] == 4.0             # row 1, column 0: zero, not row 0's last


def test_dense_backward_in_the_tap_layout_equals_conv2d_backward():
    rng = np.random.default_rng(9)
    for kernel, padding in [((3, 3), (1, 1)), ((3, 2), (0, 0)), ((5, 3), (2, 1))]:
        x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, *kernel))
        out, cache = conv2d_forward(x, w, None, 1, padding)
        dout = rng.standard_normal(out.shape)
        dx, dw, _ = conv2d_backward(dout, cache)
        grid = fast.Grid.of(x.shape, window_geometry(x.shape, kernel, 1, padding))
        got_dx, got_dw, none = fast.conv2d_backward_taps(dout, x, w, grid)
        assert none is None
        assert_close(got_dx, dx, "dx")
        assert_close(got_dw, dw, "dweight")


@pytest.mark.parametrize("kernel, stride, padding, applies", [
    ((3, 3), (1, 1), (1, 1), True), ((3, 3), (1, 1), (0, 0), True), ((3, 3), (1, 1), (2, 1), False),
    ((3, 3), (2, 2), (1, 1), False), ((1, 1), (1, 1), (1, 0), False), ((5, 2), (1, 1), (2, 0), True)])
def test_fast_path_applies(kernel, stride, padding, applies):
    assert fast_path_applies(kernel, stride, padding) is applies


def test_route_follows_the_smaller_side():
    assert basis_route(14, 64, (3, 3)) == "taps" and basis_route(32, 8, (3, 3)) == "columns"
    assert basis_route(32, 16, (1, 1)) == "taps" and basis_route(16, 16, (3, 3)) == "columns"


def test_initialisation_draws_basis_coeff_bias_in_order():
    """The contract both backends follow: torch.nn.Conv2d's bound for each of the two convolutions."""
    layer = B.BasisConv2d(6, 5, (3, 2), n_basis=4, basis_channels=2, rng=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    basis = rng.uniform(-1 / math.sqrt(2 * 3 * 2), 1 / math.sqrt(2 * 3 * 2), size=(4, 2, 3, 2))
    coeff = rng.uniform(-1 / math.sqrt(3 * 4), 1 / math.sqrt(3 * 4), size=(5, 12))
    bias = rng.uniform(-1 / math.sqrt(3 * 4), 1 / math.sqrt(3 * 4), size=(5,))
    for name, value in (("basis", basis), ("coeff", coeff), ("bias", bias)):
        np.testing.assert_array_equal(layer.params[name], value, err_msg=name)
    assert list(layer.state_dict()) == ["basis", "coeff", "bias"]
    assert (layer.in_channels, layer.out_channels, layer.kernel_size, layer.n_basis, layer.basis_channels,
            layer.splits, layer.stride, layer.padding) == (6, 5, (3, 2), 4, 2, 3, (1, 1), (0, 0))
    assert B.BasisConv2d(6, 5, 3, 4, 2, bias=False).bias is None


# ----------------------------------------------------------------------------- Eq. 4-7 and 11
@pytest.mark.parametrize("idx", range(0, N_CASES, 3))
def test_eq_6_equals_a_direct_parameter_count(idx):
    cfg = CONFIGS[idx]
    layer = make_layer({**cfg, "bias": False}, np.random.default_rng(0))
    c, n, k, m, s = cfg["C"], cfg["F"], cfg["k"], cfg["m"], cfg["s"]
    stored = layer.params["basis"].size + layer.params["coeff"].size
    assert stored == layer.num_parameters() == m * cfg["p"] * k * k + m * n * s
    assert math.isclose(B.compression_rate(c, n, k, m, s) * n * c * k * k, stored, rel_tol=1e-12)
    assert math.isclose(B.compression_rate(c, n, k, m, s), m / (n * s) + m / (cfg["p"] * k * k), rel_tol=1e-12)


@pytest.mark.parametrize("c, n, k, m", [(64, 64, 3, 16), (36, 12, 3, 24), (128, 32, 1, 8), (12, 20, (3, 5), 7)])
def test_eq_4_and_5_are_the_boundary_cases(c, n, k, m):
    taps = math.prod(k) if isinstance(k, tuple) else k * k
    eq4 = (m * c * taps + m * n) / (n * c * taps)       # s = 1: 3-D filters as the element (Fig. 1 left)
    eq5 = (m * taps + c * m * n) / (n * c * taps)       # s = c: 2-D channel filters (Fig. 1 right)
    assert math.isclose(B.compression_rate(c, n, k, m, 1), eq4, rel_tol=1e-12)
    assert math.isclose(eq4, m / n + m / (c * taps), rel_tol=1e-12)
    assert math.isclose(B.compression_rate(c, n, k, m, c), eq5, rel_tol=1e-12)
    assert math.isclose(eq5, m / (n * c) + m / taps, rel_tol=1e-12)


def _divisors(c):
    return [d for d in range(1, c + 1) if c % d == 0]


GRID = [(c, n, k) for c in (1, 3, 12, 24, 36, 64, 100, 256) for n in (8, 32, 64, 256) for k in (1, 3, (3, 5))]


@pytest.mark.parametrize("c, n, k", GRID)
def test_eq_7_against_brute_force_over_divisors(c, n, k):
    taps = math.prod(k) if isinstance(k, tuple) else k * k
    p_star = math.sqrt(n * c / taps)
    s = B.optimal_splits(c, n, k)
    assert c % s == 0
    rate = {p: B.compression_rate(c, n, k, 1, c // p) for p in _divisors(c)}
    nearest = min(abs(p - p_star) for p in rate)
    ties = [p for p in rate if abs(p - p_star) == nearest]
    assert c // s in ties and rate[c // s] == min(rate[p] for p in ties)     # the paper's quantisation
    # Eq. 6 is convex in s, so the exact minimiser over divisors is one of the two around p*, like the paper's p
    below = max([p for p in rate if p <= p_star], default=None)
    above = min([p for p in rate if p >= p_star], default=None)
    bracket = {p for p in (below, above) if p is not None}
    assert c // s in bracket and min(rate, key=rate.get) in bracket


def test_eq_7_continuous_optimum():
    """s* = sqrt(c k^2 / n) minimises m/(n s) + m s/(c k^2); for c = n it is k (the paper's s* ~ sqrt(w h))."""
    for c, n, k in [(36, 36, 3), (64, 16, 1), (100, 4, 5)]:
        s_star = math.sqrt(c * k * k / n)
        assert float(s_star).is_integer() and c % s_star == 0
        assert B.optimal_splits(c, n, k) == s_star
        assert math.isclose(B.compression_rate(c, n, k, 5, int(s_star)), 2 * 5 / math.sqrt(n * c * k * k))
        for s in _divisors(c):
            assert B.compression_rate(c, n, k, 5, s) >= B.compression_rate(c, n, k, 5, int(s_star)) - 1e-15
    assert B.optimal_splits(36, 36, 3) == 3


def test_nearest_divisor_is_not_always_the_lowest_rate():
    """The docstring's caveat, with one case: p* = 1.96 is nearer p = 1 (s = 3) but p = 3 (s = 1) stores less."""
    assert B.optimal_splits(3, 32, 5) == 3
    assert B.compression_rate(3, 32, 5, 1, 1) < B.compression_rate(3, 32, 5, 1, 3)


@pytest.mark.parametrize("idx", range(0, N_CASES, 5))
def test_flops_of_the_layer(idx):
    cfg = CONFIGS[idx]
    layer = make_layer(cfg, np.random.default_rng(0))
    out = layer.forward(np.zeros((1, cfg["C"], cfg["H"], cfg["W"])))
    c, n, k, m, s, p = cfg["C"], cfg["F"], cfg["k"], cfg["m"], cfg["s"], cfg["p"]
    flops = B.basis_flops(c, n, k, m, s, out.shape[2:])
    pixels = out.shape[2] * out.shape[3]
    assert flops == {"basis": m * p * k * k * s * pixels, "coefficients": n * s * m * pixels,
                     "total": (m * c * k * k + n * s * m) * pixels, "original": n * c * k * k * pixels}
    assert math.isclose(flops["total"] / flops["original"], m / n + m / (p * k * k))
    cost = layer.cost((c, cfg["H"], cfg["W"]), out.shape[1:])
    assert cost.pop("shared") == [(layer.basis, m * p * k * k, m * p * k * k)]
    assert cost == {"conv_weights": m * p * k * k + n * s * m, "mask_bits": 0,
                    "params": layer.num_parameters(), "flops": flops["total"]}


# ----------------------------------------------------------------------------- Sec. 4.1: SVD start, Eq. 12
@pytest.mark.parametrize("n, c, k, p", [(4, 6, 3, 2), (8, 4, 1, 2), (3, 8, 2, 4), (5, 3, 3, 3)])
def test_from_conv_is_the_truncated_svd(n, c, k, p):
    rng = np.random.default_rng(n * c)
    weight = rng.standard_normal((n, c, k, k))
    s = c // p
    full = min(n * s, p * k * k)
    sigma = np.linalg.svd(weight.reshape(n * s, p * k * k), compute_uv=False)
    errors = []
    for m in range(1, p * k * k + 1):
        basis, coeff = B.from_conv(weight, m, p)
        assert basis.shape == (m, p, k, k) and coeff.shape == (n, s * m)
        error = B.approximation_error(weight, basis, coeff)
        # Eckart-Young: the error is the energy of the discarded singular values
        assert math.isclose(error, math.sqrt(np.sum(sigma[m:] ** 2)) / np.linalg.norm(weight), abs_tol=1e-12)
        np.testing.assert_allclose(basis.reshape(m, -1) @ basis.reshape(m, -1).T, np.eye(m), atol=1e-12)
        errors.append(error)
    assert all(later <= earlier + 1e-12 for earlier, later in zip(errors, errors[1:]))
    assert errors[full - 1] < 1e-12 and all(e < 1e-12 for e in errors[full - 1:])
    assert all(e > 1e-3 for e in errors[:full - 1])


def test_from_conv_beats_other_factorizations():
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((6, 8, 3, 3))
    basis, coeff = B.from_conv(weight, 5, 4)
    best = B.approximation_error(weight, basis, coeff)
    for _ in range(5):
        other = rng.standard_normal(basis.shape)
        rows = other.reshape(5, -1)
        # the least-squares coefficients for this basis: the best any coefficients can do with it
        fit_coeff = np.linalg.lstsq(rows.T, weight.reshape(6 * 2, -1).T, rcond=None)[0].T.reshape(6, 10)
        assert B.approximation_error(weight, other, fit_coeff) > best


def test_from_conv_loaded_into_a_layer_reproduces_the_convolution():
    rng = np.random.default_rng(2)
    conv = ml.Conv2d(6, 4, 3, padding=1, rng=rng)
    layer = B.BasisConv2d(6, 4, 3, n_basis=12, basis_channels=2, padding=1, rng=rng)   # m = n*s: exact
    layer.params["basis"][...], layer.params["coeff"][...] = B.from_conv(conv.params["weight"], 12, 2)
    layer.params["bias"][...] = conv.params["bias"]
    x = rng.standard_normal((2, 6, 5, 5))
    np.testing.assert_allclose(layer.forward(x), conv.forward(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n, c, k, p, m", [(3, 4, 3, 2, 2), (2, 6, 1, 3, 2), (4, 2, 2, 1, 3)])
def test_approximation_penalty_value_and_gradients(n, c, k, p, m):
    rng = np.random.default_rng(m)
    weight = rng.standard_normal((n, c, k, k))
    basis, coeff = rng.standard_normal((m, p, k, k)), rng.standard_normal((n, c // p * m))
    value, dbasis, dcoeff = B.approximation_penalty(weight, basis, coeff)
    assert math.isclose(value, np.sum((weight - B.weight_from_basis(basis, coeff)) ** 2), rel_tol=1e-12)
    assert rel_error(dbasis, numeric_gradient(lambda: B.approximation_penalty(weight, basis, coeff)[0], basis)) < 1e-7
    assert rel_error(dcoeff, numeric_gradient(lambda: B.approximation_penalty(weight, basis, coeff)[0], coeff)) < 1e-7
    # at the SVD optimum the gradient vanishes
    _, dbasis, dcoeff = B.approximation_penalty(weight, *B.from_conv(weight, m, p))
    assert np.abs(dbasis).max() < 1e-10 and np.abs(dcoeff).max() < 1e-10


def test_approximation_penalty_adds_gamma_times_its_gradient():
    rng = np.random.default_rng(3)
    layer = B.BasisConv2d(4, 3, 3, n_basis=2, basis_channels=2, padding=1, rng=rng)
    weight = rng.standard_normal((3, 4, 3, 3))
    penalty = B.ApproximationPenalty([(layer, weight)], gamma=0.25)
    out = layer.forward(rng.standard_normal((2, 4, 4, 4)))
    layer.backward(np.ones_like(out))
    before = {key: grad.copy() for key, grad in layer.grads.items()}
    value, dbasis, dcoeff = B.approximation_penalty(weight, layer.basis, layer.coeff)
    assert math.isclose(penalty(), 0.25 * value) and math.isclose(penalty.value(), 0.25 * value)
    np.testing.assert_allclose(layer.grads["basis"], before["basis"] + 0.25 * dbasis, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["coeff"], before["coeff"] + 0.25 * dcoeff, rtol=1e-12)
    np.testing.assert_array_equal(layer.grads["bias"], before["bias"])


def _penalty_run(gamma, epochs=6):
    """A tiny classifier whose first layer starts at the SVD of a 'trained' weight W; returns (start, end) error."""
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((4, 4, 3, 3)) * 0.3
    layer = B.BasisConv2d(4, 4, 3, n_basis=3, basis_channels=2, padding=1, rng=rng)
    layer.params["basis"][...], layer.params["coeff"][...] = B.from_conv(weight, 3, 2)
    model = ml.Sequential(layer, ml.ReLU(), ml.Flatten(), ml.Linear(4 * 4 * 4, 2, rng=rng))
    x, y = rng.standard_normal((64, 4, 4, 4)), rng.integers(0, 2, size=64)
    start = B.approximation_error(weight, layer.basis, layer.coeff)
    penalty = B.ApproximationPenalty([(layer, weight)], gamma) if gamma is not None else None
    history = fit(model, ml.softmax_cross_entropy, ml.SGD(model, lr=0.1), x, y, epochs=epochs, batch_size=16, rng=rng,
                  log=None, progress="epoch", regularizer=penalty)
    return start, B.approximation_error(weight, layer.basis, layer.coeff), history


def test_fit_with_the_eq_12_penalty_keeps_the_basis_near_the_original_filters():
    start, free, history_free = _penalty_run(None)
    _, held, history = _penalty_run(gamma=1.0)
    assert history_free["penalty"] == [] and len(history["penalty"]) == 6
    assert all(v >= 0 for v in history["penalty"])
    assert free > start and held < free          # the task loss pulls away from W; γ pulls back (Eq. 12)


def test_penalty_alone_drives_the_error_to_the_svd_optimum():
    """With a zero task loss, gradient descent on Eq. 12's term alone approaches the truncated SVD."""
    rng = np.random.default_rng(6)
    weight = rng.standard_normal((3, 4, 3, 3))
    layer = B.BasisConv2d(4, 3, 3, n_basis=4, basis_channels=2, rng=rng)
    model = ml.Sequential(layer)
    penalty = B.ApproximationPenalty([(layer, weight)], gamma=1.0)
    history = fit(model, lambda scores, y: (0.0, np.zeros_like(scores)), ml.SGD(model, lr=0.02, momentum=0.9),
                  np.zeros((4, 4, 3, 3)), np.zeros(4), epochs=300, batch_size=4, rng=rng, log=None,
                  progress="epoch", regularizer=penalty)
    assert history["penalty"][-1] < history["penalty"][0]
    optimum = B.approximation_error(weight, *B.from_conv(weight, 4, 2))
    assert B.approximation_error(weight, layer.basis, layer.coeff) < optimum + 1e-3


# ----------------------------------------------------------------------------- Sec. 4.2: sharing
def shared_model(seed=0):
    """conv(4 -> 4) - ReLU - conv(4 -> 3), both with m = 3 basis filters of p = 2 channels, one SharedBasis."""
    rng = np.random.default_rng(seed)
    shared = B.SharedBasis(3, 2, 3, rng=rng)
    model = ml.Sequential(B.BasisConv2d(4, 4, 3, 3, 2, padding=1, basis=shared, rng=rng), ml.ReLU(),
                          B.BasisConv2d(4, 3, 3, 3, 2, padding=1, basis=shared, rng=rng))
    return model, shared


def test_shared_basis_gradient_is_the_sum_of_every_user():
    model, shared = shared_model()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 5))
    out = model.forward(x)
    dout = rng.standard_normal(out.shape)
    model.zero_grad()
    model.backward(dout)
    # each layer's contribution, from the functional passes with the basis as a plain array
    first, second, basis = model[0], model[2], shared.params["basis"]
    hidden, cache1 = B.basis_conv2d_forward(x, basis, first.coeff, first.bias, 1, 1)
    _, cache2 = B.basis_conv2d_forward(np.maximum(hidden, 0), basis, second.coeff, second.bias, 1, 1)
    d_relu, dbasis2, _, _ = B.basis_conv2d_backward(dout, cache2)
    _, dbasis1, _, _ = B.basis_conv2d_backward(d_relu * (hidden > 0), cache1)
    assert np.abs(dbasis1).max() > 0 and np.abs(dbasis2).max() > 0
    np.testing.assert_allclose(shared.grads["basis"], dbasis1 + dbasis2, rtol=1e-10, atol=1e-12)
    assert rel_error(shared.grads["basis"], numeric_gradient(lambda: model.forward(x), basis, dout)) < 1e-6


def test_shared_basis_is_updated_once_per_step():
    model, shared = shared_model()
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 5))
    for optimizer in (ml.SGD(model, lr=0.1), ml.SGD(model, lr=0.1, momentum=0.9), ml.Adam(model, lr=0.01)):
        model.zero_grad()
        model.backward(np.ones_like(model.forward(x)))
        grad = shared.grads["basis"].copy()
        before = shared.params["basis"].copy()
        optimizer.step()
        names = [name for name, _, _ in optimizer.parameters()]
        assert names == ["0.basis", "0.coeff", "0.bias", "2.coeff", "2.bias"]
        assert set(optimizer.state) == set(names)          # one momentum / Adam state for the shared basis
        if type(optimizer) is ml.SGD and not optimizer.momentum:
            np.testing.assert_allclose(shared.params["basis"], before - 0.1 * grad, rtol=1e-12)


def test_shared_basis_counts_once():
    model, shared = shared_model()
    own = [layer.params["coeff"].size + layer.params["bias"].size for layer in (model[0], model[2])]
    assert model.num_parameters() == shared.params["basis"].size + sum(own) == 54 + (4 * 6 + 4) + (3 * 6 + 3)
    summary = summarize(model, (4, 5, 5))
    assert summary.params == model.num_parameters()
    assert summary.conv_weights == 54 + 4 * 6 + 3 * 6
    first, second = summary.rows[0], summary.rows[2]
    assert (first.conv_weights, second.conv_weights) == (54 + 24, 18)      # charged to the first user
    assert first.flops == (3 * 4 * 9 + 4 * 2 * 3) * 25 and second.flops == (3 * 4 * 9 + 3 * 2 * 3) * 25
    unshared = ml.Sequential(B.BasisConv2d(4, 4, 3, 3, 2, padding=1), ml.ReLU(),
                             B.BasisConv2d(4, 3, 3, 3, 2, padding=1))
    assert summarize(unshared, (4, 5, 5)).conv_weights == summary.conv_weights + 54


def test_shared_state_dict_names_like_torch_and_load_state_dict():
    model, shared = shared_model()
    state = model.state_dict()
    # torch lists a shared parameter under every module that registers it
    assert list(state) == ["0.basis", "0.coeff", "0.bias", "2.basis", "2.coeff", "2.bias"]
    assert state["0.basis"] is state["2.basis"] is shared.params["basis"]
    other, other_shared = shared_model(seed=9)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other_shared.params["basis"], shared.params["basis"])
    x = np.random.default_rng(3).standard_normal((1, 4, 5, 5))
    np.testing.assert_array_equal(other.forward(x), model.forward(x))


def test_zero_grad_and_astype_keep_sharing():
    model, shared = shared_model()
    first, second = model[0], model[2]
    model.backward(np.ones_like(model.forward(np.ones((1, 4, 5, 5)))))
    grad = shared.grads["basis"]
    assert first.grads["basis"] is second.grads["basis"] is grad and grad.any()
    model.zero_grad()
    assert first.grads["basis"] is second.grads["basis"] is grad and not grad.any()     # zeroed in place
    model.astype(np.float32)
    for store in ("params", "grads"):
        assert getattr(first, store)["basis"] is getattr(second, store)["basis"], store
        assert getattr(first, store)["basis"].dtype == np.float32, store
    out = model.forward(np.ones((1, 4, 5, 5), np.float32))
    model.backward(np.ones_like(out))
    assert out.dtype == np.float32 and first.grads["basis"] is second.grads["basis"]
    assert first.grads["basis"].any()
    assert model.num_parameters() == 54 + 28 + 21
    # one array held by two modules stays one array
    linear1, linear2 = ml.Linear(3, 3), ml.Linear(3, 3)
    linear2.params["weight"] = linear1.params["weight"]
    pair = ml.Sequential(linear1, linear2)
    assert pair.num_parameters() == 9 + 3 + 3
    pair.astype(np.float32)
    assert linear2.params["weight"] is linear1.params["weight"] and linear1.params["weight"].dtype == np.float32


def test_densenet_slice_uses_and_updates_the_first_channels():
    """Fig. 3: a layer with p' < p basis channels uses basis[:, :p']; its gradient lands in that slice."""
    rng = np.random.default_rng(4)
    shared = B.SharedBasis(4, 6, 3, rng=rng)
    narrow = B.BasisConv2d(4, 5, 3, n_basis=4, basis_channels=2, padding=1, basis=shared, rng=rng)   # s = 2
    wide = B.BasisConv2d(12, 5, 3, n_basis=4, basis_channels=6, padding=1, basis=shared, rng=rng)   # s = 2
    assert narrow.basis is shared.params["basis"] and narrow.basis.shape == (4, 6, 3, 3)
    np.testing.assert_array_equal(narrow.layer_basis(), shared.params["basis"][:, :2])
    np.testing.assert_array_equal(B.reconstruct_weight(narrow), B.weight_from_basis(narrow.layer_basis(), narrow.coeff))
    x = rng.standard_normal((2, 4, 5, 5))
    out = narrow.forward(x)
    expected, cache = B.basis_conv2d_forward(x, shared.params["basis"][:, :2].copy(), narrow.coeff, narrow.bias, 1, 1)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    shared.zero_grad()
    narrow.backward(dout)
    np.testing.assert_allclose(shared.grads["basis"][:, :2], B.basis_conv2d_backward(dout, cache)[1], rtol=1e-12)
    assert not shared.grads["basis"][:, 2:].any()
    numeric = numeric_gradient(lambda: narrow.forward(x), shared.params["basis"], dout)
    assert rel_error(shared.grads["basis"], numeric) < 1e-6
    model = ml.Sequential(narrow, ml.ReLU(), ml.Conv2d(5, 12, 1, rng=rng), wide)
    assert summarize(model, (4, 5, 5)).conv_weights == 4 * 6 * 9 + 5 * 2 * 4 + 12 * 5 + 5 * 2 * 4
    assert model.num_parameters() == 4 * 6 * 9 + (5 * 8 + 5) + (60 + 12) + (5 * 8 + 5)


# ----------------------------------------------------------------------------- bad input
GOOD = dict(in_channels=6, out_channels=4, kernel_size=3, n_basis=3, basis_channels=2)
BAD_ARGUMENTS = {
    "p-not-dividing-c": (dict(basis_channels=4), ValueError, r"basis_channels=4 must divide in_channels=6"),
    "p-larger-than-c": (dict(basis_channels=12), ValueError, r"basis_channels=12 must divide in_channels=6"),
    "m-zero": (dict(n_basis=0), ValueError, r"n_basis=0 must be >= 1"),
    "m-float": (dict(n_basis=2.5), TypeError, r"n_basis must be an int"),
    "p-zero": (dict(basis_channels=0), ValueError, r"basis_channels=0 must be >= 1"),
    "stride-zero": (dict(stride=0), ValueError, r"stride=0 must be >= 1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding=-1 must be >= 0"),
    "basis-array": (dict(basis=np.zeros((3, 2, 3, 3))), TypeError, r"basis must be None or a SharedBasis, got ndarray"),
    "shared-m": (dict(basis=B.SharedBasis(5, 2, 3)), ValueError,
                 r"basis has shape \(5, 2, 3, 3\) but the layer needs \(n_basis=3, basis_channels>=2, 3, 3\)"),
    "shared-kernel": (dict(basis=B.SharedBasis(3, 2, 5)), ValueError,
                      r"basis has shape \(3, 2, 5, 5\) but the layer needs \(n_basis=3, basis_channels>=2, 3, 3\)"),
    "shared-p-too-small": (dict(basis=B.SharedBasis(3, 1, 3)), ValueError,
                           r"basis has shape \(3, 1, 3, 3\) but the layer needs .* m filters of at least p channels"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments(case):
    changes, error, message = BAD_ARGUMENTS[case]
    with pytest.raises(error, match=message):
        B.BasisConv2d(**{**GOOD, **changes})


def test_bad_forward_input():
    layer = B.BasisConv2d(**GOOD, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x has 4 channels but the layer expects in_channels=6"):
        layer.forward(np.zeros((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions"):
        layer.forward(np.zeros((6, 5, 5)))
    out = layer.forward(np.zeros((1, 6, 5, 5)))
    with pytest.raises(ValueError, match=r"dout has shape \(1, 3, 3, 3\) but the forward output had shape \(1, 4"):
        layer.backward(np.zeros((1, 3, *out.shape[2:])))
    with pytest.raises(TypeError, match=r"SharedBasis only holds a basis"):
        B.SharedBasis(3, 2, 3).forward(np.zeros((1, 2, 3, 3)))


def test_bad_functional_input():
    x, basis, coeff = np.zeros((1, 6, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros((4, 9))
    with pytest.raises(ValueError, match=r"x has 5 input channels, which basis_channels p=2 \(basis.shape\[1\]\)"):
        B.basis_conv2d_forward(np.zeros((1, 5, 5, 5)), basis, coeff)
    with pytest.raises(ValueError, match=r"coeff has shape \(4, 6\); it needs s\*m=9 columns \(s=c/p=3 splits x m=3"):
        B.basis_conv2d_forward(x, basis, np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\) but coeff has n=4 rows"):
        B.basis_conv2d_forward(x, basis, coeff, np.zeros(3))
    with pytest.raises(ValueError, match=r"basis must have 4 dimensions \(m, p, kh, kw\)"):
        B.basis_conv2d_forward_reference(x, np.zeros((3, 2, 3)), coeff)
    with pytest.raises(ValueError, match=r"n_basis=19 must be <= p\*kh\*kw=18"):
        B.from_conv(np.zeros((4, 6, 3, 3)), 19, 2)
    with pytest.raises(ValueError, match=r"basis_channels=4 must divide in_channels=6"):
        B.from_conv(np.zeros((4, 6, 3, 3)), 2, 4)
    with pytest.raises(ValueError, match=r"do not fit weight \(4, 6, 3, 3\)"):
        B.approximation_penalty(np.zeros((4, 6, 3, 3)), np.zeros((3, 2, 1, 1)), coeff)
    with pytest.raises(ValueError, match=r"weight is all zeros"):
        B.approximation_error(np.zeros((4, 6, 3, 3)), basis, coeff)
    with pytest.raises(ValueError, match=r"targets\[0\] weight has shape \(4, 6, 1, 1\); its layer needs \(4, 6, 3"):
        B.ApproximationPenalty([(B.BasisConv2d(**GOOD), np.zeros((4, 6, 1, 1)))], gamma=1.0)
    with pytest.raises(ValueError, match=r"gamma=-1.0 must be >= 0"):
        B.ApproximationPenalty([], gamma=-1.0)
    with pytest.raises(TypeError, match=r"regularizer must be a callable"):
        fit(ml.Sequential(ml.Linear(2, 2)), ml.mse, None, np.zeros((2, 2)), np.zeros((2, 2)), epochs=1, batch_size=2,
            rng=None, regularizer=1.0)


@pytest.mark.parametrize("call, message", [
    (lambda: B.compression_rate(12, 4, 3, 2, 5), r"s=5 must divide c=12"),
    (lambda: B.compression_rate(12, 4, 3, 0, 3), r"m=0 must be >= 1"),
    (lambda: B.basis_flops(12, 4, 3, 2, 7, 5), r"s=7 must divide c=12"),
    (lambda: B.optimal_splits(0, 4, 3), r"c=0 must be >= 1"),
    (lambda: B.basis_flops(12, 4, 3, 2, 3, 0), r"out_hw=0 must be >= 1"),
], ids=["rate-s", "rate-m", "flops-s", "splits-c", "flops-out"])
def test_bad_formula_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_neighbour_correlation_tells_noise_from_smooth_and_alternating_kernels():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((200, 5, 5))
    ramp = np.tile(np.linspace(0, 1, 5), (5, 1)) + 0.01 * rng.standard_normal((5, 5))
    alternating = np.tile([1.0, -1.0, 1.0, -1.0, 1.0], (3, 1))
    assert abs(B.neighbour_correlation(noise)) < 0.05
    assert B.neighbour_correlation(ramp[None]) > 0.8
    assert B.neighbour_correlation(alternating) == pytest.approx(-1.0)
    pairs = noise[..., :-1].ravel(), noise[..., 1:].ravel()
    assert B.neighbour_correlation(noise) == pytest.approx(np.corrcoef(*pairs)[0, 1], rel=1e-12)
    with pytest.raises(ValueError, match="kw >= 2"):
        B.neighbour_correlation(np.ones((3, 1)))
    with pytest.raises(ValueError, match="constant along their rows"):
        B.neighbour_correlation(np.ones((2, 3, 3)))
