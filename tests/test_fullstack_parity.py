"""Full-stack filters (Eq. 3-7): the NumPy paths, the torch twin and a plain torch construction must agree.

For every seeded random configuration (shared / separate masks, s = 1..8, d = 1..5, stride 1-2,
padding 0..d//2, bias on/off, k = n/s or k = ceil(n/s) given as ``n_filters``) the forward pass,
dx, dfilters, dbias and the straight-through dmask_latent agree between

* the NumPy layer on its Eq. 12-13 path (multiply once per full-stack filter, then ±1-masked sums),
* the NumPy layer on its dense path (one convolution with the dense weight M∘B),
* the PyTorch twin ``minilib.torch.FullStackConv2d`` (custom autograd Function for the STE), and
* one ``F.conv2d`` with a dense weight built here, row o = b_{o mod k} ∘ m_(o), whose masks use the
  straight-through trick written out: M = h + (sign(latent) - h).detach() with h = latent * 1[|latent| <= 1],
  so M has the value sign(latent) (sign(0) = +1) and the gradient 1[|latent| <= 1].

The latents are drawn from U(-1.5, 1.5) with some exact 0 and ±1 entries, so sign(0) and both
sides of the STE's clipping window are exercised. Then: Eq. 7 (and the released variant) and its
gradient, NumPy against torch autograd; state_dict names; initialisation from one NumPy
Generator; fixed masks (learn_masks=False); cost; bad input.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import minilib as ml
import minilib.fullstack as FS
import minilib.torch as mt
from minilib.accounting import summarize
from torch_helpers import assert_close, load_into_torch, to_numpy, to_torch

N_CASES = 40     # every (d, s) with d = 1..5 and s = 1..8 once
MASK_MODES = ("shared", "separate")


# ----------------------------------------------------------------------------- configurations
def fullstack_configs(n=N_CASES, seed=31):
    """Random configurations; (d, s) run through all 40 pairs, masks alternate so each d and s sees both.

    Keys: N, C, F (n), H, W, kernel (kh, kw), s, k, n_filters (None or k), masks, stride, padding, bias.
    Every third configuration with s > 1 takes k = ceil(n/s) with s not dividing n (``n_filters``);
    every seventh has a rectangular kernel (d, d+1).
    """
    rng = np.random.default_rng(seed)
    configs = []
    for idx in range(n):
        d, s = 1 + idx % 5, 1 + (idx // 5) % 8
        kernel = (d, d + 1) if idx % 7 == 6 else (d, d)
        k = int(rng.integers(1, 4))
        if idx % 3 == 0 and s > 1:
            n_out, n_filters = int(rng.integers(max(k, (k - 1) * s + 1), k * s)), k        # ceil(n/s) = k
        else:
            n_out, n_filters = k * s, None
        padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in kernel)
        configs.append(dict(
            N=int(rng.integers(1, 4)), C=int(rng.integers(1, 4)), F=n_out, kernel=kernel, s=s, k=k,
            n_filters=n_filters, masks=MASK_MODES[(idx % 5 + idx // 5) % 2],
            H=int(rng.integers(max(1, kernel[0] - 2 * padding[0]), kernel[0] + 5)),
            W=int(rng.integers(max(1, kernel[1] - 2 * padding[1]), kernel[1] + 5)),
            stride=int(rng.integers(1, 3)), padding=padding, bias=idx % 4 != 3))
    return configs


CONFIGS = fullstack_configs()


def config_id(i, cfg):
    nf = f"nf{cfg['n_filters']}" if cfg["n_filters"] else "k=n/s"
    return (f"{i}-N{cfg['N']}C{cfg['C']}F{cfg['F']}-{cfg['H']}x{cfg['W']}-k{cfg['kernel'][0]}x{cfg['kernel'][1]}"
            f"-s{cfg['s']}-{nf}-{cfg['masks']}-st{cfg['stride']}-pad{cfg['padding'][0]}x{cfg['padding'][1]}"
            f"-{'bias' if cfg['bias'] else 'nobias'}")


def layer_kwargs(cfg, **changes):
    return dict(in_channels=cfg["C"], out_channels=cfg["F"], kernel_size=cfg["kernel"], s=cfg["s"],
                stride=cfg["stride"], padding=cfg["padding"], bias=cfg["bias"], masks=cfg["masks"],
                n_filters=cfg["n_filters"], **changes)


def test_configs_cover_the_cases():
    assert {(c["kernel"][0], c["s"]) for c in CONFIGS} == {(d, s) for d in range(1, 6) for s in range(1, 9)}
    for mode in MASK_MODES:
        assert {c["s"] for c in CONFIGS if c["masks"] == mode} == set(range(1, 9)), mode
        assert {c["kernel"][0] for c in CONFIGS if c["masks"] == mode} == set(range(1, 6)), mode
        assert any(c["n_filters"] and c["F"] % c["s"] for c in CONFIGS if c["masks"] == mode), mode
    assert {c["stride"] for c in CONFIGS} == {1, 2} and {False, True} == {c["bias"] for c in CONFIGS}
    assert {0, 1, 2} <= {c["padding"][0] for c in CONFIGS}
    assert any(c["kernel"][0] != c["kernel"][1] for c in CONFIGS)
    for c in CONFIGS:
        assert (c["F"] == c["k"] * c["s"]) if c["n_filters"] is None else (-(-c["F"] // c["s"]) == c["k"])


# ----------------------------------------------------------------------------- Eq. 3-5 written out in torch
def plain_sign(latent):
    """sign with sign(0) = +1."""
    return torch.where(latent >= 0, torch.ones_like(latent), -torch.ones_like(latent))


def plain_ste(latent):
    """Value sign(latent), gradient 1[|latent| <= 1]: the straight-through trick with a detached difference."""
    inside = latent * (latent.abs() <= 1)
    return inside + (plain_sign(latent) - inside).detach()


def plain_dense_weight(filters, masks, n, mode):
    """W (n, c, kh, kw): row o = b_{o mod k} ∘ m_{o // k} (shared, Eq. 3) or b_{o mod k} ∘ m_o (separate, Eq. 5)."""
    k = filters.shape[0]
    return torch.stack([filters[o % k] * masks[o // k if mode == "shared" else o] for o in range(n)])


def leaf(a):
    return None if a is None else to_torch(a, requires_grad=True)


def spread_latent(layer, rng):
    """Replace the latent by U(-1.5, 1.5) with a few exact 0, +1 and -1 (sign(0) and the STE window's edges)."""
    latent = rng.uniform(-1.5, 1.5, size=layer.mask_latent.shape)
    flat = latent.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 3), replace=False)
    flat[picks] = [0.0, 1.0, -1.0][:picks.size]
    layer.mask_latent[...] = latent


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("idx", range(N_CASES), ids=[config_id(i, c) for i, c in enumerate(CONFIGS)])
def test_numpy_paths_twin_and_plain_convolution_agree(idx):
    cfg, rng = CONFIGS[idx], np.random.default_rng(300 + idx)
    layer = FS.FullStackConv2d(**layer_kwargs(cfg), rng=rng)
    spread_latent(layer, rng)
    dense_layer = FS.FullStackConv2d(**layer_kwargs(cfg), rng=rng)
    dense_layer.load_state_dict(layer.state_dict())
    dense_layer.implementation = "dense"
    twin = load_into_torch(layer, mt.FullStackConv2d(**layer_kwargs(cfg)))
    assert twin.n_filters == layer.n_filters == cfg["k"]
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))

    filters_t, latent_t, bias_t, x_t = leaf(layer.filters), leaf(layer.mask_latent), leaf(layer.bias), leaf(x)
    weight_t = plain_dense_weight(filters_t, plain_ste(latent_t), cfg["F"], cfg["masks"])
    out_t = F.conv2d(x_t, weight_t, bias_t, cfg["stride"], cfg["padding"])
    assert_close(layer.dense_weight(), weight_t, "dense_weight (NumPy)")
    assert_close(twin.dense_weight(), weight_t, "dense_weight (torch twin)")

    x_twin = to_torch(x, requires_grad=True)
    out_twin = twin(x_twin)
    assert_close(layer.forward(x), out_t, "forward (NumPy Eq. 13)")
    assert_close(dense_layer.forward(x), out_t, "forward (NumPy dense)")
    assert_close(out_twin, out_t, "forward (torch twin)")

    dout = rng.standard_normal(tuple(out_t.shape))
    out_t.backward(to_torch(dout))
    out_twin.backward(to_torch(dout))
    expected = {"x": x_t.grad, "filters": filters_t.grad, "mask_latent": latent_t.grad}
    twin_grads = {"x": x_twin.grad, "filters": twin.filters.grad, "mask_latent": twin.mask_latent.grad}
    if cfg["bias"]:
        expected["bias"], twin_grads["bias"] = bias_t.grad, twin.bias.grad
    else:
        assert twin.bias is None and layer.bias is None
    for label, numpy_layer in (("NumPy Eq. 13", layer), ("NumPy dense", dense_layer)):
        dx = numpy_layer.backward(dout)
        numpy_grads = {"x": dx, **numpy_layer.grads}
        assert set(numpy_grads) == set(expected), label
        for name, grad in expected.items():
            assert_close(numpy_grads[name], grad, f"d{name} ({label})")
    for name, grad in expected.items():
        assert_close(twin_grads[name], grad, f"d{name} (torch twin)")
    assert not to_numpy(twin.mask_latent.grad)[np.abs(layer.mask_latent) > 1].any()      # the clipped STE


