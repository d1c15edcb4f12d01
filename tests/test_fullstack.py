"""Full-stack filters (Han et al., NeurIPS 2019, Eq. 1-14): the NumPy layer, its masks, penalty and formulas.

* Eq. 12-13 (multiply each patch by each full-stack filter once, then ±1-masked sums) against the
  dense reference (M∘B weight + one ordinary convolution), forward and every gradient, in seeded
  random configurations; the patch-by-patch loop that counts its multiplications; the output
  order o -> (filter o mod k, mask o // k or o) written out channel by channel.
* Gradients: centred differences for x, filters and bias; the STE mask gradient against dL/dM of
  the dense weight (and centred differences with M treated as continuous), cut by 1[|latent| <= 1].
* Eq. 7: value and gradient, the released mean form, OrthoPenalty alone and inside fit.
* Eq. 9, 10, 14 against direct counts from layers; cost / mask_bits through summarize.
* learn_masks=False (the "-Rand" rows), initialisation, dtypes, bad input.
"""
import math

import numpy as np
import pytest

import minilib as ml
from minilib import fullstack as FS
from minilib.accounting import memory_kb, summarize
from minilib.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive
from minilib.gradcheck import check_layer_gradients, numeric_gradient, rel_error
from minilib.train import fit
from torch_helpers import assert_close

N_CASES = 40     # every (s, d) with s = 1..8 and d = 1..5 once


