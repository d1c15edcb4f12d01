"""Versatile filters (Eq. 2-8): four implementations of one function must agree.

For every seeded random configuration (kernel d = 1..7, both channel modes, channel windows
with delta = c - ĉ and stride g, stride, padding smaller or larger than s, separate / shared /
no bias, concat (Eq. 3) or sum (Eq. 4)) the forward pass, dx, dweight and dbias agree between

* the readable NumPy functions (cropped kernels, Prop. 1), the fast ones
  (``minilib.versatile_fast``, one ring-ordered unfold) and the NumPy layer (which runs the fast ones),
* the NumPy reference (dense masked weight + one plain convolution),
* the PyTorch twin ``minilib.torch.VersatileConv2d`` (autograd), and
* an explicit torch construction written here from the paper: every secondary filter
  M_i ∘ f placed on its channel window, stacked into one dense weight, one ``F.conv2d``.

Then: centred-difference gradient checks of the NumPy layer, the masks of Eq. 2, Eq. 5 for
``combine="sum"``, parameter names and initialisation shared by both backends, and argument
errors raised alike by both backends.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import minilib.torch as mt
from minilib import check_layer_gradients
from minilib import versatile as V
from torch_helpers import assert_close, load_into_torch, to_numpy, to_torch

N_CASES = 42     # 6 per kernel size d = 1..7


# ----------------------------------------------------------------------------- configurations
def _maybe_square(rng, pair):
    """Mostly (a, a), sometimes (a, b): square strides and paddings are the common case."""
    return (int(pair[0]), int(pair[0] if rng.random() < 0.7 else pair[1]))


def _int_or_pair(pair):
    return pair[0] if pair[0] == pair[1] else pair


def versatile_configs(n=N_CASES, seed=7):
    """Random configurations; d, channel mode, bias mode and combine cycle so every mix occurs.

    Keys: N, C, H, W, d, P (primaries), delta, g, stride, padding, bias ("separate", "shared",
    "none"), combine, channel_mode. out_channels follows from P (see ``layer_kwargs``).
    """
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        d = 1 + idx % 7
        g = int(rng.integers(1, 4))
        delta = 0 if idx % 5 == 0 else g * int(rng.integers(0, 3))
        padding = _maybe_square(rng, rng.integers(0, d // 2 + 1, size=2))
        configs.append(dict(
            N=int(rng.integers(1, 3)), C=delta + int(rng.integers(1, 4)),
            H=int(rng.integers(max(1, d - 2 * padding[0]), d + 4)),
            W=int(rng.integers(max(1, d - 2 * padding[1]), d + 4)),
            d=d, P=int(rng.integers(1, 4)), delta=delta, g=g,
            stride=_int_or_pair(_maybe_square(rng, rng.integers(1, 3, size=2))),
            padding=_int_or_pair(padding),
            bias=("separate", "shared", "none")[idx % 3],
            combine="sum" if idx % 4 == 3 else "concat",
            channel_mode=("paper", "official")[(idx // 7) % 2],
        ))
    return configs


def out_channels(cfg):
    s, n = (cfg["d"] + 1) // 2, cfg["delta"] // cfg["g"] + 1
    return cfg["P"] * (s * n if cfg["combine"] == "concat" else n)


def layer_kwargs(cfg):
    return dict(in_channels=cfg["C"], out_channels=out_channels(cfg), kernel_size=cfg["d"], stride=cfg["stride"],
                padding=cfg["padding"], bias=cfg["bias"] != "none", delta=cfg["delta"], g=cfg["g"],
                shared_bias=cfg["bias"] == "shared", combine=cfg["combine"], channel_mode=cfg["channel_mode"])


def function_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], delta=cfg["delta"], g=cfg["g"],
                combine=cfg["combine"], channel_mode=cfg["channel_mode"])


def config_id(i, cfg):
    """A readable pytest id, e.g. ``4-N1C6P1-3x3-d5-delta3g3-s2-p1-shared-concat-paper``."""
    return (f"{i}-N{cfg['N']}C{cfg['C']}P{cfg['P']}-{cfg['H']}x{cfg['W']}-d{cfg['d']}-delta{cfg['delta']}g{cfg['g']}"
            f"-s{cfg['stride']}-p{cfg['padding']}-{cfg['bias']}-{cfg['combine']}-{cfg['channel_mode']}"
            ).replace(" ", "")


CONFIGS = versatile_configs()


def _seen(key):
    return {"pair" if isinstance(c[key], tuple) else c[key] for c in CONFIGS}


def test_configs_cover_the_cases():
    modes = ("paper", "official")
    assert {(c["d"], c["channel_mode"]) for c in CONFIGS} == {(d, m) for d in range(1, 8) for m in modes}
    assert {(c["d"] % 2, c["combine"]) for c in CONFIGS} == {(0, "sum"), (1, "sum"), (0, "concat"), (1, "concat")}
    assert _seen("bias") == {"separate", "shared", "none"}
    assert {1, 2, "pair"} <= _seen("stride") and {0, 1, 2, 3, "pair"} <= _seen("padding")
    assert any(c["delta"] == 0 for c in CONFIGS)
    assert any(c["delta"] > 0 and c["g"] > 1 for c in CONFIGS) and any(c["delta"] > 0 and c["g"] == 1 for c in CONFIGS)
    # padding smaller than the crop i of some secondaries (the twin crops the padded input by i)
    assert any(c["d"] >= 5 and c["padding"] == 0 for c in CONFIGS)


# ----------------------------------------------------------------------------- the paper, written out in torch
def eq2_masks(d):
    """M_i of Eq. 2 (0-based i): 1 where both indices lie in [i, d - i)."""
    idx = torch.arange(d)
    inside = [(idx >= i) & (idx < d - i) for i in range((d + 1) // 2)]
    return torch.stack([(r[:, None] & r[None, :]).double() for r in inside])


def explicit_forward(x, weight, bias, cfg):
    """Eq. 3 / Eq. 4 with Eq. 8 as one convolution: every secondary as a full (c, d, d) filter.

    Row (i*n + j)*P + p (concat) holds M_i ∘ f_p on input channels [j*g, j*g + ĉ); with
    "sum" the s rows of one (j, p) are added. A shared bias (P,) gives output o bias[o % P].
    Returns (out, dense weight).
    """
    c, d, delta, g = cfg["C"], cfg["d"], cfg["delta"], cfg["g"]
    masks, n, c_hat, primaries = eq2_masks(d), delta // g + 1, c - delta, weight.shape[0]
    rows = {}
    for i in range(len(masks)):
        for j in range(n):
            for p in range(primaries):
                window = slice(j * g, j * g + c_hat)
                primary = weight[p, window] if cfg["channel_mode"] == "paper" else weight[p, :c_hat]
                secondary = torch.zeros(c, d, d, dtype=weight.dtype)
                secondary[window] = masks[i] * primary
                o = (i * n + j) * primaries + p if cfg["combine"] == "concat" else j * primaries + p
                rows[o] = rows[o] + secondary if o in rows else secondary
    dense = torch.stack([rows[o] for o in range(len(rows))])
    if bias is not None and bias.shape[0] != dense.shape[0]:
        bias = bias[torch.arange(dense.shape[0]) % primaries]
    return F.conv2d(x, dense, bias, cfg["stride"], cfg["padding"]), dense


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("idx", range(N_CASES), ids=[config_id(i, c) for i, c in enumerate(CONFIGS)])
def test_versatile_implementations_agree(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(100 + idx)
    layer = V.VersatileConv2d(**layer_kwargs(cfg), rng=rng)
    twin = load_into_torch(layer, mt.VersatileConv2d(**layer_kwargs(cfg)))
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w, b = layer.params["weight"], layer.params.get("bias")

    out_fast, cache_fast = V.versatile_conv2d_forward(x, w, b, **function_kwargs(cfg))
    out_rings, cache_rings = V.versatile_conv2d_forward_fast(x, w, b, **function_kwargs(cfg))
    out_ref, cache_ref = V.versatile_conv2d_forward_reference(x, w, b, **function_kwargs(cfg))
    x_twin = to_torch(x, requires_grad=True)
    out_twin = twin(x_twin)
    x_t, w_t = to_torch(x, requires_grad=True), to_torch(w, requires_grad=True)
    b_t = None if b is None else to_torch(b, requires_grad=True)
    out_t, dense_t = explicit_forward(x_t, w_t, b_t, cfg)

    assert_close(V.dense_weight(w, cfg["C"], cfg["delta"], cfg["g"], cfg["combine"], cfg["channel_mode"]),
                 dense_t, "dense_weight")
    outputs = {"fast": out_fast, "rings": out_rings, "reference": out_ref, "layer": layer.forward(x),
               "torch twin": out_twin}
    for name, out in outputs.items():
        assert_close(out, out_t, f"forward ({name})")

    dout = rng.standard_normal(out_fast.shape)
    out_twin.backward(to_torch(dout))
    out_t.backward(to_torch(dout))
    dx_layer = layer.backward(dout)
    grads = {"fast": V.versatile_conv2d_backward(dout, cache_fast),
             "rings": V.versatile_conv2d_backward_fast(dout, cache_rings),
             "reference": V.versatile_conv2d_backward_reference(dout, cache_ref),
             "layer": (dx_layer, layer.grads["weight"], layer.grads.get("bias")),
             "torch twin": (x_twin.grad, twin.weight.grad, None if twin.bias is None else twin.bias.grad)}
    for name, (dx, dweight, dbias) in grads.items():
        assert_close(dx, x_t.grad, f"dx ({name})")
        assert_close(dweight, w_t.grad, f"dweight ({name})")
        if b is None:
            assert dbias is None, f"dbias ({name}) must be None without a bias"
        else:
            assert_close(dbias, b_t.grad, f"dbias ({name})")


GRADCHECK = [
    dict(N=2, C=3, H=5, W=4, d=3, P=2, delta=1, g=1, stride=1, padding=1, bias="shared", combine="concat",
         channel_mode="paper"),
    dict(N=1, C=4, H=6, W=6, d=4, P=1, delta=2, g=2, stride=2, padding=1, bias="separate", combine="sum",
         channel_mode="official"),
    dict(N=2, C=2, H=7, W=6, d=5, P=1, delta=0, g=1, stride=(2, 1), padding=0, bias="separate", combine="concat",
         channel_mode="paper"),
    dict(N=1, C=3, H=4, W=5, d=2, P=2, delta=2, g=1, stride=1, padding=(1, 0), bias="none", combine="concat",
         channel_mode="official"),
]


@pytest.mark.parametrize("cfg", GRADCHECK, ids=[config_id(i, c) for i, c in enumerate(GRADCHECK)])
def test_numpy_layer_gradients_match_centred_differences(cfg):
    rng = np.random.default_rng(5)
    layer = V.VersatileConv2d(**layer_kwargs(cfg), rng=rng)
    errors = check_layer_gradients(layer, rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), rng)
    assert set(errors) == {"x", "weight"} | ({"bias"} if cfg["bias"] != "none" else set())
    assert max(errors.values()) < 1e-7, errors


# ----------------------------------------------------------------------------- masks and Eq. 5
@pytest.mark.parametrize("d", range(1, 8))
def test_secondary_masks(d):
    masks = V.secondary_masks(d)
    s = (d + 1) // 2
    assert masks.shape == (s, d, d) and masks.dtype == np.float64
    assert set(np.unique(masks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(masks, to_numpy(eq2_masks(d)))
    for i, mask in enumerate(masks):
        rows, cols = np.nonzero(mask)
        size = d - 2 * i                                   # the paper's d - 2i + 2 with 1-based i
        assert mask.sum() == size ** 2
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (i, d - 1 - i, i, d - 1 - i)
    # sum_i M_i counts the windows a tap lies in: its ring depth from the border, plus one
    p, q = np.indices((d, d))
    np.testing.assert_array_equal(masks.sum(axis=0), np.minimum.reduce([p, q, d - 1 - p, d - 1 - q]) + 1)
    innermost = np.zeros((d, d))
    innermost[(d - 1) // 2:d // 2 + 1, (d - 1) // 2:d // 2 + 1] = 1    # 1x1 for odd d, 2x2 for even d
    np.testing.assert_array_equal(masks[-1], innermost)
    assert masks[-1].sum() == (1 if d % 2 else 4)


@pytest.mark.parametrize("d", range(1, 8))
def test_sum_of_secondaries_is_one_masked_convolution(d):
    """Eq. 5: sum_i (M_i ∘ f) * x + b = ((sum_i M_i) ∘ f) * x + b."""
    rng = np.random.default_rng(d)
    kwargs = dict(in_channels=3, out_channels=2, kernel_size=d, stride=1 + d % 2, padding=d // 2, combine="sum")
    layer = V.VersatileConv2d(**kwargs, rng=rng)
    twin = load_into_torch(layer, mt.VersatileConv2d(**kwargs))
    x = rng.standard_normal((2, 3, 8, 7))
    w, b = layer.params["weight"], layer.params["bias"]
    combined = F.conv2d(to_torch(x), to_torch(w * V.secondary_masks(d).sum(axis=0)), to_torch(b),
                        kwargs["stride"], kwargs["padding"])
    assert_close(twin(to_torch(x)), combined, "torch twin")
    assert_close(layer.forward(x), combined, "NumPy layer")


# ----------------------------------------------------------------------------- shared contract of both backends
@pytest.mark.parametrize("bias", ["separate", "shared", "none"])
@pytest.mark.parametrize("channel_mode", ["paper", "official"])
def test_state_dict_names_and_shapes_match(bias, channel_mode):
    kwargs = dict(in_channels=5, out_channels=12, kernel_size=3, delta=2, g=1, bias=bias != "none",
                  shared_bias=bias == "shared", channel_mode=channel_mode)
    layer, twin = V.VersatileConv2d(**kwargs, rng=np.random.default_rng(0)), mt.VersatileConv2d(**kwargs)
    numpy_shapes = {k: v.shape for k, v in layer.state_dict().items()}
    torch_shapes = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert numpy_shapes == torch_shapes
    expected = {"weight": (2, 5 if channel_mode == "paper" else 3, 3, 3)}   # P = 12 / (s*n) = 12 / (2*3)
    if bias != "none":
        expected["bias"] = (2,) if bias == "shared" else (12,)
    assert numpy_shapes == expected
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "delta", "g", "shared_bias",
                 "combine", "channel_mode", "s", "n", "c_hat", "primaries"):
        assert getattr(layer, attr) == getattr(twin, attr), attr


@pytest.mark.parametrize("seed", range(4))
def test_same_rng_gives_same_initial_weights(seed):
    kwargs = dict(in_channels=4, out_channels=6 * (seed + 1), kernel_size=5, padding=2, delta=seed % 2,
                  shared_bias=seed >= 2, channel_mode=("paper", "official")[seed % 2])
    kwargs["out_channels"] *= kwargs["delta"] + 1
    layer = V.VersatileConv2d(**kwargs, rng=np.random.default_rng(seed))
    twin = mt.VersatileConv2d(**kwargs, rng=np.random.default_rng(seed), dtype=torch.float64)
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), layer.state_dict()[name], err_msg=name)
    bound = 1 / np.sqrt(layer.params["weight"].shape[1] * 25)
    assert np.abs(layer.params["weight"]).max() <= bound and np.abs(layer.params["bias"]).max() <= bound


def test_torch_default_init_uses_the_conv2d_bound():
    torch.manual_seed(0)
    twin = mt.VersatileConv2d(4, 12, 3, delta=1, channel_mode="official")     # weight (3, 3, 3, 3)
    bound = 1 / np.sqrt(3 * 9)
    for param in (twin.weight, twin.bias):
        assert param.dtype == torch.get_default_dtype()
        assert 0.5 * bound < param.abs().max().item() <= bound


def test_torch_twin_cost_delegates_to_versatile_cost():
    twin = mt.VersatileConv2d(4, 12, 3, padding=1, delta=1)
    layer = V.VersatileConv2d(4, 12, 3, padding=1, delta=1, rng=np.random.default_rng(0))
    out = twin(torch.zeros(1, 4, 6, 6))
    assert twin.cost((4, 6, 6), tuple(out.shape[1:])) == layer.cost((4, 6, 6), (12, 6, 6))
    assert twin.cost((4, 6, 6), (12, 6, 6))["conv_weights"] == twin.weight.numel()
    assert "delta=1" in repr(twin) and "primaries=3" in repr(twin)


# ----------------------------------------------------------------------------- bad input, both backends
BACKENDS = {"numpy": lambda **kw: V.VersatileConv2d(**kw, rng=np.random.default_rng(0)),
            "torch": lambda **kw: mt.VersatileConv2d(**kw)}
GOOD = dict(in_channels=4, out_channels=6, kernel_size=3)
BAD_ARGUMENTS = {
    "out_channels-not-divisible": (dict(out_channels=10, kernel_size=5), ValueError,
                                   r"out_channels=10 must be divisible by s\*n=3"),
    "out_channels-not-divisible-channel": (dict(out_channels=8, delta=2), ValueError,
                                           r"out_channels=8 must be divisible by s\*n=6"),
    "delta-not-multiple-of-g": (dict(delta=3, g=2), ValueError, r"delta=3 must be divisible by g=2"),
    "delta-too-large": (dict(delta=4), ValueError, r"delta=4 must be smaller than in_channels=4"),
    "delta-negative": (dict(delta=-1), ValueError, r"delta=-1 must be >= 0"),
    "g-zero": (dict(g=0), ValueError, r"g=0 must be >= 1"),
    "g-float": (dict(g=1.5), TypeError, r"g must be an int"),
    "combine-unknown": (dict(combine="mean"), ValueError, r"combine='mean' must be one of"),
    "channel_mode-unknown": (dict(channel_mode="both"), ValueError, r"channel_mode='both' must be one of"),
    "kernel_size-not-square": (dict(kernel_size=(3, 5)), ValueError, r"kernel_size=\(3, 5\) must be square"),
    "stride-zero": (dict(stride=0), ValueError, r"stride=0 must be >= 1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding=-1 must be >= 0"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_fail_alike(backend, case):
    changes, error, message = BAD_ARGUMENTS[case]
    with pytest.raises(error, match=message):
        BACKENDS[backend](**{**GOOD, **changes})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, message", [((1, 3, 5, 5), r"x has 3 channels but the layer expects in_channels=4"),
                                            ((5, 5), r"x must have 4 dimensions"),
                                            ((1, 4, 1, 5), r"kernel_size=.* larger than the padded input 1x5")],
                         ids=["channels", "ndim", "too-small"])
def test_forward_rejects_bad_input(backend, shape, message):
    layer = BACKENDS[backend](**GOOD)
    x = np.zeros(shape)
    with pytest.raises(ValueError, match=message):
        layer.forward(x if backend == "numpy" else to_torch(x).float())