def test_twin_passes_a_centred_difference_gradient_check():
    """dx, dfilters and dbias of the twin by centred differences (the masks are constant for small steps)."""
    twin = mt.FullStackConv2d(3, 6, 3, 3, stride=2, padding=1, masks="separate", n_filters=2,
                              rng=np.random.default_rng(0), dtype=torch.float64)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    latent = twin.mask_latent.detach()

    def run(x, filters, bias):
        return torch.func.functional_call(twin, {"filters": filters, "mask_latent": latent, "bias": bias}, (x,))

    assert_close(run(x, twin.filters, twin.bias),
                 F.conv2d(x, plain_dense_weight(twin.filters, plain_sign(latent), 6, "separate"), twin.bias, 2, 1),
                 "twin vs plain forward")
    assert torch.autograd.gradcheck(run, (x, twin.filters.detach().clone().requires_grad_(True),
                                          twin.bias.detach().clone().requires_grad_(True)))


def test_binarize_is_sign_with_a_clipped_straight_through_gradient():
    latent = torch.tensor([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    masks = mt.binarize(latent)
    np.testing.assert_array_equal(to_numpy(masks), [-1, -1, -1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(to_numpy(masks), FS.binarize(to_numpy(latent)))
    grad = torch.arange(1.0, 9.0, dtype=torch.float64)
    masks.backward(grad)
    np.testing.assert_array_equal(to_numpy(latent.grad), [0, 2, 3, 4, 5, 6, 7, 0])
    np.testing.assert_array_equal(to_numpy(latent.grad), FS.ste_gradient(to_numpy(grad), to_numpy(latent.detach())))
    assert masks.dtype == torch.float64 and mt.binarize(latent.float()).dtype == torch.float32


# ----------------------------------------------------------------------------- Eq. 7: orthogonality of the masks
def plain_ortho(latent, groups):
    """1/2 sum_g ||M_g^T M_g / D - I||_F^2 with M_g the columns ``groups[g]`` of the masks (plain STE)."""
    columns = plain_ste(latent).reshape(latent.shape[0], -1).T
    total = 0.0
    for rows in groups:
        m = columns[:, rows]
        total = total + 0.5 * (m.T @ m / m.shape[0] - torch.eye(len(rows), dtype=m.dtype)).square().sum()
    return total


ORTHO_CASES = [CONFIGS[i] for i in range(0, N_CASES, 3)]


@pytest.mark.parametrize("cfg", ORTHO_CASES, ids=[config_id(3 * i, c) for i, c in enumerate(ORTHO_CASES)])
def test_ortho_loss_and_its_gradient_agree_with_torch_autograd(cfg):
    rng = np.random.default_rng(cfg["F"] * 7 + cfg["s"])
    layer = FS.FullStackConv2d(**layer_kwargs(cfg), rng=rng)
    spread_latent(layer, rng)
    twin = load_into_torch(layer, mt.FullStackConv2d(**layer_kwargs(cfg)))
    k, rows = layer.n_filters, layer.mask_latent.shape[0]
    groups = [list(range(rows))] if cfg["masks"] == "shared" else [list(range(i, rows, k)) for i in range(k)]

    value, grad = layer.ortho_loss()
    loss = twin.ortho_loss()
    loss.backward()
    latent_t = leaf(layer.mask_latent)
    plain = plain_ortho(latent_t, groups)
    plain.backward()
    assert_close(value, plain, "Eq. 7 value (NumPy)")
    assert_close(loss, plain, "Eq. 7 value (torch twin)")
    assert_close(grad, latent_t.grad, "Eq. 7 dmask_latent (NumPy)")
    assert_close(twin.mask_latent.grad, latent_t.grad, "Eq. 7 dmask_latent (torch twin)")

    value, grad = layer.ortho_loss(released=True)
    twin.mask_latent.grad = None
    loss = twin.ortho_loss(released=True)
    loss.backward()
    assert_close(loss, value, "released value")
    assert_close(twin.mask_latent.grad, grad, "released dmask_latent")
    if cfg["masks"] == "shared":       # mean over s^2 entries instead of 1/2 the sum
        assert_close(loss * rows ** 2 / 2, plain, "released = 2/s^2 Eq. 7 for shared masks")


def test_ortho_loss_is_zero_for_orthogonal_masks_and_functions_match_numpy():
    """Two rows of a 4x4 Hadamard matrix as masks (c=1, 2x2): M^T M = D I, so L = 0 and dL/dM = 0."""
    latent = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, -0.5, 0.5, -0.5]], dtype=torch.float64).reshape(2, 1, 2, 2)
    latent.requires_grad_(True)
    loss = mt.ortho_loss(latent)
    loss.backward()
    assert loss.item() == 0.0 and not latent.grad.any()
    latent = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (6, 2, 3, 3)), requires_grad=True)
    for n_filters in (None, 2, 4):
        assert_close(mt.ortho_loss(latent, n_filters), FS.ortho_loss(to_numpy(latent), n_filters)[0],
                     f"n_filters={n_filters}")
    assert_close(mt.ortho_loss_released(latent), FS.ortho_loss_released(to_numpy(latent))[0], "released")
    with pytest.raises(ValueError, match=r"mask_latent must be a 4-dimensional tensor"):
        mt.ortho_loss(latent[0])