# ----------------------------------------------------------------------------- configurations
def fullstack_configs(n=N_CASES, seed=23):
    """Random configurations; s and d cycle so that every pair occurs, the mask mode alternates by blocks of 8.

    Keys: N, C, F (out_channels), H, W, d, s, k, n_filters (None or k: the ceil cases, k*s > F),
    masks, stride, padding, bias.
    """
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        s, d = 1 + idx % 8, 1 + idx % 5
        k = int(rng.integers(1, 4))
        ceil = idx % 4 in (1, 2) and s > 1
        n_out = k * s - int(rng.integers(1, s)) if ceil else k * s
        padding = int(rng.integers(0, d // 2 + 1))
        configs.append(dict(
            N=int(rng.integers(1, 4)), C=int(rng.integers(1, 5)), F=n_out, d=d, s=s, k=k,
            n_filters=k if ceil else None, masks=FS.MASK_MODES[(idx // 8) % 2],
            H=int(rng.integers(max(1, d - 2 * padding), d + 5)), W=int(rng.integers(max(1, d - 2 * padding), d + 5)),
            stride=int(rng.integers(1, 3)), padding=padding, bias=idx % 3 != 2))
    return configs


CONFIGS = fullstack_configs()


def config_id(i, cfg):
    nf = f"-nf{cfg['n_filters']}" if cfg["n_filters"] else ""
    return (f"{i}-{cfg['masks']}-N{cfg['N']}C{cfg['C']}F{cfg['F']}-{cfg['H']}x{cfg['W']}-d{cfg['d']}-s{cfg['s']}"
            f"k{cfg['k']}{nf}-st{cfg['stride']}-pad{cfg['padding']}-{'bias' if cfg['bias'] else 'nobias'}")


IDS = [config_id(i, c) for i, c in enumerate(CONFIGS)]


def make_layer(cfg, rng, **kw):
    return FS.FullStackConv2d(cfg["C"], cfg["F"], cfg["d"], cfg["s"], stride=cfg["stride"], padding=cfg["padding"],
                              bias=cfg["bias"], masks=cfg["masks"], n_filters=cfg["n_filters"], rng=rng, **kw)


def spread_latent(layer, rng):
    """Latents beyond ±1 (the STE cuts their gradient) and exact zeros (sign(0) = +1), in place."""
    latent = layer.mask_latent
    latent *= 1.6
    latent.flat[rng.choice(latent.size, size=max(1, latent.size // 10), replace=False)] = 0.0


def functional_args(layer):
    return (layer.filters, layer.mask_latent, layer.bias, layer.stride, layer.padding, layer.out_channels,
            layer.masks)


def test_configs_cover_the_cases():
    assert {(c["s"], c["d"]) for c in CONFIGS} == {(s, d) for s in range(1, 9) for d in range(1, 6)}
    for masks in FS.MASK_MODES:
        chosen = [c for c in CONFIGS if c["masks"] == masks]
        assert {c["s"] for c in chosen} == set(range(1, 9)), masks
        assert any(c["n_filters"] and c["k"] * c["s"] > c["F"] for c in chosen), masks     # ceil cases
    assert {c["stride"] for c in CONFIGS} == {1, 2} and {c["bias"] for c in CONFIGS} == {True, False}
    assert {c["padding"] for c in CONFIGS} == {0, 1, 2}
    assert all(c["padding"] <= c["d"] // 2 for c in CONFIGS)


# ----------------------------------------------------------------------------- Eq. 12-13 = dense reference = layer
@pytest.mark.parametrize("idx", range(N_CASES), ids=IDS)
def test_eq13_and_dense_reference_agree(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(100 + idx)
    layer = make_layer(cfg, rng)
    spread_latent(layer, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    out, cache = FS.fullstack_conv2d_forward(x, *functional_args(layer))
    ref, cache_ref = FS.fullstack_conv2d_forward_dense(x, *functional_args(layer))
    assert out.shape == (cfg["N"], cfg["F"], *ref.shape[2:])
    assert_close(out, ref, "forward")
    assert_close(layer.forward(x), ref, "layer forward")

    dout = rng.standard_normal(out.shape)
    fast = FS.fullstack_conv2d_backward(dout, cache)
    dense = FS.fullstack_conv2d_backward_dense(dout, cache_ref)
    for name, a, b in zip(("dx", "dfilters", "dmask_latent", "dbias"), fast, dense):
        if b is None:
            assert a is None and not cfg["bias"], name
        else:
            assert_close(a, b, name)
    assert_close(layer.backward(dout), dense[0], "layer dx")
    for key, expected in (("filters", dense[1]), ("mask_latent", dense[2]), ("bias", dense[3])):
        if expected is not None:
            assert_close(layer.grads[key], expected, f"layer grad {key}")
    assert set(layer.grads) == set(layer.params)


@pytest.mark.parametrize("idx", range(0, N_CASES, 3), ids=IDS[::3])
def test_output_o_uses_filter_o_mod_k_and_its_mask(idx):
    """Eq. 3-5 channel by channel, with naive loops: out[:, o] = conv(x, b_{o mod k} ∘ m_(o)) + bias[o]."""
    cfg, rng = CONFIGS[idx], np.random.default_rng(200 + idx)
    layer = make_layer(cfg, rng)
    spread_latent(layer, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    out = layer.forward(x)
    k, masks = layer.n_filters, np.where(layer.mask_latent >= 0, 1.0, -1.0)
    for o in range(cfg["F"]):
        mask = masks[o // k] if cfg["masks"] == "shared" else masks[o]
        sub_filter = (layer.filters[o % k] * mask)[None]
        bias = None if layer.bias is None else layer.bias[o:o + 1]
        expected = conv2d_forward_naive(x, sub_filter, bias, cfg["stride"], cfg["padding"])[0][:, 0]
        assert_close(out[:, o], expected, f"output {o}")


@pytest.mark.parametrize("idx", range(1, N_CASES, 4), ids=IDS[1::4])
def test_patch_loop_counts_k_c_d2_multiplications_per_position(idx):
    """Eq. 13 with explicit adds and subtracts: same output, and exactly multiplication_count's "fast" MULs."""
    cfg, rng = CONFIGS[idx], np.random.default_rng(300 + idx)
    layer = make_layer(cfg, rng)
    spread_latent(layer, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    out, ops = FS.fullstack_conv2d_forward_naive(x, *functional_args(layer))
    assert_close(out, layer.forward(x), "loop forward")
    positions = out.shape[2] * out.shape[3]
    taps = cfg["C"] * cfg["d"] ** 2
    counts = FS.multiplication_count(layer, out.shape[2:])
    assert ops["multiplications"] == cfg["N"] * counts["fast"] == cfg["N"] * positions * cfg["k"] * taps
    assert ops["additions"] == cfg["N"] * positions * cfg["F"] * (taps - 1 + cfg["bias"])
    assert counts["dense"] == positions * cfg["F"] * taps


def test_dense_implementation_of_the_layer_gives_the_same_numbers():
    rng = np.random.default_rng(4)
    layer = FS.FullStackConv2d(3, 7, 3, 3, padding=1, masks="separate", n_filters=3, rng=rng)
    x = rng.standard_normal((2, 3, 6, 5))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    grads = {key: g.copy() for key, g in layer.grads.items()}
    layer.implementation = "dense"
    assert_close(layer.forward(x), out, "forward")
    assert_close(layer.backward(dout), dx, "dx")
    for key, grad in grads.items():
        assert_close(layer.grads[key], grad, key)
    layer.implementation = "fast"
    with pytest.raises(ValueError, match=r"implementation='fast' must be one of 'eq13', 'dense'"):
        layer.forward(x)


# ----------------------------------------------------------------------------- gradients
GRADCHECK = [
    dict(N=2, C=2, F=6, H=5, W=4, d=3, s=3, k=2, n_filters=None, masks="shared", stride=1, padding=1, bias=True),
    dict(N=1, C=3, F=5, H=6, W=5, d=2, s=3, k=2, n_filters=2, masks="separate", stride=2, padding=1, bias=True),
    dict(N=2, C=1, F=4, H=4, W=4, d=1, s=4, k=1, n_filters=None, masks="separate", stride=1, padding=0, bias=False),
    dict(N=1, C=2, F=7, H=7, W=6, d=5, s=4, k=2, n_filters=2, masks="shared", stride=2, padding=2, bias=True),
]
GRAD_IDS = [config_id(i, c) for i, c in enumerate(GRADCHECK)]


@pytest.mark.parametrize("cfg", GRADCHECK, ids=GRAD_IDS)
def test_filter_bias_and_input_gradients_match_centred_differences(cfg):
    """Exact gradients for x, filters, bias (the masks are fixed by their signs under small steps)."""
    rng = np.random.default_rng(5)
    layer = make_layer(cfg, rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    assert rel_error(dx, numeric_gradient(lambda: layer.forward(x), x, dout)) < 1e-6
    for key in ("filters", "bias") if cfg["bias"] else ("filters",):
        numeric = numeric_gradient(lambda: layer.forward(x), layer.params[key], dout)
        assert rel_error(layer.grads[key], numeric) < 1e-6, key


@pytest.mark.parametrize("cfg", GRADCHECK, ids=GRAD_IDS)
def test_fixed_masks_layer_passes_the_generic_gradient_check(cfg):
    """With learn_masks=False every parameter is differentiable: check_layer_gradients covers all of them."""
    rng = np.random.default_rng(6)
    layer = make_layer(cfg, rng, learn_masks=False)
    errors = check_layer_gradients(layer, rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), rng)
    assert set(errors) == {"x", "filters"} | ({"bias"} if cfg["bias"] else set())
    assert max(errors.values()) < 1e-6, errors


def _masks_gradient_by_hand(layer, x, dout):
    """dL/dM of the dense weight pushed through the masks: dW by minilib.conv, dM_(o) += dW[o] ∘ b_{o mod k}."""
    binary = layer.binary_masks()
    weight = FS.dense_weight(layer.filters, binary, layer.out_channels, layer.masks)
    _, cache = conv2d_forward(x, weight, layer.bias, layer.stride, layer.padding)
    dweight = conv2d_backward(dout, cache)[1]
    dmasks = np.zeros_like(binary)
    for o in range(layer.out_channels):
        j = o // layer.n_filters if layer.masks == "shared" else o
        dmasks[j] += dweight[o] * layer.filters[o % layer.n_filters]
    return dmasks


@pytest.mark.parametrize("cfg", GRADCHECK, ids=GRAD_IDS)
def test_ste_mask_gradient_is_dL_dM_cut_by_the_clip(cfg):
    rng = np.random.default_rng(7)
    layer = make_layer(cfg, rng)
    spread_latent(layer, rng)
    inside = np.abs(layer.mask_latent) <= 1
    assert inside.any() and not inside.all()
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    dout = rng.standard_normal(layer.forward(x).shape)
    layer.backward(dout)
    dmasks = _masks_gradient_by_hand(layer, x, dout)
    assert_close(layer.grads["mask_latent"], dmasks * inside, "STE")
    assert not layer.grads["mask_latent"][~inside].any()
    # the same dL/dM by centred differences, treating M as a continuous array of the dense weight
    binary = layer.binary_masks()

    def loss():
        weight = FS.dense_weight(layer.filters, binary, layer.out_channels, layer.masks)
        return conv2d_forward(x, weight, layer.bias, layer.stride, layer.padding)[0]

    assert rel_error(dmasks, numeric_gradient(loss, binary, dout)) < 1e-6


def test_sign_of_zero_is_plus_one():
    latent = np.array([-0.0, 0.0, -1e-300, 1e-300, -2.0, 3.0])
    np.testing.assert_array_equal(FS.binarize(latent), [1, 1, -1, 1, -1, 1])
    assert FS.binarize(latent.astype(np.float32)).dtype == np.float32
    layer = FS.FullStackConv2d(2, 4, 3, 2, rng=np.random.default_rng(0))
    layer.mask_latent[...] = 0.0
    np.testing.assert_array_equal(layer.dense_weight(), layer.filters[[0, 1, 0, 1]])    # every mask all +1
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4))
    layer.backward(np.ones_like(layer.forward(x)))
    assert layer.grads["mask_latent"].any()        # |0| <= 1: the STE lets the gradient through


# ----------------------------------------------------------------------------- Eq. 7
def _eq7_continuous(m_columns):
    """1/2 ||M^T M / D - I||_F^2 of real columns M (D, s), written out for the test."""
    d, s = m_columns.shape
    return 0.5 * np.sum((m_columns.T @ m_columns / d - np.eye(s)) ** 2)


ORTHO_CASES = [    # masks, c, k, d, n (n < k*s: a ceil case)
    ("shared", 2, 1, 3, 4), ("shared", 3, 2, 2, 5), ("shared", 1, 1, 5, 3),
    ("separate", 2, 3, 3, 9), ("separate", 2, 2, 3, 7), ("separate", 1, 4, 1, 4),
]


@pytest.mark.parametrize("masks, c, k, d, n", ORTHO_CASES)
def test_ortho_loss_value_and_gradient(masks, c, k, d, n):
    rng = np.random.default_rng(c * 10 + n)
    layer = FS.FullStackConv2d(c, n, d, -(-n // k), masks=masks, n_filters=k, rng=rng)
    spread_latent(layer, rng)
    value, grad = FS.ortho_loss(layer.mask_latent, None if masks == "shared" else k)
    assert (value, grad.tolist()) == (layer.ortho_loss()[0], layer.ortho_loss()[1].tolist())
    binary = layer.binary_masks().reshape(layer.mask_latent.shape[0], -1)
    groups = [binary] if masks == "shared" else [binary[i::k] for i in range(k)]     # filter i: masks i, i+k, ...
    assert math.isclose(value, sum(_eq7_continuous(g.T) for g in groups), rel_tol=1e-12)
    # dL/dM by centred differences with M continuous, then the STE window
    flat = binary.copy()
    rows = [slice(None)] if masks == "shared" else [slice(i, None, k) for i in range(k)]
    numeric = numeric_gradient(lambda: sum(_eq7_continuous(flat[r].T) for r in rows), flat)
    inside = np.abs(layer.mask_latent) <= 1
    assert_close(grad, numeric.reshape(grad.shape) * inside, "STE of dL/dM")


def test_ortho_loss_vanishes_for_orthogonal_masks():
    """Hadamard rows are orthogonal ±1 vectors: M^T M / D = I, so L = 0 and the gradient is 0."""
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=float)
    latent = 0.5 * hadamard.reshape(4, 1, 2, 2)
    value, grad = FS.ortho_loss(latent)
    assert value == 0 and not grad.any()
    value, _ = FS.ortho_loss(np.stack([latent[0], latent[0], latent[1]]))   # two equal masks: correlation 1
    assert math.isclose(value, 0.5 * 2 * 1.0 ** 2)


@pytest.mark.parametrize("masks, c, k, d, n", ORTHO_CASES)
def test_ortho_loss_released_differs_by_the_stated_factors(masks, c, k, d, n):
    rng = np.random.default_rng(n)
    layer = FS.FullStackConv2d(c, n, d, -(-n // k), masks=masks, n_filters=k, rng=rng)
    spread_latent(layer, rng)
    paper, dpaper = layer.ortho_loss()
    released, dreleased = layer.ortho_loss(released=True)
    assert (released, dreleased.tolist()) == tuple(
        v.tolist() if isinstance(v, np.ndarray) else v for v in FS.ortho_loss_released(layer.mask_latent))
    m = layer.mask_latent.shape[0]
    if masks == "shared":
        # one set of s masks: the mean over s^2 entries of ||.||^2 is 2/s^2 times 1/2 ||.||^2
        assert math.isclose(released, 2 / m ** 2 * paper, rel_tol=1e-12)
        assert_close(dreleased, 2 / m ** 2 * dpaper, "gradient factor")
    else:
        # all n masks at once: the k per-filter blocks (2x Eq. 7) plus the cross-filter correlations
        binary = layer.binary_masks().reshape(m, -1)
        gram = binary @ binary.T / binary.shape[1] - np.eye(m)
        same_filter = (np.arange(m)[:, None] % k) == (np.arange(m)[None, :] % k)
        cross = np.sum(gram[~same_filter] ** 2)
        assert math.isclose(released * m ** 2, 2 * paper + cross, rel_tol=1e-12)
        assert k == 1 or cross > 0


def test_released_equals_paper_up_to_the_factor_for_one_separate_filter():
    latent = np.random.default_rng(3).uniform(-1, 1, size=(5, 2, 3, 3))
    paper, dpaper = FS.ortho_loss(latent, n_filters=1)
    released, dreleased = FS.ortho_loss_released(latent)
    assert math.isclose(released, 2 / 25 * paper, rel_tol=1e-12)
    assert_close(dreleased, 2 / 25 * dpaper, "gradient")


def test_ortho_penalty_adds_lambda_times_its_gradient():
    rng = np.random.default_rng(8)
    shared = FS.FullStackConv2d(2, 6, 3, 3, padding=1, rng=rng)
    separate = FS.FullStackConv2d(6, 4, 3, 2, padding=1, masks="separate", rng=rng)
    fixed = FS.FullStackConv2d(4, 4, 1, 2, learn_masks=False, rng=rng)
    model = ml.Sequential(shared, ml.ReLU(), separate, fixed)
    penalty = FS.OrthoPenalty(model, lam=0.25)
    assert penalty.layers == [shared, separate]                  # fixed masks have no gradient to add to
    out = model.forward(rng.standard_normal((2, 2, 5, 5)))
    model.backward(rng.standard_normal(out.shape))
    before = {id(layer): {key: g.copy() for key, g in layer.grads.items()} for layer in (shared, separate, fixed)}
    expected = 0.25 * (shared.ortho_loss()[0] + separate.ortho_loss()[0])
    assert math.isclose(penalty.value(), expected) and math.isclose(penalty(), expected)
    for layer in (shared, separate):
        grads = before[id(layer)]
        assert_close(layer.grads["mask_latent"], grads["mask_latent"] + 0.25 * layer.ortho_loss()[1], "mask grad")
        np.testing.assert_array_equal(layer.grads["filters"], grads["filters"])
    assert all(np.array_equal(fixed.grads[key], g) for key, g in before[id(fixed)].items())
    released = FS.OrthoPenalty([shared], lam=2.0, released=True)
    assert math.isclose(released.value(), 2.0 * FS.ortho_loss_released(shared.mask_latent)[0])


@pytest.mark.parametrize("masks", FS.MASK_MODES)
def test_fit_with_the_ortho_penalty_decorrelates_the_masks(masks):
    """Zero task loss: gradient steps on λ L_ortho alone (through the STE) flip mask signs towards orthogonality."""
    rng = np.random.default_rng(1)
    layer = FS.FullStackConv2d(2, 8, 3, 4, masks=masks, rng=rng)
    model = ml.Sequential(layer)
    start = layer.ortho_loss()[0]
    history = fit(model, lambda scores, y: (0.0, np.zeros_like(scores)), ml.SGD(model, lr=1.0),
                  np.zeros((4, 2, 3, 3)), np.zeros(4), epochs=60, batch_size=4, rng=rng, log=None,
                  progress="epoch", regularizer=FS.OrthoPenalty(model, lam=1.0))
    assert history["penalty"][0] == start
    assert np.mean(history["penalty"][-20:]) < 0.7 * start


# ----------------------------------------------------------------------------- Eq. 9, 10, 14 and cost
@pytest.mark.parametrize("c, d, s, k", [(1, 5, 10, 2), (20, 5, 10, 5), (16, 3, 4, 8), (3, 1, 7, 3), (8, 3, 64, 1)])
def test_compression_ratios_and_mul_reduction_from_layers(c, d, s, k):
    """Eq. 9, 10, 14 = dense 32-bit weights / (32-bit filters + 1-bit masks / 32), and dense / fast MULs (n = k*s)."""
    n = k * s
    dense_weights = n * c * d * d
    out_hw = (4, 3)
    for masks, ratio in (("shared", FS.compression_ratio_shared(s, k)), ("separate", FS.compression_ratio_separate(s))):
        layer = FS.FullStackConv2d(c, n, d, s, masks=masks, bias=False, rng=np.random.default_rng(0))
        cost = layer.cost((c, 9, 9), (n, *out_hw))
        assert cost["conv_weights"] == layer.filters.size == k * c * d * d
        assert cost["mask_bits"] == layer.mask_latent.size == (s if masks == "shared" else n) * c * d * d
        assert math.isclose(dense_weights / (cost["conv_weights"] + cost["mask_bits"] / 32), ratio, rel_tol=1e-12)
        assert math.isclose(32 * dense_weights / 8 / 1024 / memory_kb(cost["conv_weights"], cost["mask_bits"]), ratio,
                            rel_tol=1e-12)
        counts = FS.multiplication_count(layer, out_hw)
        assert counts["dense"] == counts["fast"] * FS.mul_reduction(s) == n * c * d * d * 12
    assert FS.compression_ratio_shared(s, k) >= FS.compression_ratio_separate(s)     # shared masks store fewer bits


def test_ceil_case_saves_n_over_k_not_s():
    layer = FS.FullStackConv2d(20, 50, 5, 20, n_filters=3, rng=np.random.default_rng(0))     # the paper's LeNet, s=20
    counts = FS.multiplication_count(layer, (8, 8))
    assert counts == {"fast": 3 * 20 * 25 * 64, "dense": 50 * 20 * 25 * 64}
    assert math.isclose(counts["dense"] / counts["fast"], 50 / 3) and 50 / 3 < FS.mul_reduction(20)


def test_lenet_conv2_sized_shared_layer_multiplies_s_times_less():
    """c = 20 -> n = 20 channels, 5x5 kernels on 12x12 maps, k = 2, s = 10: exactly 1/s of the dense MULs."""
    layer = FS.FullStackConv2d(20, 20, 5, 10, masks="shared", rng=np.random.default_rng(0))
    assert layer.n_filters == 2
    out = layer.forward(np.random.default_rng(1).standard_normal((1, 20, 12, 12)))
    counts = FS.multiplication_count(layer, out.shape[2:])
    assert counts == {"fast": 2 * 20 * 25 * 64, "dense": 20 * 20 * 25 * 64} == {"fast": 64_000, "dense": 640_000}
    assert counts["fast"] * 10 == counts["dense"]
    assert layer.cost((20, 12, 12), out.shape[1:])["flops"] == counts["fast"]


def test_summarize_uses_the_layer_cost():
    rng = np.random.default_rng(9)
    model = ml.Sequential(FS.FullStackConv2d(1, 20, 5, 10, rng=rng), ml.ReLU(), ml.MaxPool2d(2),
                          FS.FullStackConv2d(20, 50, 5, 20, masks="separate", n_filters=3, rng=rng), ml.ReLU(),
                          FS.FullStackConv2d(50, 8, 4, 4, learn_masks=False, bias=False, rng=rng), ml.Flatten())
    summary = summarize(model, (1, 28, 28))
    first, second, third = summary.rows[0], summary.rows[3], summary.rows[5]
    assert (first.conv_weights, first.mask_bits, first.params, first.flops) == (2 * 25, 10 * 25, 50 + 20, 2 * 25 * 576)
    assert (second.conv_weights, second.mask_bits, second.params, second.flops) == (
        3 * 500, 50 * 500, 1500 + 50, 3 * 500 * 64)
    assert (third.conv_weights, third.mask_bits, third.params, third.flops) == (2 * 800, 4 * 800, 1600, 2 * 800 * 25)
    assert summary.mask_bits == 10 * 25 + 50 * 500 + 4 * 800
    assert math.isclose(summary.memory_kb, (32 * summary.conv_weights + summary.mask_bits) / 8 / 1024)


# ----------------------------------------------------------------------------- fixed masks, init, dtypes
def test_fixed_masks_are_a_buffer_without_gradient_or_update():
    rng = np.random.default_rng(10)
    layer = FS.FullStackConv2d(2, 6, 3, 3, padding=1, learn_masks=False, rng=rng)
    assert set(layer.params) == set(layer.grads) == {"filters", "bias"}
    assert list(layer.buffers) == ["mask_latent"] and layer.mask_latent is layer.buffers["mask_latent"]
    model = ml.Sequential(layer, ml.Flatten())
    assert list(model.state_dict()) == ["0.filters", "0.bias", "0.mask_latent"]
    assert model.num_parameters() == layer.filters.size + 6
    latent, filters = layer.mask_latent.copy(), layer.filters.copy()
    for optimizer in (ml.SGD(model, lr=0.5, momentum=0.9), ml.Adam(model, lr=0.1)):
        model.zero_grad()
        model.backward(np.ones_like(model.forward(rng.standard_normal((2, 2, 4, 4)))))
        assert "mask_latent" not in layer.grads
        optimizer.step()
        assert "0.mask_latent" not in optimizer.state
    np.testing.assert_array_equal(layer.mask_latent, latent)
    assert not np.array_equal(layer.filters, filters)
    other = FS.FullStackConv2d(2, 6, 3, 3, padding=1, learn_masks=False, rng=np.random.default_rng(0))
    ml.Sequential(other, ml.Flatten()).load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.mask_latent, latent)


def test_initialisation_draws_filters_mask_latent_bias_in_order():
    """The contract both backends follow (same rng -> same arrays in NumPy and torch)."""
    for masks, rows in (("shared", 3), ("separate", 7)):
        for learn in (True, False):
            layer = FS.FullStackConv2d(4, 7, (3, 2), 3, masks=masks, n_filters=3, learn_masks=learn,
                                       rng=np.random.default_rng(3))
            rng = np.random.default_rng(3)
            bound = 1 / math.sqrt(4 * 3 * 2)
            expected = {"filters": rng.uniform(-bound, bound, size=(3, 4, 3, 2)),
                        "mask_latent": rng.uniform(-1, 1, size=(rows, 4, 3, 2)),
                        "bias": rng.uniform(-bound, bound, size=(7,))}
            state = layer.state_dict()
            for name, value in expected.items():
                np.testing.assert_array_equal(state[name], value, err_msg=f"{masks} {learn} {name}")
            assert list(state) == (["filters", "mask_latent", "bias"] if learn else ["filters", "bias", "mask_latent"])
    layer = FS.FullStackConv2d(4, 8, 3, 2, stride=(2, 1), padding=1, bias=False)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.s,
            layer.n_filters, layer.masks, layer.learn_masks) == (4, 8, (3, 3), (2, 1), (1, 1), 2, 4, "shared", True)
    assert layer.bias is None and "bias" not in layer.params and layer.implementation == "eq13"
    assert "k=4" in repr(layer)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    for masks in FS.MASK_MODES:
        layer = FS.FullStackConv2d(4, 6, 3, 2, padding=1, masks=masks, rng=rng).astype(np.float32)
        out = layer.forward(rng.standard_normal((2, 4, 5, 5)).astype(np.float32))
        dx = layer.backward(np.ones_like(out))
        assert out.dtype == dx.dtype == np.float32
        assert all(g.dtype == np.float32 for g in layer.grads.values())
        assert layer.ortho_loss()[1].dtype == np.float32


def test_large_batch_runs_in_several_chunks():
    """Many images: the batch is cut into cache-sized chunks; the result must not depend on the cut."""
    rng = np.random.default_rng(11)
    layer = FS.FullStackConv2d(8, 12, 3, 4, padding=1, masks="separate", rng=rng)
    x = rng.standard_normal((40, 8, 12, 12))
    out, cache = FS.fullstack_conv2d_forward(x, *functional_args(layer))
    ref, cache_ref = FS.fullstack_conv2d_forward_dense(x, *functional_args(layer))
    assert_close(out, ref, "forward")
    dout = rng.standard_normal(out.shape)
    for name, a, b in zip(("dx", "dfilters", "dmask_latent", "dbias"), FS.fullstack_conv2d_backward(dout, cache),
                          FS.fullstack_conv2d_backward_dense(dout, cache_ref)):
        assert_close(a, b, name)


# ----------------------------------------------------------------------------- bad input
GOOD = dict(in_channels=3, out_channels=6, kernel_size=3, s=3)
BAD_ARGUMENTS = {
    "s-not-dividing": (dict(out_channels=50, s=20), ValueError,
                       r"out_channels=50 must be divisible by s=20: k = out_channels/s .* n_filters=3 = ceil\(50/20\)"),
    "k-times-s-too-small": (dict(out_channels=50, s=20, n_filters=2), ValueError,
                            r"n_filters\*s = 2\*20 = 40 must be >= out_channels=50"),
    "k-above-n": (dict(out_channels=4, s=3, n_filters=5), ValueError, r"n_filters=5 must be <= out_channels=4"),
    "masks-string": (dict(masks="individual"), ValueError, r"masks='individual' must be one of 'shared', 'separate'"),
    "s-zero": (dict(s=0), ValueError, r"s=0 must be >= 1"),
    "s-negative": (dict(s=-2), ValueError, r"s=-2 must be >= 1"),
    "s-float": (dict(s=2.0), TypeError, r"s must be an int"),
    "n-filters-zero": (dict(n_filters=0), ValueError, r"n_filters=0 must be >= 1"),
    "learn-masks": (dict(learn_masks="yes"), TypeError, r"learn_masks must be True or False"),
    "stride-zero": (dict(stride=0), ValueError, r"stride=0 must be >= 1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding=-1 must be >= 0"),
    "kernel-zero": (dict(kernel_size=0), ValueError, r"kernel_size=0 must be >= 1"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments(case):
    changes, error, message = BAD_ARGUMENTS[case]
    with pytest.raises(error, match=message):
        FS.FullStackConv2d(**{**GOOD, **changes})


def test_bad_forward_input():
    layer = FS.FullStackConv2d(**GOOD, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x has 4 channels but the layer expects in_channels=3"):
        layer.forward(np.zeros((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions"):
        layer.forward(np.zeros((3, 5, 5)))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        layer.backward(np.zeros((1, 6, 3, 3)))
    out = layer.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"dout has shape \(1, 5, 3, 3\) but the forward output had shape \(1, 6"):
        layer.backward(np.zeros((1, 5, *out.shape[2:])))


def test_bad_functional_input():
    x, filters, shared = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros((3, 3, 3, 3))
    with pytest.raises(ValueError, match=r"x has 4 channels but filters expect in_channels=3"):
        FS.fullstack_conv2d_forward(np.zeros((1, 4, 5, 5)), filters, shared)
    with pytest.raises(ValueError, match=r"mask_latent has shape \(3, 3, 2, 2\) but filters \(2, 3, 3, 3\)"):
        FS.fullstack_conv2d_forward(x, filters, np.zeros((3, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"out_channels=7 must be between k=2 and k\*s=6"):
        FS.fullstack_conv2d_forward(x, filters, shared, out_channels=7)
    with pytest.raises(ValueError, match=r"out_channels=5 but separate masks need one mask per output"):
        FS.fullstack_conv2d_forward_dense(x, filters, shared, out_channels=5, masks="separate")
    with pytest.raises(ValueError, match=r"bias has shape \(5,\) but the layer has out_channels=6"):
        FS.fullstack_conv2d_forward(x, filters, shared, np.zeros(5))
    with pytest.raises(ValueError, match=r"masks='both' must be one of"):
        FS.fullstack_conv2d_forward_naive(x, filters, shared, masks="both")
    with pytest.raises(ValueError, match=r"mask_latent must have 4 dimensions"):
        FS.ortho_loss(np.zeros((3, 27)))
    with pytest.raises(TypeError, match=r"model_or_layers\[0\] must be a FullStackConv2d, got Conv2d"):
        FS.OrthoPenalty([ml.Conv2d(1, 1, 1)])
    with pytest.raises(ValueError, match=r"lam=-0.1 must be >= 0"):
        FS.OrthoPenalty([], lam=-0.1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: FS.compression_ratio_shared(0, 2), ValueError, r"s=0 must be >= 1"),
    (lambda: FS.compression_ratio_shared(4, 0), ValueError, r"k=0 must be >= 1"),
    (lambda: FS.compression_ratio_separate(1.5), TypeError, r"s must be an int"),
    (lambda: FS.mul_reduction(-1), ValueError, r"s=-1 must be >= 1"),
    (lambda: FS.multiplication_count(FS.FullStackConv2d(**GOOD), (0, 3)), ValueError, r"out_hw=\(0, 3\) must be >= 1"),
], ids=["shared-s", "shared-k", "separate-s", "mul-s", "count-out"])
def test_bad_formula_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()
