"""The fast versatile convolution (``minilib.versatile_fast``) computes what the readable cropped
version and the dense reference compute (float64, forward, dx, dweight, dbias), in every branch:
concat through the ring GEMMs with either backward form (the unfold of the padded running sums,
or the fold), both unfold layouts (few and many channels), channel windows n > 1 in both channel
modes, ``combine="sum"`` through Eq. 5, strides, padding smaller than the crop i, separate, shared
or no bias; float32 stays float32; an empty batch gives empty outputs and zero gradients; bad
arguments fail as they do on the readable path. Also: the ring order of the taps (Eq. 2's masks,
ring by ring) and that ``VersatileConv2d`` runs the fast path.
"""
import numpy as np
import pytest

from minilib import unfold
from minilib import versatile as V
from minilib import versatile_fast as VF
from minilib.im2col import window_geometry

N_CASES = 64


# ----------------------------------------------------------------------------- the ring order
@pytest.mark.parametrize("d", range(1, 9))
def test_rings_split_the_masks_and_every_window_is_a_suffix(d):
    masks = V.secondary_masks(d)
    rings = VF.ring_taps(d)
    taps = [tap for ring in rings for tap in ring]
    assert sorted(taps) == [(a, b) for a in range(d) for b in range(d)]        # every tap exactly once
    assert [tap for ring in VF.ring_blocks(d) for rows, cols in ring for tap in
            [(a, b) for a in rows for b in cols]] == taps
    for i, ring in enumerate(rings):
        ring_mask = np.zeros((d, d))
        ring_mask[tuple(np.array(ring).T)] = 1
        below = masks[i + 1] if i + 1 < len(masks) else 0
        np.testing.assert_array_equal(ring_mask, masks[i] - below)              # R_i = M_i - M_{i+1}
        start = sum(len(r) for r in rings[:i])                                  # window i = taps[start:]
        assert sorted(taps[start:]) == sorted(zip(*np.nonzero(masks[i])))
    assert len(VF.ring_blocks(d)[0]) == (2 if d > 2 else 1)                     # two copies per ring