def numpy_model(rng, learn_last=True):
    return ml.Sequential(FS.FullStackConv2d(3, 8, 3, 4, padding=1, rng=rng), ml.ReLU(),
                         FS.FullStackConv2d(8, 6, 3, 3, masks="separate", rng=rng),
                         FS.FullStackConv2d(6, 4, 1, 2, rng=rng, learn_masks=learn_last))


def torch_model(rng=None, learn_last=True):
    return nn.Sequential(mt.FullStackConv2d(3, 8, 3, 4, padding=1, rng=rng, dtype=torch.float64), nn.ReLU(),
                         mt.FullStackConv2d(8, 6, 3, 3, masks="separate", rng=rng, dtype=torch.float64),
                         mt.FullStackConv2d(6, 4, 1, 2, rng=rng, learn_masks=learn_last, dtype=torch.float64))


@pytest.mark.parametrize("released", [False, True])
def test_ortho_penalty_matches_the_numpy_regularizer(released):
    """λ sum_l L_ortho over the layers with learned masks (Eq. 8); a layer with fixed masks is left out."""
    model = numpy_model(np.random.default_rng(2), learn_last=False)
    twin = load_into_torch(model, torch_model(learn_last=False))
    penalty = FS.OrthoPenalty(model, lam=0.3, released=released)
    model.zero_grad()
    value = penalty()
    loss = mt.ortho_penalty(twin, lam=0.3, released=released)
    loss.backward()
    assert_close(loss, value, "penalty value")
    for i in (0, 2):
        assert_close(twin[i].mask_latent.grad, model[i].grads["mask_latent"], f"layer {i} dmask_latent")
    assert twin[3].mask_latent.grad is None and "mask_latent" not in model[3].grads
    assert mt.ortho_penalty(nn.Sequential(nn.Conv2d(1, 1, 1))).item() == 0.0
    with pytest.raises(ValueError, match=r"lam=-1 must be >= 0"):
        mt.ortho_penalty(twin, lam=-1)


def test_ortho_penalty_groups_layers_of_one_shape_into_one_product():
    """Layers with separate masks of one shape and one k are summed in one batched product: the same value and
    gradients as the layers' own ortho_loss, for two groups of alike layers, a lone one, shared masks, and a
    layer whose last filter owns fewer masks (n not a multiple of k)."""
    rng = np.random.default_rng(4)
    layers = [mt.FullStackConv2d(4, 6, 3, 2, masks="separate", n_filters=4, rng=rng, dtype=torch.float64),
              mt.FullStackConv2d(6, 6, 3, 3, rng=rng, dtype=torch.float64),
              mt.FullStackConv2d(4, 6, 3, 2, masks="separate", n_filters=4, rng=rng, dtype=torch.float64),
              mt.FullStackConv2d(4, 8, 3, 2, masks="separate", rng=rng, dtype=torch.float64),
              mt.FullStackConv2d(4, 8, 3, 2, masks="separate", rng=rng, dtype=torch.float64),
              mt.FullStackConv2d(6, 5, 1, 2, masks="separate", n_filters=3, rng=rng, dtype=torch.float64)]
    model = nn.Sequential(*layers)
    latents = [layer.mask_latent for layer in layers]
    penalty = mt.ortho_penalty(model, lam=0.2)
    one_by_one = 0.2 * sum(layer.ortho_loss() for layer in layers)
    assert_close(penalty, one_by_one, "penalty value")
    for i, (found, expected) in enumerate(zip(torch.autograd.grad(penalty, latents),
                                              torch.autograd.grad(one_by_one, latents))):
        assert_close(found, expected, f"layer {i} dmask_latent")
    with pytest.raises(TypeError, match="mask_latent must be float32 or float64"):
        mt.ortho_penalty(nn.Sequential(layers[0].half()))