# ----------------------------------------------------------------------------- configurations
def fast_configs(n=N_CASES, seed=11):
    """Random configurations cycling through the branches (see ``test_configs_cover_every_branch``)."""
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        d = int(rng.integers(1, 8))
        g = int(rng.integers(1, 3))
        n_windows = 1 if idx % 3 else int(rng.integers(2, 4))
        delta = g * (n_windows - 1)
        c_hat = 17 + idx % 4 if idx % 4 == 1 else int(rng.integers(1, 5))    # both unfold layouts
        same = idx % 2 == 0                     # stride 1 and 'same' or wider padding: the correlation form
        stride = 1 if same else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (d // 2 + int(rng.integers(0, 2))) if same else int(rng.integers(0, (d + 1) // 2))
        h, w = (int(rng.integers(max(1, d - 2 * padding), d + 4)) for _ in range(2))
        configs.append(dict(N=int(rng.integers(1, 4)), C=c_hat + delta, H=h, W=w, d=d, P=int(rng.integers(1, 4)),
                            delta=delta, g=g, stride=stride, padding=padding,
                            bias=("separate", "shared", "none")[idx % 3],
                            combine="sum" if idx % 5 == 4 else "concat",
                            channel_mode=("paper", "official")[(idx // 2) % 2]))
    return configs


CONFIGS = fast_configs()


def out_channels(cfg):
    s, n = (cfg["d"] + 1) // 2, cfg["delta"] // cfg["g"] + 1
    return cfg["P"] * (s * n if cfg["combine"] == "concat" else n)


def arguments(cfg, rng, dtype=np.float64):
    """x, weight, bias and the keyword arguments of one configuration."""
    c_hat = cfg["C"] - cfg["delta"]
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    weight = rng.standard_normal((cfg["P"], cfg["C"] if cfg["channel_mode"] == "paper" else c_hat,
                                  cfg["d"], cfg["d"])).astype(dtype)
    bias = {"separate": rng.standard_normal(out_channels(cfg)), "shared": rng.standard_normal(cfg["P"]),
            "none": None}[cfg["bias"]]
    kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], delta=cfg["delta"], g=cfg["g"],
                  combine=cfg["combine"], channel_mode=cfg["channel_mode"])
    return x, weight, None if bias is None else bias.astype(dtype), kwargs


def branch(cfg):
    """(combine, backward form, unfold by row, n > 1) of a configuration, as the fast path decides them."""
    shape = V.versatile_shape(cfg["C"], out_channels(cfg), cfg["d"], cfg["delta"], cfg["g"], cfg["combine"],
                              cfg["channel_mode"])
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    geometry = window_geometry(x_shape, (cfg["d"], cfg["d"]), cfg["stride"], cfg["padding"])
    form = "correlation" if VF.backward_by_correlation(x_shape, geometry, shape) else "fold"
    return cfg["combine"], form, unfold.unfolds_by_row(1, shape.c_hat), shape.n > 1


def test_configs_cover_every_branch():
    seen = {branch(cfg) for cfg in CONFIGS}
    for form in ("correlation", "fold"):
        for by_row in (True, False):
            assert ("concat", form, by_row, False) in seen
        assert ("concat", form, False, True) in seen
    assert {("sum", b[2], b[3]) for b in seen if b[0] == "sum"} >= {("sum", False, False), ("sum", False, True)}
    assert {c["bias"] for c in CONFIGS} == {"separate", "shared", "none"}
    assert {c["channel_mode"] for c in CONFIGS if c["delta"]} == {"paper", "official"}
    assert any(c["padding"] < (c["d"] - 1) // 2 for c in CONFIGS)      # negative effective padding p - i
    assert any(isinstance(c["stride"], tuple) and c["stride"] != (1, 1) for c in CONFIGS)


def config_id(i, cfg):
    combine, form, by_row, _ = branch(cfg)
    return (f"{i}-d{cfg['d']}-C{cfg['C']}-delta{cfg['delta']}g{cfg['g']}-s{cfg['stride']}-p{cfg['padding']}"
            f"-{cfg['bias']}-{combine}-{cfg['channel_mode']}-{form}-{'rows' if by_row else 'cols'}").replace(" ", "")


# ----------------------------------------------------------------------------- fast == cropped == reference
@pytest.mark.parametrize("idx", range(N_CASES), ids=[config_id(i, c) for i, c in enumerate(CONFIGS)])
def test_fast_path_equals_cropped_and_reference(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(200 + idx)
    x, weight, bias, kwargs = arguments(cfg, rng)
    out, cache = V.versatile_conv2d_forward_fast(x, weight, bias, **kwargs)
    out_cropped, cache_cropped = V.versatile_conv2d_forward(x, weight, bias, **kwargs)
    out_ref, cache_ref = V.versatile_conv2d_forward_reference(x, weight, bias, **kwargs)
    np.testing.assert_allclose(out, out_cropped, rtol=1e-12, atol=1e-12, err_msg="forward vs cropped")
    np.testing.assert_allclose(out, out_ref, rtol=1e-12, atol=1e-12, err_msg="forward vs reference")
    dout = rng.standard_normal(out.shape)
    grads = V.versatile_conv2d_backward_fast(dout, cache)
    for name, other in (("cropped", V.versatile_conv2d_backward(dout, cache_cropped)),
                        ("reference", V.versatile_conv2d_backward_reference(dout, cache_ref))):
        for label, mine, theirs in zip(("dx", "dweight", "dbias"), grads, other):
            if theirs is None:
                assert mine is None, f"{label} must be None without a bias"
            else:
                assert mine.shape == theirs.shape, label
                np.testing.assert_allclose(mine, theirs, rtol=1e-11, atol=1e-11, err_msg=f"{label} vs {name}")


def test_the_comparison_can_fail():
    """A wrong ring order would be caught: swap two taps of the outer ring in the weight rows."""
    cfg = next(c for c in CONFIGS if branch(c)[:2] == ("concat", "fold") and c["d"] >= 3)
    x, weight, bias, kwargs = arguments(cfg, np.random.default_rng(0))
    swapped = weight.copy()
    swapped[:, :, 0, 0], swapped[:, :, 0, 1] = weight[:, :, 0, 1], weight[:, :, 0, 0]
    out, _ = V.versatile_conv2d_forward_fast(x, swapped, bias, **kwargs)
    assert not np.allclose(out, V.versatile_conv2d_forward(x, weight, bias, **kwargs)[0])


@pytest.mark.parametrize("idx", [i for i, c in enumerate(CONFIGS) if c["N"] > 1][:8])
def test_float32_stays_float32(idx):
    cfg = CONFIGS[idx]
    x, weight, bias, kwargs = arguments(cfg, np.random.default_rng(300 + idx), np.float32)
    out, cache = V.versatile_conv2d_forward_fast(x, weight, bias, **kwargs)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    grads = V.versatile_conv2d_backward_fast(dout, cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads if g is not None)
    x64, w64, b64 = (None if a is None else a.astype(np.float64) for a in (x, weight, bias))
    out64, cache64 = V.versatile_conv2d_forward_reference(x64, w64, b64, **kwargs)
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-4)
    for mine, ref in zip(grads, V.versatile_conv2d_backward_reference(dout.astype(np.float64), cache64)):
        if ref is not None:
            np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("combine, padding, stride", [("concat", 2, 1), ("concat", 0, 1), ("concat", 1, 2),
                                                      ("sum", 2, 1)],
                         ids=["correlation", "fold", "fold-strided", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch(combine, padding, stride, dtype):
    x = np.zeros((0, 5, 7, 7), dtype=dtype)
    weight = np.random.default_rng(0).standard_normal((2, 5, 5, 5)).astype(dtype)
    kwargs = dict(stride=stride, padding=padding, delta=2, g=1, combine=combine)
    out, cache = V.versatile_conv2d_forward_fast(x, weight, np.ones(2, dtype=dtype), **kwargs)
    ref, _ = V.versatile_conv2d_forward(x, weight, np.ones(2, dtype=dtype), **kwargs)
    assert out.shape == ref.shape and out.shape[0] == 0 and out.dtype == dtype
    dx, dweight, dbias = V.versatile_conv2d_backward_fast(np.zeros(out.shape, dtype=dtype), cache)
    assert dx.shape == x.shape and dweight.shape == weight.shape and dbias.shape == (2,)
    assert dx.dtype == dweight.dtype == dbias.dtype == dtype
    assert not dweight.any() and not dbias.any()


# ----------------------------------------------------------------------------- the layer and bad input
@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_the_layer_runs_the_fast_path(combine):
    layer = V.VersatileConv2d(4, 6 if combine == "concat" else 2, 3, padding=1, combine=combine, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 5))
    out = layer.forward(x)
    assert isinstance(layer.cache, V.FastCache) and layer.cache.kind == combine
    np.testing.assert_allclose(out, V.versatile_conv2d_forward(x, layer.weight, layer.bias, padding=1,
                                                               combine=combine)[0], rtol=1e-12, atol=1e-12)


BAD_CALLS = {
    "x-ndim": (lambda x, w: (x[0], w, None), {}, r"x must have 4 dimensions"),
    "weight-not-square": (lambda x, w: (x, w[..., :2], None), {}, r"must be square"),
    "weight-channels": (lambda x, w: (x, w[:, :3], None), {}, r"weight has shape \(2, 3, 3, 3\), expected"),
    "bias-length": (lambda x, w: (x, w, np.ones(5)), {}, r"bias has shape \(5,\)"),
    "delta-too-large": (lambda x, w: (x, w, None), dict(delta=4), r"delta=4 must be smaller than in_channels=4"),
    "combine": (lambda x, w: (x, w, None), dict(combine="mean"), r"combine='mean' must be one of"),
    "too-small": (lambda x, w: (x[..., :1, :], w, None), {}, r"larger than the padded input"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_fail_as_on_the_readable_path(case):
    make, kwargs, message = BAD_CALLS[case]
    args = make(np.zeros((1, 4, 5, 5)), np.zeros((2, 4, 3, 3)))
    for forward in (V.versatile_conv2d_forward_fast, V.versatile_conv2d_forward):
        with pytest.raises(ValueError, match=message):
            forward(*args, **kwargs)


@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_backward_rejects_a_gradient_of_the_wrong_shape(combine):
    out, cache = V.versatile_conv2d_forward_fast(np.zeros((1, 4, 5, 5)), np.zeros((2, 4, 3, 3)), combine=combine)
    with pytest.raises(ValueError, match="dout"):
        V.versatile_conv2d_backward_fast(np.zeros(out.shape[:1] + (out.shape[1] + 1,) + out.shape[2:]), cache)