# ----------------------------------------------------------------------------- shared contract of both backends
STATE_CASES = {"shared": {}, "separate": {"masks": "separate"}, "no-bias": {"bias": False},
               "fixed-masks": {"learn_masks": False}, "ceil": {"n_filters": 2, "masks": "separate"}}


@pytest.mark.parametrize("case", STATE_CASES)
def test_state_dict_names_shapes_and_attributes_match(case):
    kwargs = dict(in_channels=5, out_channels=6, kernel_size=(3, 2), s=4 if case == "ceil" else 3, padding=1,
                  **STATE_CASES[case])
    layer, twin = FS.FullStackConv2d(**kwargs, rng=np.random.default_rng(0)), mt.FullStackConv2d(**kwargs)
    numpy_shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert list(numpy_shapes) == list(twin.state_dict())
    assert numpy_shapes == {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    k = 2
    expected = {"filters": (k, 5, 3, 2), "mask_latent": (6 if kwargs.get("masks") == "separate" else 3, 5, 3, 2),
                "bias": (6,)}
    if not kwargs.get("bias", True):
        del expected["bias"]
    assert numpy_shapes == expected
    learned = kwargs.get("learn_masks", True)
    assert [name for name, _ in twin.named_parameters()] == [n for n in expected if learned or n != "mask_latent"]
    assert [name for name, _ in twin.named_buffers()] == ([] if learned else ["mask_latent"])
    assert set(layer.params) == {name for name, _ in twin.named_parameters()}
    assert set(layer.buffers) == {name for name, _ in twin.named_buffers()}
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "s", "n_filters", "masks",
                 "learn_masks"):
        assert getattr(layer, attr) == getattr(twin, attr), attr


@pytest.mark.parametrize("seed", range(5))
def test_same_rng_gives_same_initial_weights(seed):
    kwargs = dict(in_channels=1 + seed, out_channels=(4, 6, 5, 8, 9)[seed], kernel_size=1 + seed,
                  s=(2, 3, 2, 4, 3)[seed], masks=MASK_MODES[seed % 2], bias=seed != 2, learn_masks=seed != 3,
                  n_filters=3 if seed == 2 else None)
    layer = FS.FullStackConv2d(**kwargs, rng=np.random.default_rng(seed))
    twin = mt.FullStackConv2d(**kwargs, rng=np.random.default_rng(seed), dtype=torch.float64)
    assert list(twin.state_dict()) == list(layer.state_dict())
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), layer.state_dict()[name], err_msg=name)
    model, twin_model = numpy_model(np.random.default_rng(seed)), torch_model(np.random.default_rng(seed))
    for name, value in twin_model.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), model.state_dict()[name], err_msg=name)


def test_torch_default_init_uses_the_conv2d_bound_and_rademacher_latents():
    torch.manual_seed(0)
    twin = mt.FullStackConv2d(8, 12, 3, 4, masks="separate")          # c*d*d = 72
    assert twin.filters.dtype == twin.mask_latent.dtype == torch.get_default_dtype()
    for param, bound in ((twin.filters, 1 / np.sqrt(72)), (twin.bias, 1 / np.sqrt(72)), (twin.mask_latent, 1.0)):
        assert 0.5 * bound < param.abs().max().item() <= bound
    masks = twin.binary_masks()
    assert set(masks.unique().tolist()) == {-1.0, 1.0} and abs(masks.mean().item()) < 0.1


def test_fixed_masks_are_a_buffer_without_gradient_in_both_backends():
    kwargs = dict(in_channels=3, out_channels=6, kernel_size=3, s=3, padding=1, masks="separate", learn_masks=False)
    layer = FS.FullStackConv2d(**kwargs, rng=np.random.default_rng(0))
    twin = load_into_torch(layer, mt.FullStackConv2d(**kwargs))
    assert "mask_latent" not in layer.params and "mask_latent" in layer.buffers and "mask_latent" not in layer.grads
    assert "mask_latent" in dict(twin.named_buffers()) and "mask_latent" not in dict(twin.named_parameters())
    assert not twin.mask_latent.requires_grad
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    out = twin(to_torch(x))
    assert_close(layer.forward(x), out, "forward")
    before = twin.mask_latent.clone()
    optimizer = torch.optim.SGD(twin.parameters(), lr=1.0)
    out.square().sum().backward()
    optimizer.step()
    assert twin.mask_latent.grad is None and torch.equal(twin.mask_latent, before)
    assert twin.filters.grad is not None
    layer.backward(np.ones(tuple(out.shape)))
    assert set(layer.grads) == {"filters", "bias"}
    twin.float()
    assert twin.mask_latent.dtype == torch.float32 and "learn_masks=False" in repr(twin)
    assert mt.FullStackConv2d(**kwargs).ortho_loss().requires_grad is False


def test_torch_twin_cost_delegates_to_fullstack_cost():
    kwargs = dict(in_channels=4, out_channels=10, kernel_size=3, s=4, n_filters=3, padding=1, masks="separate")
    twin, layer = mt.FullStackConv2d(**kwargs), FS.FullStackConv2d(**kwargs, rng=np.random.default_rng(0))
    out = twin(torch.zeros(1, 4, 6, 6))
    assert twin.cost((4, 6, 6), tuple(out.shape[1:])) == layer.cost((4, 6, 6), (10, 6, 6))
    assert twin.cost((4, 6, 6), (10, 6, 6)) == {"conv_weights": twin.filters.numel(),
                                                 "mask_bits": twin.mask_latent.numel(),
                                                 "params": twin.filters.numel() + 10, "flops": 3 * 4 * 9 * 36}
    assert FS.multiplication_count(twin, (6, 6)) == FS.multiplication_count(layer, (6, 6))
    model, twin_model = numpy_model(np.random.default_rng(0)), torch_model()
    numpy_summary, torch_summary = summarize(model, (3, 7, 7)), summarize(twin_model, (3, 7, 7))
    assert torch_summary.totals == numpy_summary.totals
    assert torch_summary.mask_bits == sum(m.mask_latent.numel() for m in twin_model if hasattr(m, "mask_latent"))
    text = repr(twin)
    assert "s=4" in text and "n_filters=3" in text and "masks='separate'" in text


# ----------------------------------------------------------------------------- bad input, both backends
BACKENDS = {"numpy": lambda **kw: FS.FullStackConv2d(**kw, rng=np.random.default_rng(0)),
            "torch": lambda **kw: mt.FullStackConv2d(**kw)}
GOOD = dict(in_channels=3, out_channels=6, kernel_size=3, s=3)
BAD_ARGUMENTS = {
    "s-not-dividing-n": (dict(s=4), ValueError, r"out_channels=6 must be divisible by s=4.*n_filters=2"),
    "too-few-filters": (dict(s=4, n_filters=1), ValueError, r"n_filters\*s = 1\*4 = 4 must be >= out_channels=6"),
    "too-many-filters": (dict(s=1, n_filters=7), ValueError, r"n_filters=7 must be <= out_channels=6"),
    "s-zero": (dict(s=0), ValueError, r"s=0 must be >= 1"),
    "s-float": (dict(s=1.5), TypeError, r"s must be an int"),
    "masks": (dict(masks="individual"), ValueError, r"masks='individual' must be one of 'shared', 'separate'"),
    "learn_masks": (dict(learn_masks="yes"), TypeError, r"learn_masks must be True or False"),
    "stride-zero": (dict(stride=0), ValueError, r"stride=0 must be >= 1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding=-1 must be >= 0"),
    "kernel-pair-of-three": (dict(kernel_size=(3, 3, 3)), TypeError, r"kernel_size must be an int or a pair"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_fail_alike(backend, case):
    changes, error, message = BAD_ARGUMENTS[case]
    with pytest.raises(error, match=message):
        BACKENDS[backend](**{**GOOD, **changes})


@pytest.mark.parametrize("shape, message", [((1, 4, 5, 5), r"x has 4 channels but the layer expects in_channels=3"),
                                            ((3, 5, 5), r"x must have 4 dimensions"),
                                            ((1, 3, 2, 5), r"kernel_size=\(3, 3\) is larger than the padded input")],
                         ids=["channels", "ndim", "too-small"])
def test_twin_forward_rejects_bad_input(shape, message):
    with pytest.raises(ValueError, match=message):
        mt.FullStackConv2d(**GOOD)(torch.zeros(shape))
